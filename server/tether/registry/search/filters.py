"""Registry filter strings, read and checked as MLflow's registry reads them.

The grammar is MLflow's `SearchModelUtils` / `SearchModelVersionUtils` (sqlparse based); the
shared tokenizer and clause parser of `tether.search` read the syntax, this module applies the
registry's rules:

    registered models:  name (= != LIKE ILIKE IN NOT IN), tags.<key> (= != LIKE ILIKE)
    model versions:     name, run_id (both also IN / NOT IN), source_path (= != LIKE ILIKE),
                        version_number (= != < <= > >=), tags.<key> (= != LIKE ILIKE)

MLflow checks in two steps, first every clause's identifier and value (its parser), then every
clause's comparator (its SQL store); a filter with several faults must fail on the one MLflow
names, so the two steps stay separate here too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tether.errors import invalid_parameter
from tether.registry.validation import IS_PROMPT_TAG_KEY
from tether.search.filter_syntax import RawValue, parse_clauses
from tether.search.grammar import ATTRIBUTE, TAG, fmt_set
from tether.search.identifiers import experiment_identifier, unquote
from tether.search.tokenizer import NUMBER, Token
from tether.search.values import check_list_use, key_value_string, string_or_list

MODEL_SEARCH_KEYS = frozenset({"name"})
VERSION_SEARCH_KEYS = frozenset({"name", "version_number", "run_id", "source_path"})
VERSION_NUMERIC_KEYS = frozenset({"version_number", "creation_timestamp", "last_updated_timestamp"})
MODEL_LIST_KEYS = ("name",)
VERSION_LIST_KEYS = ("name", "run_id")
STRING_COMPARATORS = frozenset({"=", "!=", "LIKE", "ILIKE", "IN", "NOT IN"})
NUMERIC_COMPARATORS = frozenset({"=", "!=", "<", "<=", ">", ">="})
TAG_COMPARATORS = frozenset({"=", "!=", "LIKE", "ILIKE"})


@dataclass(frozen=True)
class Clause:
    entity: str  # ATTRIBUTE or TAG
    key: str
    comparator: str  # upper-case
    value: Any  # str, int, float or tuple[str, ...]


def split_as_written(text: str) -> tuple[str | None, str]:
    """(entity prefix or None, key) split at the first dot of the text as written.

    MLflow's registry splits `identifier.split(".", 1)` on the raw text, so unlike the runs
    parser's `split_ident` a dot inside a quoted first segment still splits there.
    """
    entity_raw, dot, key = text.partition(".")
    return (entity_raw, key) if dot else (None, text)


def _identifier(token: Token, valid_attributes: frozenset[str]) -> tuple[str, str]:
    """MLflow's `_get_model_search_identifier`, which checks the attribute key still quoted."""
    entity_raw, key = split_as_written(token.raw)
    entity, key = experiment_identifier(entity_raw, key, valid_attributes)
    return entity, unquote(key)


def _number(text: str) -> int | float:
    # Unlike the runs parser's `_number`, no widening to float here: a float is refused as a
    # version number, so a huge integer stays exact until it is bound to SQL.
    return int(text) if re.fullmatch(r"-?\d+", text) else float(text)


def _not_string_value(value: RawValue) -> Exception:
    return invalid_parameter(
        "Expected a quoted string value or a list of quoted string values for attributes. "
        f"Got value {value.raw}"
    )


def _raw_clauses(filter_string: str | None) -> list[Any]:
    raw = parse_clauses(filter_string, quote_invalid=False)
    for clause in raw:
        if clause.value is None:
            # MLflow's registry parsers fail on IS [NOT] NULL (an internal error there).
            raise invalid_parameter("Invalid comparison clause. Expected 3 tokens found 2")
    return raw


# ------------------------------------------------------------------- registered models


