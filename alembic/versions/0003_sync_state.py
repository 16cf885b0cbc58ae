"""sync state: per-entity delivery state, worker meta, mapping report

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 07:34:04.011777
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sync_entities",
        sa.Column("entity_type", sa.String(length=32), nullable=False),
        sa.Column("entity_id", sa.String(length=64), nullable=False),
        sa.Column("azure_id", sa.String(length=128), nullable=True),
        sa.Column("cursor", sa.BigInteger(), nullable=False),
        sa.Column("metric_hwm", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("waiting_on", sa.String(length=128), nullable=True),
        sa.Column("next_attempt_at", sa.BigInteger(), nullable=False),
        sa.Column("lease_owner", sa.String(length=128), nullable=True),
        sa.Column("lease_expires_at", sa.BigInteger(), nullable=True),
        sa.Column("first_pending_at", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("entity_type", "entity_id"),
    )
    with op.batch_alter_table("sync_entities", schema=None) as batch_op:
        batch_op.create_index("ix_sync_entities_claim", ["status", "next_attempt_at"], unique=False)

    op.create_table(
        "sync_meta",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "sync_report",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("entity_type", sa.String(length=32), nullable=False),
        sa.Column("entity_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("outbox_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "entity_type", "entity_id", "kind", "subject", name="uq_sync_report_subject"
        ),
    )


def downgrade() -> None:
    op.drop_table("sync_report")
    op.drop_table("sync_meta")
    with op.batch_alter_table("sync_entities", schema=None) as batch_op:
        batch_op.drop_index("ix_sync_entities_claim")

    op.drop_table("sync_entities")
