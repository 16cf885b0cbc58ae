"""Page tokens in MLflow's format: base64 of the JSON `{"offset": N}`.

Tokens are interchangeable with `mlflow server`'s. Invalid tokens give MLflow's messages.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from tether.errors import invalid_parameter

# OFFSET must bind as a BIGINT on both backends.
_MAX_OFFSET = 2**63 - 1


def create_page_token(offset: int) -> str:
    return base64.b64encode(json.dumps({"offset": offset}).encode("utf-8")).decode("ascii")


def parse_page_token(page_token: str | None) -> int:
    """The start offset a page token encodes; 0 for no token."""
    if not page_token:
        return 0
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

    if not 0 <= offset <= _MAX_OFFSET:
        raise invalid_parameter(f"Invalid page token, parsed value={parsed}")
    return offset


def validate_max_results(max_results: int, threshold: int = 50000) -> None:
    """MLflow's `_validate_max_results_param`: a positive integer no larger than `threshold`."""
    if isinstance(max_results, bool) or not isinstance(max_results, int) or max_results < 1:
        raise invalid_parameter(
            f"Invalid value {max_results} for parameter 'max_results' supplied. It must be "
            "a positive integer"
        )
    if max_results > threshold:
        raise invalid_parameter(
            f"Invalid value {max_results} for parameter 'max_results' supplied. It must be at "
            f"most {threshold}"
        )
