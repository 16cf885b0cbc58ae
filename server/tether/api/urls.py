"""Strict UTF-8 in URLs: a path or query string whose percent-decoded bytes are not UTF-8 is
refused with 400 INVALID_PARAMETER_VALUE, before any endpoint runs (a path with MLflow's
"Invalid path", logged with the client's address as refused artifact paths are).

The server (uvicorn) and Starlette decode a URL's percent-escapes with errors="replace", so
`%ED%A0%80` (a UTF-16 surrogate in CESU-8) or `%FF` would otherwise reach endpoints as U+FFFD
characters: a run id, an experiment name or an artifact path the client never sent. Refusing
them is what a JSON body gets for the same bytes (`tether.api.jsonbody`). Plain ASCII URLs
without `%` (nearly all) are passed through after one scan of each part.
"""

from __future__ import annotations

import logging
from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Receive, Scope, Send

from tether.api.responses import JsonResponse
from tether.errors import invalid_parameter

log = logging.getLogger("tether.api")
_LOGGED_CHARS = 2_000


class StrictUtf8Urls:
    """Pure ASGI middleware: refuse a request whose path or query string is not UTF-8."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raw_path: bytes = scope.get("raw_path") or scope["path"].encode("utf-8", "replace")
            if not _is_utf8(raw_path):
                # MLflow's wording for a path it refuses (its artifact handlers' check), and
                # logged as refused artifact paths are: these are probes more often than not.
                client = scope.get("client")
                log.warning(
                    "refused request path %r from %s (%s): not UTF-8 once percent-decoded",
                    raw_path.decode("ascii", "backslashreplace")[:_LOGGED_CHARS],
                    f"{client[0]}:{client[1]}" if client else "?",
                    scope["method"],
                )
                await _refuse(scope, receive, send, "Invalid path")
                return
            if not _is_utf8(scope.get("query_string", b"")):
                message = "Invalid request: the query string is not UTF-8 once percent-decoded."
                await _refuse(scope, receive, send, message)
                return
        await self.app(scope, receive, send)


async def _refuse(scope: Scope, receive: Receive, send: Send, message: str) -> None:
    error = invalid_parameter(message)
    response = JsonResponse(error.to_body(), status_code=error.http_status)
    await response(scope, receive, send)


def _is_utf8(raw: bytes) -> bool:
    if raw.isascii() and b"%" not in raw:
        return True
    try:
        unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
