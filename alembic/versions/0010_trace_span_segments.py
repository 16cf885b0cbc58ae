"""trace span segments: small span batches kept in the database

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 18:05:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "trace_span_segments",
        sa.Column("segment", sa.String(length=40), nullable=False),
        sa.Column("trace_id", sa.String(length=50), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["trace_id"], ["trace_info.request_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("segment"),
    )
    op.create_index(
        "ix_trace_span_segments_trace", "trace_span_segments", ["trace_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_trace_span_segments_trace", table_name="trace_span_segments")
    op.drop_table("trace_span_segments")
