"""artifact destinations: the destinations a workspace's rebind replaced, still read from

A workspace bound with an artifacts destination keeps its files there (tether.storage.routed);
`artifacts_previous` remembers the destinations a rebind replaced (JSON, newest first), so
files written before the rebind stay readable until they are moved. Nullable: every existing
binding has none.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 23:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("workspace_bindings") as batch_op:
        batch_op.add_column(sa.Column("artifacts_previous", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workspace_bindings") as batch_op:
        batch_op.drop_column("artifacts_previous")
