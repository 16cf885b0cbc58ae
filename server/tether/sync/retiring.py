"""A deleted workspace's binding, retiring: it outlives the workspace until its sync work is
drained, then goes.

Deleting a bound workspace (any mode: CASCADE appends the deletion records, SET_DEFAULT moves
entities that stay with the Azure workspace they started in) keeps its `workspace_bindings`
row with `deleted_at` set and `deleted_outbox_id` the last outbox row at the deletion
(tether.workspaces.service). The row stays bound, so every runtime keeps that workspace's
worker (same target, credential, throttle) and delivers what is pending; work whose local
entity is gone settles as the handlers settle it (uploads as `skipped`), the deletions are
delivered.

Drained means: discovery's *safe* cursors have passed `deleted_outbox_id` (every row of the
workspace that committed before its deletion is on an entity: the safe cursor only passes
rows older than the lookback, see `discovery`), and no entity of the workspace is pending or
failed (retryable). Dead entities do not hold the drain (they never retry; the status keeps
showing them, under the workspace name, as failing). Then the row is removed, in one
transaction, by whichever runtime (or `tether sync run`) sees it first: the delete names the
retiring row only, so two replicas doing it at once is harmless.
"""

from __future__ import annotations

from sqlalchemy import delete, exists, select
from sqlalchemy.orm import Session

from tether.db.models import SyncEntity, WorkspaceBinding
from tether.sync import discovery, state
from tether.sync.sources import CAPABILITIES

DRAINING = "deleted (draining)"  # the `binding` shown for a retiring workspace


def retiring(session: Session) -> list[WorkspaceBinding]:
    return list(
        session.scalars(select(WorkspaceBinding).where(WorkspaceBinding.deleted_at.is_not(None)))
    )


def retiring_names(session: Session) -> set[str]:
    return set(
        session.scalars(
            select(WorkspaceBinding.workspace).where(WorkspaceBinding.deleted_at.is_not(None))
        )
    )


def drained(session: Session, row: WorkspaceBinding) -> bool:
    """Nothing of the retiring workspace is left to deliver (see the module docstring)."""
    last = row.deleted_outbox_id or 0
    for capability in CAPABILITIES:
        if int(discovery.get_meta(session, capability.safe_key) or 0) < last:
            return False
    busy = session.execute(
        select(
            exists().where(
                SyncEntity.workspace == row.workspace,
                SyncEntity.status.in_((state.PENDING, state.FAILED)),
            )
        )
    ).scalar()
    return not busy


def remove_drained(session: Session) -> list[str]:
    """Remove every retiring binding that is drained; returns their workspaces."""
    gone: list[str] = []
    for row in retiring(session):
        if drained(session, row):
            session.execute(
                delete(WorkspaceBinding).where(
                    WorkspaceBinding.workspace == row.workspace,
                    WorkspaceBinding.deleted_at.is_not(None),
                )
            )
            gone.append(row.workspace)
    return gone
