"""workspace bindings: each MLflow workspace's own Azure ML workspace; sync entities per workspace

Every existing sync entity is in `default` (0009 put everything there): its cursor, Azure id
and state are unchanged, so nothing delivered is sent again. Artifact outbox rows written
under `workspaces/<name>/` by 0009's release were keyed by their path (entity type
`artifact`, never synced); they are re-keyed to their run or logged model, and the
`artifacts` and `models` discovery cursors go back to the first of them, so discovery finds
them (a re-scan is idempotent: entities already known keep their cursors).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 20:00:00.000000
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_CURSORS = (
    "discovery.artifacts.safe",
    "discovery.artifacts.high",
    "discovery.models.safe",
    "discovery.models.high",
)


def upgrade() -> None:
    op.create_table(
        "workspace_bindings",
        sa.Column("workspace", sa.String(length=63), nullable=False),
        sa.Column("azureml_workspace", sa.Text(), nullable=False),
        sa.Column("target", sa.String(length=300), nullable=False),
        sa.Column("azureml_endpoint", sa.Text(), nullable=True),
        sa.Column("artifacts_destination", sa.Text(), nullable=True),
        sa.Column("credential", sa.String(length=64), nullable=True),
        sa.Column("bound", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["workspace"], ["workspaces.name"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("workspace"),
    )
    with op.batch_alter_table("sync_entities") as batch_op:
        batch_op.add_column(
            sa.Column("workspace", sa.String(length=63), server_default="default", nullable=False)
        )
    op.create_index(
        "ix_sync_entities_workspace_claim",
        "sync_entities",
        ["workspace", "status", "next_attempt_at"],
        unique=False,
    )
    _rekey_workspace_artifacts()


def downgrade() -> None:
    op.drop_index("ix_sync_entities_workspace_claim", table_name="sync_entities")
    with op.batch_alter_table("sync_entities") as batch_op:
        batch_op.drop_column("workspace")
    op.drop_table("workspace_bindings")


def _owner(path: str) -> tuple[str, str] | None:
    """The run or logged model of `workspaces/<name>/<exp>/...` (tether.storage.paths, as of
    this revision: a migration keeps its own copy of the rule)."""
    parts = path.split("/")[2:]
    if len(parts) >= 4 and parts[1] == "models" and parts[3] == "artifacts":
        return "logged_model", parts[2]
    if len(parts) >= 3 and parts[2] == "artifacts" and parts[1] != "models":
        return "run", parts[1]
    return None


def _rekey_workspace_artifacts() -> None:
    conn = op.get_bind()
    outbox = sa.table(
        "sync_outbox",
        sa.column("id", sa.BigInteger()),
        sa.column("entity_type", sa.String()),
        sa.column("entity_id", sa.String()),
        sa.column("payload", sa.Text()),
    )
    rows = conn.execute(
        sa.select(outbox.c.id, outbox.c.entity_id, outbox.c.payload).where(
            outbox.c.entity_type == "artifact"
        )
    ).all()
    first: int | None = None
    for row_id, _entity_id, payload in rows:
        path = str(json.loads(payload).get("path") or "")
        if not path.startswith("workspaces/"):
            continue
        owner = _owner(path)
        if owner is None:  # outside any run or model: stays keyed by its full path
            continue
        conn.execute(
            sa.update(outbox)
            .where(outbox.c.id == row_id)
            .values(entity_type=owner[0], entity_id=owner[1])
        )
        first = row_id if first is None else min(first, row_id)
    if first is None:
        return
    meta = sa.table("sync_meta", sa.column("key", sa.String()), sa.column("value", sa.Text()))
    for key in _CURSORS:
        value = conn.execute(sa.select(meta.c.value).where(meta.c.key == key)).scalar()
        if value is not None and int(value) >= first:
            conn.execute(sa.update(meta).where(meta.c.key == key).values(value=str(first - 1)))
