"""`GET /api/2.0/tether/sync/status[?entity=TYPE:ID]`: what `tether sync status --json` shows,
plus this process's worker (`worker`: enabled, connected, counters; `worker.workspaces`: one per
bound workspace) and each workspace's state (`workspaces`)."""

from __future__ import annotations

from fastapi import Request

from tether.api.access import ADMIN
from tether.api.routing import Router
from tether.db.engine import Database
from tether.errors import invalid_parameter, not_found
from tether.sync import bindings, status
from tether.sync.schemas import EntityDetail, SyncStatus, SyncStatusQuery, SyncSummary, WorkerInfo
from tether.sync.state import Key
from tether.threads import blocking

api = Router("sync")


@api.get("/api/2.0/tether/sync/status", access=ADMIN)
async def sync_status(body: SyncStatusQuery, request: Request) -> SyncStatus | EntityDetail:
    db: Database = request.app.state.db
    background = getattr(request.app.state, "sync", None)
    worker: WorkerInfo = background.describe() if background is not None else {"enabled": False}
    if body.entity:
        try:
            key = Key.parse(body.entity)
        except ValueError as exc:
            raise invalid_parameter(str(exc)) from None

        def detail() -> EntityDetail | None:
            with db.read() as session:
                return status.entity_detail(session, key)

        found = await blocking(detail)
        if found is None:
            raise not_found(f"No sync state for {body.entity}")
        return found

    settings = request.app.state.settings

    def summary() -> SyncSummary:
        with db.read() as session:
            found = status.summary(session)
            found["workspaces"] = status.by_workspace(session, bindings.kinds(session, settings))
            return found

    counts = await blocking(summary)
    return {**counts, "worker": worker}
