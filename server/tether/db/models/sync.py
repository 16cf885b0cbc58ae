"""The sync outbox and the Azure ML sync worker's state."""

from __future__ import annotations

from sqlalchemy import BigInteger, Index, Integer, String, Text, UniqueConstraint
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


class SyncEntity(Base):
    """Delivery state of one outbox entity (an experiment or a run) to Azure ML.

    `cursor` is the last outbox id applied; `metric_hwm` the last metric id Azure acknowledged
    (runs); `state` holds small handler bookkeeping as JSON (tag keys sent, params count, a
    create-in-flight marker). A lease (`lease_owner` until `lease_expires_at`, epoch ms) gives
    one worker the entity at a time; `waiting_on` names the entity this one waits for.
    `workspace` is the MLflow workspace the entity belongs to, set when it is discovered: its
    Azure ML workspace is that workspace's binding (tether.sync.bindings).
    """

    __tablename__ = "sync_entities"
    __table_args__ = (
        Index("ix_sync_entities_claim", "status", "next_attempt_at"),
        Index("ix_sync_entities_workspace_claim", "workspace", "status", "next_attempt_at"),
    )

    entity_type: Mapped[str] = mapped_column(String(32), primary_key=True)
    entity_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    azure_id: Mapped[str | None] = mapped_column(String(128))
    cursor: Mapped[int] = mapped_column(BigInteger, default=0)
    metric_hwm: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    waiting_on: Mapped[str | None] = mapped_column(String(128))
    next_attempt_at: Mapped[int] = mapped_column(BigInteger, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[int | None] = mapped_column(BigInteger)
    first_pending_at: Mapped[int | None] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(Text, default="{}")
    workspace: Mapped[str] = mapped_column(String(63), default="default", server_default="default")


class SyncMeta(Base):
    """Worker-wide values, e.g. the outbox discovery cursor."""

    __tablename__ = "sync_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class SyncReport(Base):
    """What could not be mirrored faithfully, per entity: one row per (kind, subject)."""

    __tablename__ = "sync_report"
    __table_args__ = (
        UniqueConstraint(
            "entity_type", "entity_id", "kind", "subject", name="uq_sync_report_subject"
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    entity_type: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # mapped | truncated | split | skipped
    subject: Mapped[str] = mapped_column(String(300))
    reason: Mapped[str] = mapped_column(Text)
    outbox_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[int] = mapped_column(BigInteger)
