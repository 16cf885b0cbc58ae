"""Run and experiment filter strings, parsed and validated as MLflow's parsers do.

A small hand-written tokenizer (`tokenizer`) and recursive-descent parser (`filter_syntax`)
that accept what MLflow's `SearchUtils` / `SearchExperimentsUtils` accept (they are built on
sqlparse) and reject what they reject, with MLflow's error messages where practical; this
module checks each clause's entity, key, comparator and value. Every error is an
`invalid_parameter` `MlflowError`; no input makes this module raise anything else.

The grammar is described in `tether.search.grammar`.
"""

from __future__ import annotations

import re

from tether.errors import invalid_parameter
from tether.search.filter_syntax import ILL_FORMED, FilterParser, RawValue
from tether.search.grammar import (
    ATTRIBUTE,
    ATTRIBUTE_ALIASES,
    DATASET,
    DATASET_COMPARATORS,
    EXPERIMENT_NUMERIC_ATTRIBUTES,
    EXPERIMENT_SEARCH_ATTRIBUTES,
    INT64_MAX,
    INT64_MIN,
    METRIC,
    METRIC_COMPARATORS,
    NUMERIC_ATTRIBUTE_COMPARATORS,
    PARAM,
    PARAM_COMPARATORS,
    RUN_NUMERIC_ATTRIBUTES,
    RUN_SEARCH_ATTRIBUTES,
    STRING_ATTRIBUTE_COMPARATORS,
    TAG,
    TAG_COMPARATORS,
    Comparison,
    EntityType,
    Value,
    fmt_set,
)
from tether.search.identifiers import experiment_identifier, run_identifier, split_ident
from tether.search.tokenizer import IDENT, LPAREN, NUMBER, STRING

# ------------------------------------------------------------------------- value checks


def _quoted_string(value: RawValue) -> str:
    if value.kind == STRING:
        return value.raw[1:-1]
    raise invalid_parameter(
        "Parameter value is either not quoted or unidentified quote "
        f"types used for string value {value.raw}. Use either single or double "
        "quotes.",
    )


def _number(value: RawValue) -> int | float:
    text = value.raw
    if re.fullmatch(r"-?\d+", text):
        number = int(text)
        # Beyond BIGINT, compare as a float (same order) rather than fail to bind.
        return number if INT64_MIN <= number <= INT64_MAX else float(number)
    return float(text)


def _checked_list(value: RawValue, list_supported: frozenset[str], key: str) -> tuple[str, ...]:
    if key not in list_supported:
        raise invalid_parameter(
            f"Only {sorted(list_supported)} attributes support "
            "comparison with a list of quoted string values."
        )
    return _list_items(value)


def _list_items(value: RawValue) -> tuple[str, ...]:
    if value.items is None:
        raise invalid_parameter(value.list_error or ILL_FORMED)
    return value.items


def _run_value(entity: EntityType, key: str, value: RawValue) -> Value:
    """MLflow's `SearchUtils._get_value`: check the value's type for the entity and key."""
    if entity == METRIC:
        if value.kind != NUMBER:
            raise invalid_parameter(f"Expected numeric value type for metric. Found {value.raw}")
        return float(value.raw)
    if entity in (PARAM, TAG):
        if value.kind in (STRING, IDENT):
            return _quoted_string(value)
        raise invalid_parameter(
            f"Expected a quoted string value for {entity} (e.g. 'my-value'). Got value {value.raw}"
        )
    if entity == ATTRIBUTE:
        return _attribute_value(
            key, value, RUN_NUMERIC_ATTRIBUTES, frozenset({"run_id"}), allow_float=True
        )
    # Datasets.
    if value.kind in (STRING, IDENT):
        return _quoted_string(value)
    if value.kind == LPAREN:
        return _list_items(value)
    raise invalid_parameter(
        f"Expected a quoted string value for dataset attributes. Got value {value.raw}"
    )


def _attribute_value(
    key: str,
    value: RawValue,
    numeric: frozenset[str],
    list_supported: frozenset[str],
    allow_float: bool,
) -> Value:
    if key in numeric:
        if value.kind != NUMBER:
            raise invalid_parameter(
                f"Expected numeric value type for numeric attribute: {key}. Found {value.raw}"
            )
        number = _number(value)
        if not allow_float and isinstance(number, float):
            raise invalid_parameter(f"Invalid value for numeric attribute '{key}': {value.raw!r}")
        return number
    if value.kind in (STRING, IDENT):
        return _quoted_string(value)
    if value.kind == LPAREN:
        return _checked_list(value, list_supported, key)
    raise invalid_parameter(f"Expected a quoted string value for attributes. Got value {value.raw}")


def _check_comparator(allowed: frozenset[str], comparator: str, close_quote: bool = True) -> None:
    if comparator not in allowed:
        quote = "'" if close_quote else ""
        raise invalid_parameter(
            f"Invalid comparator '{comparator}' not one of '{fmt_set(allowed)}{quote}"
        )


def _check_list_use(comparator: str, value: Value, raw: RawValue | None) -> None:
    is_list = isinstance(value, tuple)
    if is_list != (comparator in ("IN", "NOT IN")):
        shown = raw.raw if raw is not None else ""
        raise invalid_parameter(
            f"Invalid comparison clause: comparator '{comparator}' cannot be used with value "
            f"{shown}. Use IN or NOT IN with a parenthesised list of quoted strings."
        )