def parse_model_filter_syntax(filter_string: str | None) -> list[tuple[Clause, RawValue]]:
    """Identifiers and values of a `search-registered-models` filter (MLflow's parser step)."""
    parsed = []
    for raw in _raw_clauses(filter_string):
        entity, key = _identifier(raw.ident, MODEL_SEARCH_KEYS)
        if entity == TAG:
            value: Any = key_value_string(TAG, raw.value)
        else:
            value = string_or_list(key, raw.value, MODEL_LIST_KEYS)
            if value is None:
                raise _not_string_value(raw.value)
        parsed.append((Clause(entity, key, raw.comparator, value), raw.value))
    return parsed


def check_model_comparators(parsed: list[tuple[Clause, RawValue]]) -> list[Clause]:
    """The comparator of each clause (MLflow's store step, after order_by and page token)."""
    for clause, raw in parsed:
        if clause.entity == ATTRIBUTE:
            if clause.comparator not in STRING_COMPARATORS:
                raise invalid_parameter(f"Invalid comparator for attribute: {clause.comparator}")
        elif clause.comparator not in TAG_COMPARATORS:
            raise invalid_parameter(f"Invalid comparator for tag: {clause.comparator}")
        check_list_use(clause.comparator, clause.value, raw)
    return [clause for clause, _ in parsed]


def parse_model_filter(filter_string: str | None) -> list[Clause]:
    """A `search-registered-models` filter, checked as MLflow checks it."""
    return check_model_comparators(parse_model_filter_syntax(filter_string))


# ---------------------------------------------------------------------- model versions


def parse_version_filter(filter_string: str | None) -> list[Clause]:
    """A `search-model-versions` filter, checked as MLflow checks it."""
    raws = _raw_clauses(filter_string)
    clauses = []
    for raw in raws:
        entity, key = _identifier(raw.ident, VERSION_SEARCH_KEYS)
        if entity == TAG:
            value: Any = key_value_string(TAG, raw.value)
        elif raw.value.kind == NUMBER:
            if key not in VERSION_NUMERIC_KEYS:
                raise invalid_parameter(
                    f"Only the '{fmt_set(VERSION_NUMERIC_KEYS)}' attributes support comparison "
                    "with numeric values."
                )
            value = _number(raw.value.raw)
        else:
            value = string_or_list(key, raw.value, VERSION_LIST_KEYS)
            if value is None:
                raise _not_string_value(raw.value)
        clauses.append((Clause(entity, key, raw.comparator, value), raw.value))
    return [_check_version_clause(clause, raw) for clause, raw in clauses]


def _check_version_clause(clause: Clause, raw: RawValue) -> Clause:
    comparator, key, value = clause.comparator, clause.key, clause.value
    if clause.entity == TAG:
        if comparator not in TAG_COMPARATORS:
            raise invalid_parameter(f"Invalid comparator for tag: {comparator}")
        return clause
    if key in VERSION_NUMERIC_KEYS:
        if comparator not in NUMERIC_COMPARATORS:
            raise invalid_parameter(f"Invalid comparator for attribute {key}: {comparator}")
        if isinstance(value, float):
            raise invalid_parameter(f"Invalid value for numeric attribute '{key}': {value!r}")
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise invalid_parameter(
                f"Invalid value for numeric attribute '{key}': {value!r}"
            ) from None
        return Clause(clause.entity, key, comparator, number)
    if comparator not in STRING_COMPARATORS or (
        comparator in ("IN", "NOT IN") and key not in VERSION_LIST_KEYS
    ):
        raise invalid_parameter(f"Invalid comparator for attribute: {comparator}")
    check_list_use(comparator, value, raw)
    return clause


# ----------------------------------------------------------------------------- prompts


def is_querying_prompts(clauses: list[Clause]) -> bool:
    """MLflow's `_is_querying_prompt`: the first prompt-tag clause decides."""
    for clause in clauses:
        if clause.entity != TAG or clause.key != IS_PROMPT_TAG_KEY:
            continue
        value = str(clause.value).lower()
        return (clause.comparator == "=" and value == "true") or (
            clause.comparator == "!=" and value == "false"
        )
    return False


def without_prompt_tag(clauses: list[Clause]) -> list[Clause]:
    return [c for c in clauses if not (c.entity == TAG and c.key == IS_PROMPT_TAG_KEY)]
