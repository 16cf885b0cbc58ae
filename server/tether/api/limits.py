"""A cap on request bodies (`TETHER_MAX_REQUEST_BYTES`), artifact uploads excepted.

JSON API bodies are read whole before they are parsed, so one huge request could take the
process's memory. A body whose Content-Length is over the limit is answered 413 before any of
it is read; a body without one (chunked) is counted while the endpoint reads it and refused
with 413 as soon as it passes the limit. Either way the endpoint has not acted: nothing is
written. The error is MLflow's for a too-large request (`INVALID_PARAMETER_VALUE`, as its
artifact and log-batch size checks answer), with HTTP 413.

Artifact uploads (`PUT .../mlflow-artifacts/artifacts/...`) are streamed to the store, never
buffered, and are never limited or cut short here; so is the UI's `POST .../upload-artifact`,
which refuses more than 10 MB itself, with MLflow's wording.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tether.api.responses import JsonResponse
from tether.errors import MlflowError

# Streamed uploads: exempt from the limit.
UPLOAD_PREFIXES = (
    "/api/2.0/mlflow-artifacts/artifacts/",
    "/ajax-api/2.0/mlflow-artifacts/artifacts/",
)
UI_UPLOAD_PATH = "/ajax-api/2.0/mlflow/upload-artifact"


class RequestTooLarge(MlflowError):
    """A request body over the limit: MLflow's error body, HTTP 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"Request body is too large: the limit is {limit} bytes "
            "(TETHER_MAX_REQUEST_BYTES on the server).",
            "INVALID_PARAMETER_VALUE",
        )

    @property
    def http_status(self) -> int:
        return 413


class BodySizeLimit:
    """Pure ASGI middleware enforcing `max_bytes` on every request body but uploads."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _is_upload(scope):
            await self.app(scope, receive, send)
            return
        length = _content_length(scope)
        if length is not None:
            if length > self.max_bytes:
                error = RequestTooLarge(self.max_bytes)
                response = JsonResponse(error.to_body(), status_code=error.http_status)
                await response(scope, receive, send)
                return
            # The server reads no more than Content-Length: nothing left to count.
            await self.app(scope, receive, send)
            return
        await self.app(scope, _counting(receive, self.max_bytes), send)


def _is_upload(scope: Scope) -> bool:
    path: str = scope["path"]
    if scope["method"] == "POST":
        return path == UI_UPLOAD_PATH
    return scope["method"] == "PUT" and path.startswith(UPLOAD_PREFIXES)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _counting(receive: Receive, limit: int) -> Receive:
    """`receive` that raises RequestTooLarge once the body read so far passes `limit` (the
    endpoint's exception handling answers it, before the endpoint has acted on the body)."""
    received = 0

    async def counted() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise RequestTooLarge(limit)
        return message

    return counted
