"""deployment workspace: a deployment belongs to the MLflow workspace it was requested in

Every existing deployment goes into `default` (where its registered model is). Names stay
unique across the server (Azure endpoint names are unique per region): the service checks it.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 19:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deployments") as batch_op:
        batch_op.add_column(
            sa.Column("workspace", sa.String(length=63), server_default="default", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("deployments") as batch_op:
        batch_op.drop_column("workspace")