# ------------------------------------------------------------------------------ public API


def parse_search_filter(filter_string: str | None) -> list[Comparison]:
    """Parse a `search_runs` filter into comparisons, validated as MLflow validates them."""
    if not filter_string:
        return []
    if not isinstance(filter_string, str):
        raise invalid_parameter(f"Invalid filter '{filter_string}'. Could not be parsed.")
    if not filter_string.strip():
        raise invalid_parameter(f"Invalid filter '{filter_string}'. Could not be parsed.")
    raw_clauses = FilterParser(filter_string, quote_invalid=True).parse()
    comparisons = []
    for clause in raw_clauses:
        entity_raw, key = split_ident(clause.ident)
        entity, key = run_identifier(entity_raw, key, RUN_SEARCH_ATTRIBUTES)
        comparator = clause.comparator
        if clause.value is None:
            if entity not in (TAG, PARAM):
                raise invalid_parameter(
                    "IS NULL / IS NOT NULL is only supported for tags and params, "
                    f"not for '{entity}' '{key}'"
                )
            comparisons.append(Comparison(entity, key, comparator, None))
            continue
        value = _run_value(entity, key, clause.value)
        if entity == METRIC:
            _check_comparator(METRIC_COMPARATORS, comparator, close_quote=False)
        elif entity == PARAM:
            _check_comparator(PARAM_COMPARATORS, comparator)
        elif entity == TAG:
            _check_comparator(TAG_COMPARATORS, comparator, close_quote=False)
        elif entity == DATASET:
            _check_comparator(DATASET_COMPARATORS, comparator, close_quote=False)
        elif key in RUN_NUMERIC_ATTRIBUTES:
            # MLflow's message names the string comparators here; we name the valid ones.
            _check_comparator(NUMERIC_ATTRIBUTE_COMPARATORS, comparator, close_quote=False)
        else:
            _check_comparator(STRING_ATTRIBUTE_COMPARATORS, comparator)
        _check_list_use(comparator, value, clause.value)
        if entity == ATTRIBUTE:
            key = ATTRIBUTE_ALIASES.get(key, key)
        comparisons.append(Comparison(entity, key, comparator, value))
    return comparisons


def parse_experiment_filter(filter_string: str | None) -> list[Comparison]:
    """Parse a `search_experiments` filter (`name`, `experiment_id`, times, `tags.`)."""
    if not filter_string:
        return []
    if not isinstance(filter_string, str) or not filter_string.strip():
        raise invalid_parameter(f"Invalid filter '{filter_string}'. Could not be parsed.")
    raw_clauses = FilterParser(filter_string, quote_invalid=False).parse()
    comparisons = []
    for clause in raw_clauses:
        entity_raw, key = split_ident(clause.ident)
        entity, key = experiment_identifier(entity_raw, key, EXPERIMENT_SEARCH_ATTRIBUTES)
        comparator = clause.comparator
        if clause.value is None:
            if entity != TAG:
                raise invalid_parameter(
                    f"IS NULL / IS NOT NULL is only supported for tags, not for attribute '{key}'"
                )
            comparisons.append(Comparison(entity, key, comparator, None))
            continue
        value: Value
        if entity == TAG:
            value = _run_value(TAG, key, clause.value)
            if comparator not in ("=", "!=", "LIKE", "ILIKE"):
                raise invalid_parameter(f"Invalid comparator for tag: {comparator}")
        else:
            value = _attribute_value(
                key,
                clause.value,
                EXPERIMENT_NUMERIC_ATTRIBUTES,
                frozenset({"experiment_id"}),
                allow_float=True,
            )
            value = _check_experiment_attribute(key, comparator, value, clause.value)
        _check_list_use(comparator, value, clause.value)
        comparisons.append(Comparison(entity, key, comparator, value))
    return comparisons


def _parse_experiment_id(value: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = None
    if number is None or not INT64_MIN <= number <= INT64_MAX:
        raise invalid_parameter(
            f"Invalid experiment ID '{value}'. Experiment ID must be a valid integer."
        )
    return number


def _check_experiment_attribute(key: str, comparator: str, value: Value, raw: RawValue) -> Value:
    if key == "experiment_id":
        if comparator not in ("=", "!=", "IN", "NOT IN"):
            raise invalid_parameter(f"Invalid comparator for experiment_id: {comparator}")
        if isinstance(value, tuple):
            return tuple(str(_parse_experiment_id(v)) for v in value)
        return str(_parse_experiment_id(str(value)))
    if key in EXPERIMENT_NUMERIC_ATTRIBUTES:
        _check_comparator(NUMERIC_ATTRIBUTE_COMPARATORS, comparator, close_quote=False)
        if isinstance(value, float):
            raise invalid_parameter(f"Invalid value for numeric attribute '{key}': {raw.raw!r}")
        return value
    _check_comparator(STRING_ATTRIBUTE_COMPARATORS, comparator)
    if comparator not in ("=", "!=", "LIKE", "ILIKE"):
        raise invalid_parameter(f"Invalid comparator for string attribute: {comparator}")
    return value
