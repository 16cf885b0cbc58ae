"""Registry order_by clauses, parsed as MLflow's registry store parses them.

Each parser answers (column, ascending) pairs over our schema with MLflow's tie-breakers
appended, so the SQL side only maps column names: registered models by the keys (`name`,
`timestamp` / `last_updated_timestamp`) then `name ASC`; model versions by the keys (default
`last_updated_timestamp DESC, name ASC, version_number DESC`) then `name ASC`,
`version_number DESC`.
"""

from __future__ import annotations

from tether.errors import invalid_parameter
from tether.registry.search.filters import split_as_written
from tether.search.grammar import fmt_set
from tether.search.identifiers import experiment_identifier, unquote
from tether.search.limits import check_order_by
from tether.search.order_by import parse_order_by_tokens
from tether.search.tokenizer import tokenize

MODEL_ORDER_BY_KEYS = frozenset({"name", "timestamp", "last_updated_timestamp"})
# MLflow's message lists only these, though it accepts `last_updated_timestamp` too.
MODEL_RECOMMENDED_ORDER_BY_KEYS = frozenset({"name", "timestamp"})
VERSION_ORDER_BY_KEYS = frozenset(
    {"name", "version_number", "creation_timestamp", "last_updated_timestamp"}
)
DEFAULT_VERSION_ORDER_BY = ("last_updated_timestamp DESC", "name ASC", "version_number DESC")

_VERSION_ORDER_COLUMNS = {
    "name": "name",
    "version_number": "version",
    "creation_timestamp": "creation_time",
    "last_updated_timestamp": "last_updated_time",
}


def _order_by_text(clause: str) -> tuple[str, bool]:
    """MLflow's `_parse_order_by_string`: the key as written when it stands alone, unquoted
    (shlex) when a direction follows it."""
    segments, ascending = parse_order_by_tokens(clause)
    tokens = tokenize(clause)
    if len(tokens) == 1:
        return tokens[0].raw, ascending
    return ".".join(s.text for s in segments), ascending


def _duplicate_fields(order_by: list[str]) -> Exception:
    # MLflow answers INTERNAL_ERROR (500) with this message.
    return invalid_parameter(f"`order_by` contains duplicate fields: {order_by}")


def parse_model_order_by(order_by: list[str]) -> list[tuple[str, bool]]:
    """(column, ascending) pairs: "name" or "last_updated_time", then the name tie-breaker."""
    check_order_by(order_by)
    parsed: list[tuple[str, bool]] = []
    seen: set[str] = set()
    for clause in order_by:
        key, ascending = _order_by_text(clause)
        key = key.strip()
        if key not in MODEL_ORDER_BY_KEYS:
            raise invalid_parameter(
                f"Invalid order by key '{key}' specified. Valid keys are "
                f"'{fmt_set(MODEL_RECOMMENDED_ORDER_BY_KEYS)}'"
            )
        column = "name" if key == "name" else "last_updated_time"
        if column in seen:
            raise _duplicate_fields(order_by)
        seen.add(column)
        parsed.append((column, ascending))
    if "name" not in seen:
        parsed.append(("name", True))
    return parsed


def _version_order_key(text: str) -> str:
    """MLflow's `SearchExperimentsUtils._get_identifier` for an order_by key: the key."""
    entity_raw, key = split_as_written(text)
    # Unlike the filter's, this check sees the key unquoted.
    return experiment_identifier(entity_raw, unquote(key), VERSION_ORDER_BY_KEYS)[1]


def parse_version_order_by(order_by: list[str]) -> list[tuple[str, bool]]:
    """(column, ascending) pairs over model versions, then name and version tie-breakers."""
    check_order_by(order_by)
    parsed: list[tuple[str, bool]] = []
    seen: set[str] = set()
    for clause in order_by or DEFAULT_VERSION_ORDER_BY:
        text, ascending = _order_by_text(clause)
        key = _version_order_key(text.strip())
        if key not in VERSION_ORDER_BY_KEYS:  # a tag: MLflow checks the key alone
            raise invalid_parameter(
                f"Invalid order by key '{key}' specified. Valid keys are "
                f"{fmt_set(VERSION_ORDER_BY_KEYS)}"
            )
        column = _VERSION_ORDER_COLUMNS[key]
        if column in seen:
            raise _duplicate_fields(order_by)
        seen.add(column)
        parsed.append((column, ascending))
    if "name" not in seen:
        parsed.append(("name", True))
    if "version" not in seen:
        parsed.append(("version", False))
    return parsed
