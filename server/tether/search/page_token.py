"""Page tokens in MLflow's format: base64 of the JSON `{"offset": N}`.

Tokens are interchangeable with `mlflow server`'s. Invalid tokens give MLflow's messages.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from tether.db.int64 import INT64_MAX
from tether.errors import invalid_parameter
from tether.search.limits import check_page_token


def create_page_token(offset: int) -> str:
    return base64.b64encode(json.dumps({"offset": offset}).encode("utf-8")).decode("ascii")


def parse_page_token(page_token: str | None) -> int:
    """The start offset a page token encodes; 0 for no token."""
    if not page_token:
        return 0
    check_page_token(page_token)
    try:
        decoded = base64.b64decode(page_token)
    except (TypeError, ValueError, binascii.Error):
        raise invalid_parameter("Invalid page token, could not base64-decode") from None

    try:
        parsed: Any = json.loads(decoded)
    except (ValueError, RecursionError):
        raise invalid_parameter(f"Invalid page token, decoded value={decoded!r}") from None

    offset_value = parsed.get("offset") if isinstance(parsed, dict) else None
    if not offset_value:
        raise invalid_parameter(f"Invalid page token, parsed value={parsed}")

    try:
        offset = int(offset_value)
    except (TypeError, ValueError, OverflowError):
        raise invalid_parameter(f"Invalid page token, not stringable {offset_value}") from None

    if not 0 <= offset <= INT64_MAX:  # OFFSET binds as a BIGINT
        raise invalid_parameter(f"Invalid page token, parsed value={parsed}")
    return offset
