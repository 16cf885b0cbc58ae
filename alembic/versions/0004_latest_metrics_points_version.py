"""latest_metrics.points_version: a per (run, key) stamp of the metric's point set

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 15:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A constant default: SQLite adds the column in place, no table rebuild.
    op.add_column(
        "latest_metrics",
        sa.Column("points_version", sa.BigInteger(), server_default="0", nullable=False),
    )


def downgrade() -> None:
    with op.batch_alter_table("latest_metrics", schema=None) as batch_op:
        batch_op.drop_column("points_version")
