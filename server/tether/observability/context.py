"""The id of the request being served, visible to every log line it causes.

A contextvar, so it follows the request into `tether.threads.blocking` (Starlette's
threadpool copies the context) and is absent (None) on background threads such as the sync
worker.
"""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

REQUEST_ID_HEADER = "x-request-id"
_MAX_LENGTH = 128
# Printable ASCII without spaces: safe to echo in a header and to put in a log line.
_SANE = re.compile(rb"[\x21-\x7e]{1,%d}" % _MAX_LENGTH)

request_id: ContextVar[str | None] = ContextVar("tether_request_id", default=None)


def choose_request_id(offered: bytes | None) -> str:
    """The client's X-Request-Id when it is short and printable, else a fresh one."""
    if offered is not None and _SANE.fullmatch(offered):
        return offered.decode("ascii")
    return uuid.uuid4().hex


def current_request_id() -> str | None:
    return request_id.get()
