"""Deployments of registered model versions to Azure ML managed online endpoints.

One row per deployment request, inserted in the transaction that accepts it: the row is the
durable work item (no outbox row: nothing here is mirrored, the driver acts on the row).
`state` is what users see (PENDING_SYNC, CREATING, READY, FAILED, DELETING, DELETED); `step`
and `progress` (JSON) are the driver's place inside it, committed before and after every ARM
call, so a restarted driver resumes where the last one stopped. A lease (`lease_owner` until
`lease_expires_at`, epoch ms) gives one driver a row at a time, as `sync_entities`.
`workspace` is the MLflow workspace the request was made in (`default` with workspaces off):
only requests of that workspace see the row, yet a live name is unique across workspaces.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tether.db.models.base import Base
from tether.db.models.workspaces import DEFAULT_WORKSPACE, WORKSPACE_NAME_LENGTH


class Deployment(Base):
    __tablename__ = "deployments"
    __table_args__ = (Index("ix_deployments_due", "state", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    workspace: Mapped[str] = mapped_column(
        String(WORKSPACE_NAME_LENGTH), default=DEFAULT_WORKSPACE, server_default=DEFAULT_WORKSPACE
    )
    # Unique among live deployments: enforced by the service (a DELETED name may return).
    name: Mapped[str] = mapped_column(String(64), index=True)
    endpoint: Mapped[str] = mapped_column(String(64))
    owns_endpoint: Mapped[bool] = mapped_column(Boolean)  # created it, so deletes it
    model_uri: Mapped[str] = mapped_column(Text)
    registered_model_id: Mapped[int] = mapped_column(Integer)
    model_name: Mapped[str] = mapped_column(String(256))
    model_version: Mapped[int] = mapped_column(Integer)
    instance_type: Mapped[str] = mapped_column(String(64))
    instance_count: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))
    step: Mapped[str] = mapped_column(String(32))
    progress: Mapped[str] = mapped_column(Text, default="{}")
    error: Mapped[str | None] = mapped_column(Text)
    logs: Mapped[str | None] = mapped_column(Text)
    scoring_uri: Mapped[str | None] = mapped_column(Text)
    azure_model_id: Mapped[str | None] = mapped_column(Text)
    keep_failed: Mapped[bool] = mapped_column(Boolean, default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[int] = mapped_column(BigInteger, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)
