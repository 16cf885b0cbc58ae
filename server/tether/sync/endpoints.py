"""`GET /api/2.0/tether/sync/status[?entity=TYPE:ID]`: what `tether sync status --json` shows,
plus this process's worker (`worker`: enabled, connected, counters)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from tether.api.response_models import SyncStatus
from tether.api.responses import JsonResponse
from tether.api.routing import document
from tether.db.engine import Database
from tether.errors import invalid_parameter, not_found
from tether.sync import status
from tether.sync.state import Key

router = APIRouter(tags=["sync"], default_response_class=JsonResponse)


@router.get("/api/2.0/tether/sync/status")
@document(response=SyncStatus)
def sync_status(request: Request, entity: str | None = None) -> Any:
    db: Database = request.app.state.db
    background = getattr(request.app.state, "sync", None)
    worker = background.describe() if background is not None else {"enabled": False}
    if entity:
        try:
            key = Key.parse(entity)
        except ValueError as exc:
            raise invalid_parameter(str(exc)) from None
        with db.read() as session:
            detail = status.entity_detail(session, key)
        if detail is None:
            raise not_found(f"No sync state for {entity}")
        return detail
    with db.read() as session:
        body = status.summary(session)
    body["worker"] = worker
    return body
