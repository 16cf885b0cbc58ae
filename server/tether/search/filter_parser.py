"""Run and experiment filter strings, parsed and validated as MLflow's parsers do.

A small hand-written tokenizer (`tokenizer`) and recursive-descent parser (`filter_syntax`)
that accept what MLflow's `SearchUtils` / `SearchExperimentsUtils` accept (they are built on
sqlparse) and reject what they reject, with MLflow's error messages where practical; this
module checks each clause's entity, key, comparator and value. Every error is an
`invalid_parameter` `MlflowError`; no input makes this module raise anything else.

The grammar is described in `tether.search.grammar`.
"""

from __future__ import annotations

from tether.errors import invalid_parameter
from tether.search.experiment_ids import parse_experiment_id
from tether.search.filter_syntax import RawValue, parse_clauses
from tether.search.grammar import (
    ATTRIBUTE,
    ATTRIBUTE_ALIASES,
    DATASET,
    DATASET_COMPARATORS,
    EXPERIMENT_NUMERIC_ATTRIBUTES,
    EXPERIMENT_SEARCH_ATTRIBUTES,
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
)
from tether.search.identifiers import experiment_identifier, run_identifier, split_ident
from tether.search.tokenizer import IDENT, LPAREN, NUMBER, STRING
from tether.search.values import (
    check_comparator,
    check_list_use,
    key_value_string,
    list_items,
    number,
    quoted_string,
    string_or_list,
)

# ------------------------------------------------------------------------- value checks


def _run_value(entity: EntityType, key: str, value: RawValue) -> Value:
    """MLflow's `SearchUtils._get_value`: check the value's type for the entity and key."""
    if entity == METRIC:
        if value.kind != NUMBER:
            raise invalid_parameter(f"Expected numeric value type for metric. Found {value.raw}")
        return float(value.raw)
    if entity in (PARAM, TAG):
        return key_value_string(entity, value)
    if entity == ATTRIBUTE:
        return _attribute_value(key, value, RUN_NUMERIC_ATTRIBUTES, frozenset({"run_id"}))
    # Datasets.
    if value.kind in (STRING, IDENT):
        return quoted_string(value)
    if value.kind == LPAREN:
        return list_items(value)
    raise invalid_parameter(
        f"Expected a quoted string value for dataset attributes. Got value {value.raw}"
    )


def _attribute_value(
    key: str, value: RawValue, numeric: frozenset[str], list_supported: frozenset[str]
) -> Value:
    if key in numeric:
        if value.kind != NUMBER:
            raise invalid_parameter(
                f"Expected numeric value type for numeric attribute: {key}. Found {value.raw}"
            )
        return number(value)
    text_or_list = string_or_list(key, value, list_supported)
    if text_or_list is None:
        raise invalid_parameter(
            f"Expected a quoted string value for attributes. Got value {value.raw}"
        )
    return text_or_list


# ------------------------------------------------------------------------------ public API


def parse_search_filter(filter_string: str | None) -> list[Comparison]:
    """Parse a `search_runs` filter into comparisons, validated as MLflow validates them."""
    comparisons = []
    for clause in parse_clauses(filter_string, quote_invalid=True):
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
            check_comparator(METRIC_COMPARATORS, comparator, close_quote=False)
        elif entity == PARAM:
            check_comparator(PARAM_COMPARATORS, comparator)
        elif entity == TAG:
            check_comparator(TAG_COMPARATORS, comparator, close_quote=False)
        elif entity == DATASET:
            check_comparator(DATASET_COMPARATORS, comparator, close_quote=False)
        elif key in RUN_NUMERIC_ATTRIBUTES:
            # MLflow's message names the string comparators here; we name the valid ones.
            check_comparator(NUMERIC_ATTRIBUTE_COMPARATORS, comparator, close_quote=False)
        else:
            check_comparator(STRING_ATTRIBUTE_COMPARATORS, comparator)
        check_list_use(comparator, value, clause.value)
        if entity == ATTRIBUTE:
            key = ATTRIBUTE_ALIASES.get(key, key)
        comparisons.append(Comparison(entity, key, comparator, value))
    return comparisons


def parse_experiment_filter(filter_string: str | None) -> list[Comparison]:
    """Parse a `search_experiments` filter (`name`, `experiment_id`, times, `tags.`)."""
    comparisons = []
    for clause in parse_clauses(filter_string, quote_invalid=False):
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
            value = key_value_string(TAG, clause.value)
            if comparator not in ("=", "!=", "LIKE", "ILIKE"):
                raise invalid_parameter(f"Invalid comparator for tag: {comparator}")
        else:
            value = _attribute_value(
                key,
                clause.value,
                EXPERIMENT_NUMERIC_ATTRIBUTES,
                frozenset({"experiment_id"}),
            )
            value = _check_experiment_attribute(key, comparator, value, clause.value)
        check_list_use(comparator, value, clause.value)
        comparisons.append(Comparison(entity, key, comparator, value))
    return comparisons


def _check_experiment_attribute(key: str, comparator: str, value: Value, raw: RawValue) -> Value:
    if key == "experiment_id":
        if comparator not in ("=", "!=", "IN", "NOT IN"):
            raise invalid_parameter(f"Invalid comparator for experiment_id: {comparator}")
        if isinstance(value, tuple):
            return tuple(str(parse_experiment_id(v)) for v in value)
        return str(parse_experiment_id(str(value)))
    if key in EXPERIMENT_NUMERIC_ATTRIBUTES:
        check_comparator(NUMERIC_ATTRIBUTE_COMPARATORS, comparator, close_quote=False)
        if isinstance(value, float):
            raise invalid_parameter(f"Invalid value for numeric attribute '{key}': {raw.raw!r}")
        return value
    check_comparator(STRING_ATTRIBUTE_COMPARATORS, comparator)
    if comparator not in ("=", "!=", "LIKE", "ILIKE"):
        raise invalid_parameter(f"Invalid comparator for string attribute: {comparator}")
    return value
