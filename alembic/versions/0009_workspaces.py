"""workspaces: MLflow 3.17's workspaces table; experiments and registered models in one

Everything that exists goes into `default`: ids, names, artifact locations and sync state are
unchanged. Names become unique per workspace.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 17:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# Names SQLite's reflection gives the unnamed UNIQUE(name) constraints of 0001 / 0002, so the
# batch rebuild can drop them (PostgreSQL named them itself: found by inspection).
_NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s"}
_TABLES = ("experiments", "registered_models")


def upgrade() -> None:
    op.create_table(
        "workspaces",
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("default_artifact_root", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )
    op.bulk_insert(
        sa.table("workspaces", sa.column("name"), sa.column("description")),
        [{"name": "default", "description": "Default workspace for legacy resources"}],
    )
    for table in _TABLES:
        old = _unique_on_name(table)
        with op.batch_alter_table(table, naming_convention=_NAMING) as batch_op:
            batch_op.add_column(
                sa.Column(
                    "workspace", sa.String(length=63), server_default="default", nullable=False
                )
            )
            batch_op.drop_constraint(old, type_="unique")
            batch_op.create_unique_constraint(f"uq_{table}_workspace_name", ["workspace", "name"])


def downgrade() -> None:
    for table in reversed(_TABLES):
        with op.batch_alter_table(table, naming_convention=_NAMING) as batch_op:
            batch_op.drop_constraint(f"uq_{table}_workspace_name", type_="unique")
            batch_op.drop_column("workspace")
            batch_op.create_unique_constraint(f"uq_{table}_name", ["name"])
    op.drop_table("workspaces")


def _unique_on_name(table: str) -> str:
    for constraint in sa.inspect(op.get_bind()).get_unique_constraints(table):
        if constraint["column_names"] == ["name"] and constraint["name"]:
            return str(constraint["name"])
    return f"uq_{table}_name"  # SQLite: unnamed, named by _NAMING on reflection
