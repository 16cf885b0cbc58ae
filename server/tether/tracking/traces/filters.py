"""MLflow's filter and order_by grammar for traces (`SearchTraceUtils`), parsed and checked.

Identifiers are `<entity>.<key>` (`tag`/`tags`, `metadata`/`request_metadata`,
`attribute`/`attributes`/`trace`, `span`, `feedback`, `expectation`, `issue`) or a bare
attribute. As in MLflow, some keys are redirected whatever entity was written: `name` is the
tag `mlflow.traceName`, `prompt` the tag `mlflow.linkedPrompts`, `run_id` the metadata
`mlflow.sourceRun`, `text` a span's content, and `timestamp` / `execution_time` /
`end_time` the `_ms` attributes. Comparators are checked per entity with MLflow's sets.
The grammar itself (clauses, quoting, lists) is the shared `tether.search.filter_syntax`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tether.errors import invalid_parameter
from tether.search.filter_syntax import RawValue, parse_clauses
from tether.search.identifiers import split_ident
from tether.search.order_by import parse_order_by_tokens
from tether.search.tokenizer import IDENT, LPAREN, NUMBER, STRING
from tether.search.values import list_items, number, quoted_string

ATTRIBUTE = "attribute"
TAG = "tag"
METADATA = "request_metadata"
SPAN = "span"
FEEDBACK = "feedback"
EXPECTATION = "expectation"
ISSUE = "issue"

_ALIASES = {"tags": TAG, "attributes": ATTRIBUTE, "trace": ATTRIBUTE, "metadata": METADATA}
_ENTITIES = {TAG, METADATA, ATTRIBUTE, SPAN, FEEDBACK, EXPECTATION, ISSUE}
_VALID_ENTITY_NAMES = _ENTITIES | set(_ALIASES)

SEARCH_ATTRIBUTES = frozenset(
    {
        "request_id",
        "timestamp",
        "timestamp_ms",
        "execution_time",
        "execution_time_ms",
        "end_time",
        "end_time_ms",
        "status",
        "client_request_id",
        "name",
        "run_id",
        "prompt",
        "text",
    }
)
ORDER_BY_ATTRIBUTES = frozenset(
    {
        "experiment_id",
        "timestamp",
        "timestamp_ms",
        "execution_time",
        "execution_time_ms",
        "end_time",
        "end_time_ms",
        "status",
        "request_id",
        "name",
        "run_id",
    }
)
NUMERIC_ATTRIBUTES = frozenset(
    {"timestamp_ms", "timestamp", "execution_time_ms", "execution_time", "end_time_ms", "end_time"}
)
LIST_ATTRIBUTES = frozenset({"name", "status", "request_id", "run_id", "client_request_id"})

TRACE_NAME_TAG = "mlflow.traceName"
LINKED_PROMPTS_TAG = "mlflow.linkedPrompts"
SOURCE_RUN_METADATA = "mlflow.sourceRun"
_KEY_TO_TAG = {"name": TRACE_NAME_TAG, "prompt": LINKED_PROMPTS_TAG}
_KEY_TO_METADATA = {"run_id": SOURCE_RUN_METADATA}
_KEY_TO_ATTRIBUTE = {
    "timestamp": "timestamp_ms",
    "execution_time": "execution_time_ms",
    "end_time": "end_time_ms",
}
SPAN_CONTENT = "content"
SPAN_COLUMNS = frozenset({"name", "type", "status"})

STRING_ATTRIBUTE_COMPARATORS = frozenset({"!=", "=", "IN", "NOT IN", "LIKE", "ILIKE", "RLIKE"})
NUMERIC_ATTRIBUTE_COMPARATORS = frozenset({">", ">=", "!=", "=", "<", "<="})
TAG_COMPARATORS = frozenset({"!=", "=", "LIKE", "ILIKE", "RLIKE", "IS NULL", "IS NOT NULL"})
METADATA_COMPARATORS = TAG_COMPARATORS
SPAN_ATTRIBUTE_COMPARATORS = frozenset({"!=", "=", "IN", "NOT IN", "LIKE", "ILIKE", "RLIKE"})
SPAN_CONTENT_COMPARATORS = frozenset({"LIKE", "ILIKE"})
NUMERIC_ASSESSMENT_COMPARATORS = frozenset({">", ">=", "<", "<="})
ASSESSMENT_COMPARATORS = frozenset(
    {"!=", "=", ">", ">=", "<", "<=", "LIKE", "ILIKE", "RLIKE", "IS NULL", "IS NOT NULL"}
)


@dataclass(frozen=True)
class Clause:
    """One checked clause. `entity` is one of the canonical entity names above; `value` is a
    str, an int/float (numeric attributes and assessments), a tuple of str (IN), or None."""

    entity: str
    key: str
    comparator: str
    value: Any


@dataclass(frozen=True)
class OrderClause:
    entity: str
    key: str
    ascending: bool


def _set(values: frozenset[str]) -> str:
    return "{" + ", ".join(repr(v) for v in sorted(values)) + "}"


def _entity(raw: str | None) -> str:
    if raw is None:
        return ATTRIBUTE
    name = raw[1:-1] if len(raw) >= 2 and raw[0] == raw[-1] == "`" else raw
    if name not in _VALID_ENTITY_NAMES:
        raise invalid_parameter(
            f"Invalid entity type '{name}'. Valid values are {_set(frozenset(_ENTITIES))}"
        )
    return _ALIASES.get(name, name)


def _identifier(entity_raw: str | None, key: str, valid: frozenset[str]) -> tuple[str, str]:
    entity = _entity(entity_raw)
    if entity == ATTRIBUTE and key not in valid:
        raise invalid_parameter(
            f"Invalid attribute key '{key}' specified. Valid keys are '{_set(valid)}'"
        )
    return entity, key


def _redirect(entity: str, key: str) -> tuple[str, str]:
    """MLflow's `_replace_key_to_tag_or_metadata` (span keys are their own namespace)."""
    if entity == SPAN:
        return entity, key
    lowered = key.lower()
    if lowered in _KEY_TO_TAG:
        return TAG, _KEY_TO_TAG[lowered]
    if lowered in _KEY_TO_METADATA:
        return METADATA, _KEY_TO_METADATA[lowered]
    if lowered == "text":
        return SPAN, SPAN_CONTENT
    if lowered in _KEY_TO_ATTRIBUTE:
        return entity, _KEY_TO_ATTRIBUTE[lowered]
    return entity, key


