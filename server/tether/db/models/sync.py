"""The sync outbox table."""

from __future__ import annotations

from sqlalchemy import BigInteger, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tether.db.models.base import Base, BigId


class OutboxEntry(Base):
    """One acknowledged write, appended in the same transaction, for the Azure ML sync worker.

    `entity_id` is the run or experiment the write touched; per-entity order is `id` order.
    """

    __tablename__ = "sync_outbox"
    __table_args__ = (Index("ix_sync_outbox_entity", "entity_type", "entity_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    entity_type: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(64))
    op: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text)
