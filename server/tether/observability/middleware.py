"""Per request: its id (X-Request-Id), an access-log line and, with metrics on, its count and
latency under the route template.

Pure ASGI: it only watches `send` for the status and adds one header, so streamed artifact
downloads and uploads pass through chunk by chunk; the time measured runs to the last byte.
"""

from __future__ import annotations

import logging
import time
from typing import Protocol

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tether.observability.context import REQUEST_ID_HEADER, choose_request_id, request_id
from tether.observability.logs import ACCESS_LOGGER

access_log = logging.getLogger(ACCESS_LOGGER)

# Kept out of the request metrics, as `mlflow server --expose-prometheus` does (probes and
# scrapes would drown the API's figures).
UNMEASURED_PATHS = frozenset({"/health", "/version", "/metrics"})
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED_ROUTE = "unmatched"  # 404s: raw paths would make the label set unbounded
_HEADER = REQUEST_ID_HEADER.encode()


class RequestRecorder(Protocol):
    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None: ...


class RequestObserver:
    def __init__(
        self, app: ASGIApp, recorder: RequestRecorder | None = None, *, access_log: bool = True
    ) -> None:
        self.app = app
        self.recorder = recorder
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = choose_request_id(_header(scope, _HEADER))
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500  # what the client gets if the app fails before answering
        echoed = (_HEADER, rid.encode())

        async def observed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), echoed]}
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            seconds = time.perf_counter() - started
            self._record(scope, status, seconds)
            request_id.reset(token)

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        method: str = scope["method"]
        path: str = scope["path"]
        if self.recorder is not None and path not in UNMEASURED_PATHS:
            self.recorder.observe_request(
                method if method in _METHODS else "OTHER", route_template(scope), status, seconds
            )
        if self.access_log and access_log.isEnabledFor(logging.INFO):
            query = scope.get("query_string", b"")
            # Secrets in it are masked (and a huge one shortened) by the log handler's
            # RedactFilter, in the message and the `path` field alike.
            target = f"{path}?{query.decode('latin-1')}" if query else path
            client = scope.get("client")
            duration_ms = round(seconds * 1000, 3)
            access_log.info(
                "%s %s %d %.1fms",
                method,
                target,
                status,
                duration_ms,
                extra={
                    "method": method,
                    "path": target,
                    "status": status,
                    "duration_ms": duration_ms,
                    "client": f"{client[0]}:{client[1]}" if client else None,
                },
            )


def route_template(scope: Scope) -> str:
    """The matched route's path with `{parameters}`, as the router recorded it in the scope."""
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return template if isinstance(template, str) else UNMATCHED_ROUTE


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value)
    return None
