"""retiring bindings: a deleted workspace's binding outlives it until its sync work is drained

`workspace_bindings.workspace` no longer references `workspaces.name` (it was ON DELETE
CASCADE, so deleting a bound workspace stopped its worker and left its pending work, and
the deletion records themselves, stuck forever). A deleted bound workspace's row is kept with
`deleted_at` (when) and `deleted_outbox_id` (the last outbox row at its deletion: discovery
must have seen it before the row may go); the sync runtime removes the row once nothing of
that workspace is pending (tether.sync.retiring). Both nullable: no existing binding retires.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-08 00:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

# The name SQLite's reflection gives 0012's unnamed foreign key, so the batch rebuild can drop
# it (PostgreSQL named it itself: found by inspection).
_NAMING = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}
_SQLITE_FK = "fk_workspace_bindings_workspace_workspaces"


def upgrade() -> None:
    name = _foreign_key()
    with op.batch_alter_table("workspace_bindings", naming_convention=_NAMING) as batch_op:
        if name is not None:
            batch_op.drop_constraint(name, type_="foreignkey")
        batch_op.add_column(sa.Column("deleted_at", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("deleted_outbox_id", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    # A retiring row names a workspace that is gone: it cannot keep the foreign key.
    op.execute(sa.text("DELETE FROM workspace_bindings WHERE deleted_at IS NOT NULL"))
    with op.batch_alter_table("workspace_bindings", naming_convention=_NAMING) as batch_op:
        batch_op.drop_column("deleted_outbox_id")
        batch_op.drop_column("deleted_at")
        batch_op.create_foreign_key(
            _SQLITE_FK, "workspaces", ["workspace"], ["name"], ondelete="CASCADE"
        )


def _foreign_key() -> str | None:
    for fk in sa.inspect(op.get_bind()).get_foreign_keys("workspace_bindings"):
        if fk["referred_table"] == "workspaces":
            return fk["name"] or _SQLITE_FK
    return None
