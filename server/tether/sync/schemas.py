"""What `GET /api/2.0/tether/sync/status` reads."""

from __future__ import annotations

from tether.wire import RequestModel, Str


class SyncStatusQuery(RequestModel):
    entity: Str | None = None  # TYPE:ID: that entity's detail instead of the summary
