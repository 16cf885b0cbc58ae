"""Trace metadata MLflow keeps in columns, and the values derived from traces and assessments.

MLflow 3.17's SQL store promotes three metadata keys of a trace to columns: the session id,
the token usage and the cost (JSON objects, one column per item), and answers them back as
metadata rebuilt from the columns (`compatibility_metadata`), so a client sees canonical JSON
(`json.dumps` of the known items, in their fixed order) whatever it sent. Tether stores and
answers them the same way, with the same normalisation of odd values.
"""

from __future__ import annotations

import contextlib
import json
import math
import operator
from decimal import Decimal, InvalidOperation
from typing import Any

SESSION_KEY = "mlflow.trace.session"
TOKEN_USAGE_KEY = "mlflow.trace.tokenUsage"
COST_KEY = "mlflow.trace.cost"
USER_KEY = "mlflow.trace.user"
SIZE_STATS_KEY = "mlflow.trace.sizeStats"
SOURCE_RUN_KEY = "mlflow.sourceRun"
INFO_FINALIZED_KEY = "mlflow.trace.infoFinalized"
PROMOTED_KEYS = frozenset({SESSION_KEY, TOKEN_USAGE_KEY, COST_KEY})

TOKEN_COLUMNS = {
    "input_tokens": "input_tokens",
    "output_tokens": "output_tokens",
    "total_tokens": "total_tokens",
    "cache_read_input_tokens": "cache_read_input_tokens",
    "cache_creation_input_tokens": "cache_creation_input_tokens",
    "cache_creation_input_tokens_above_1hr": "cache_creation_input_tokens_above_1hr",
}
COST_COLUMNS = {
    "input_cost": "input_cost",
    "output_cost": "output_cost",
    "total_cost": "total_cost",
}
COLUMNS_BY_KEY = {TOKEN_USAGE_KEY: TOKEN_COLUMNS, COST_KEY: COST_COLUMNS}

_INT64 = (-(2**63), 2**63 - 1)
MAX_SESSION_ID = 250  # MLflow's MAX_CHARS_IN_TRACE_INFO_METADATA
MAX_TRACE_NAME = 4096  # MLflow's MAX_CHARS_IN_TRACE_INFO_TAGS_VALUE
PREVIEW_MAX_LENGTH = 1000


def finite_float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def token_count(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, TypeError, ValueError):
        return None
    if not number.is_finite() or number != number.to_integral_value():
        return None
    if not _INT64[0] <= number <= _INT64[1]:
        return None
    return int(number)


def _json_object(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (TypeError, ValueError):
            return {}
        return value if isinstance(value, dict) else {}
    return {}


def columns_from_metadata(metadata: dict[str, str]) -> dict[str, Any]:
    """The promoted columns a trace's metadata sets (only those it names)."""
    columns: dict[str, Any] = {}
    if SESSION_KEY in metadata:
        columns["session_id"] = metadata[SESSION_KEY]
    if TOKEN_USAGE_KEY in metadata:
        usage = _json_object(metadata[TOKEN_USAGE_KEY])
        columns.update({c: token_count(usage[k]) for k, c in TOKEN_COLUMNS.items() if k in usage})
    if COST_KEY in metadata:
        cost = _json_object(metadata[COST_KEY])
        columns.update({c: finite_float(cost[k]) for k, c in COST_COLUMNS.items() if k in cost})
    return columns


_PROMOTED_COLUMNS = ("session_id", *TOKEN_COLUMNS.values(), *COST_COLUMNS.values())
_promoted_values = operator.attrgetter(*_PROMOTED_COLUMNS)


def compatibility_metadata(row: Any) -> dict[str, str]:
    """The promoted metadata rebuilt from a `trace_info` row's columns."""
    metadata: dict[str, str] = {}
    # Most traces carry none of them: one pass over the columns answers that (a search page
    # serializes every trace's metadata through here).
    if _promoted_values(row).count(None) == len(_PROMOTED_COLUMNS):
        return metadata
    if row.session_id is not None:
        metadata[SESSION_KEY] = row.session_id
    usage = {
        key: count
        for key, column in TOKEN_COLUMNS.items()
        if (count := token_count(getattr(row, column))) is not None
    }
    if usage:
        metadata[TOKEN_USAGE_KEY] = json.dumps(usage)
    cost = {
        key: value
        for key, column in COST_COLUMNS.items()
        if (value := getattr(row, column)) is not None
    }
    if cost:
        metadata[COST_KEY] = json.dumps(cost)
    return metadata


def assessment_aggregate(value: Any) -> tuple[float | None, bool]:
    """(the number an assessment value counts as in metrics, whether it is a real number)."""
    if isinstance(value, bool):
        return (1.0 if value else 0.0), False
    if isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:
            return None, False
        return (number, True) if math.isfinite(number) else (None, False)
    if isinstance(value, str) and value.strip().lower() in ("yes", "no"):
        return (1.0 if value.strip().lower() == "yes" else 0.0), False
    return None, False


# Request / response previews from a root span's inputs / outputs --------------------------------


def preview(request_or_response: Any, role: str) -> str | None:
    """MLflow's `_get_truncated_preview`: the last chat message of `role` when the value holds
    chat messages, else the value's text; cut to 1000 characters with "..."."""
    if request_or_response is None:
        return None
    content: str | None = None
    obj: Any = None
    if isinstance(request_or_response, dict):
        obj = request_or_response
        request_or_response = json.dumps(request_or_response)
    elif isinstance(request_or_response, str):
        with contextlib.suppress(ValueError):
            obj = json.loads(request_or_response)
    if obj is not None and (messages := _messages(obj)):
        content = _text(_last(messages, role))
    text = content or request_or_response
    if not isinstance(text, str):
        text = str(text)
    if len(text) <= PREVIEW_MAX_LENGTH:
        return text
    return text[: PREVIEW_MAX_LENGTH - 3] + "..."


def _is_message(item: Any) -> bool:
    return isinstance(item, dict) and "role" in item and "content" in item


def _messages(obj: Any) -> list[dict[str, Any]] | None:
    if not isinstance(obj, dict):
        return None
    if (messages := obj.get("messages")) and isinstance(messages, list):
        return [m for m in messages if _is_message(m)]
    choices = obj.get("choices")
    if choices and isinstance(choices, list) and isinstance(choices[0], dict):
        message: Any = choices[0].get("message")
        if message and _is_message(message):
            return [dict(message)]
    for key in ("input", "output"):
        if (items := obj.get(key)) and isinstance(items, list):
            return [m for m in items if _is_message(m)]
    if "request" in obj:
        return _messages(obj["request"])
    return None


def _last(messages: list[dict[str, Any]], role: str) -> dict[str, Any]:
    found = [item for item in messages if item.get("role") == role]
    return found[-1] if found else messages[-1]


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        for part in content:
            if isinstance(part, str):
                return part
            if isinstance(part, dict) and part.get("type") in ("text", "output_text"):
                text = part.get("text")
                return text if isinstance(text, str) else ""
    elif isinstance(content, str):
        return content
    return ""