def _quoted_value(entity: str, value: RawValue) -> str:
    if value.kind in (STRING, IDENT):
        return quoted_string(value)
    raise invalid_parameter(
        f"Expected a quoted string value for {entity} (e.g. 'my-value'). Got value {value.raw}"
    )


def _value(entity: str, key: str, value: RawValue, comparator: str) -> Any:
    """MLflow's `SearchTraceUtils._get_value` (key before redirection)."""
    if entity in (FEEDBACK, EXPECTATION):
        numeric = comparator in NUMERIC_ASSESSMENT_COMPARATORS
        if value.kind in (STRING, IDENT):
            if numeric:
                raise invalid_parameter(
                    f"Expected a numeric value for {entity} when using comparator "
                    f"'{comparator}'. Got value {value.raw}"
                )
            return quoted_string(value)
        if value.kind == NUMBER and numeric:
            return number(value)
        raise invalid_parameter(
            f"Expected a quoted string value for {entity} (e.g. 'my-value'). Got value {value.raw}"
            if not numeric
            else f"Expected a numeric value for {entity} when using comparator "
            f"'{comparator}'. Got value {value.raw}"
        )
    if entity in (TAG, SPAN):
        if value.kind == LPAREN:
            return list_items(value)
        return _quoted_value(entity, value)
    if entity in (METADATA, ISSUE):
        return _quoted_value(entity, value)
    # Attributes.
    if value.kind in (STRING, IDENT):
        return quoted_string(value)
    if value.kind == LPAREN:
        if key not in LIST_ATTRIBUTES:
            raise invalid_parameter(
                f"Only attributes in {_set(LIST_ATTRIBUTES)} supports comparison with a list "
                "of quoted string values."
            )
        return list_items(value)
    if value.kind == NUMBER:
        if key not in NUMERIC_ATTRIBUTES:
            raise invalid_parameter(
                f"Only the '{_set(NUMERIC_ATTRIBUTES)}' attributes support comparison with "
                "numeric values."
            )
        return number(value)
    raise invalid_parameter(
        "Expected a quoted string value or a list of quoted string values for attributes. "
        f"Got value {value.raw}"
    )


def _check(allowed: frozenset[str], comparator: str, what: str = "") -> None:
    if comparator not in allowed:
        prefix = f"{what} comparator" if what else "Invalid comparator"
        raise invalid_parameter(f"{prefix} '{comparator}' not one of '{_set(allowed)}'")


def _check_clause(clause: Clause) -> None:
    """The comparator checks MLflow runs while building its SQL."""
    entity, key, comparator = clause.entity, clause.key, clause.comparator
    if entity == ATTRIBUTE:
        numeric = key in NUMERIC_ATTRIBUTES
        _check(
            NUMERIC_ATTRIBUTE_COMPARATORS if numeric else STRING_ATTRIBUTE_COMPARATORS, comparator
        )
    elif entity in (TAG, METADATA):
        _check(TAG_COMPARATORS, comparator)
    elif entity == SPAN:
        if key.startswith("attributes."):
            if not key[len("attributes.") :]:
                raise invalid_parameter("Span attribute name cannot be empty after 'attributes.'")
            _check(SPAN_ATTRIBUTE_COMPARATORS, comparator, f"span.{key}")
        elif key in SPAN_COLUMNS:
            _check(SPAN_ATTRIBUTE_COMPARATORS, comparator, f"span.{key}")
        elif key == SPAN_CONTENT:
            _check(SPAN_CONTENT_COMPARATORS, comparator, f"span.{key}")
        else:
            raise invalid_parameter(
                f"Invalid span attribute '{key}'. Supported attributes: name, status, type, "
                "attributes.<attribute_name>."
            )
    elif entity in (FEEDBACK, EXPECTATION):
        if not key:
            raise invalid_parameter("Assessment field name cannot be empty")
        _check(ASSESSMENT_COMPARATORS, comparator, f"assessment.{key}")
    elif entity == ISSUE:
        if key != "id":
            raise invalid_parameter(f"Invalid issue attribute '{key}'. Supported attributes: id")
        _check(frozenset({"="}), comparator, f"issue.{key}")
    if comparator in ("IN", "NOT IN") and not isinstance(clause.value, tuple):
        raise invalid_parameter(
            f"Invalid comparison clause: comparator '{comparator}' cannot be used with a value "
            "that is not a parenthesised list of quoted strings."
        )
    if isinstance(clause.value, tuple) and comparator not in ("IN", "NOT IN"):
        raise invalid_parameter(
            f"Invalid comparison clause: comparator '{comparator}' cannot be used with a list."
        )


def parse_filter(filter_string: str | None) -> list[Clause]:
    clauses: list[Clause] = []
    for raw in parse_clauses(filter_string, quote_invalid=True):
        entity_raw, key = split_ident(raw.ident)
        entity, key = _identifier(entity_raw, key, SEARCH_ATTRIBUTES)
        value = None if raw.value is None else _value(entity, key, raw.value, raw.comparator)
        entity, key = _redirect(entity, key)
        clause = Clause(entity, key, raw.comparator, value)
        _check_clause(clause)
        clauses.append(clause)
    return clauses


def parse_order_by(order_by: list[str]) -> list[OrderClause]:
    parsed: list[OrderClause] = []
    seen: set[tuple[str, str]] = set()
    for item in order_by:
        segments, ascending = parse_order_by_tokens(item)
        if len(segments) == 1:
            entity_raw, key = None, segments[0].text
        else:
            entity_raw, key = segments[0].text, ".".join(s.text for s in segments[1:])
        entity, key = _identifier(entity_raw, key, ORDER_BY_ATTRIBUTES)
        entity, key = _redirect(entity, key)
        if entity not in (ATTRIBUTE, TAG, METADATA):
            raise invalid_parameter(f"Invalid identifier type '{entity}'")
        if (entity, key) in seen:
            raise invalid_parameter(f"`order_by` contains duplicate fields: {order_by}")
        seen.add((entity, key))
        parsed.append(OrderClause(entity, key, ascending))
    return parsed
