"""`search-registered-models` / `search-model-versions` in SQL, as MLflow's SQL store does them.

The filter grammar is MLflow's `SearchModelUtils` / `SearchModelVersionUtils` (sqlparse based);
the shared tokenizer and clause parser of `tether.search` read the syntax, this module applies
the registry's rules, in MLflow's order: first every clause's identifier and value (the
`parse_search_filter` step), then every clause's comparator (the store's step).

    registered models:  name (= != LIKE ILIKE IN NOT IN), tags.<key> (= != LIKE ILIKE)
    model versions:     name, run_id (both also IN / NOT IN), source_path (= != LIKE ILIKE),
                        version_number (= != < <= > >=), tags.<key> (= != LIKE ILIKE)

Prompts (models tagged `mlflow.prompt.is_prompt = 'true'`, and every version of a model that
has a version so tagged) are left out unless the filter asks for them, as MLflow does.

Order: registered models by the order_by keys (`name`, `timestamp` / `last_updated_timestamp`)
then `name ASC`; model versions by the keys (default `last_updated_timestamp DESC, name ASC,
version_number DESC`) then `name ASC`, `version_number DESC`. Paging is MLflow's offset token.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from tether.db.models import ModelVersion, ModelVersionTag, RegisteredModel, RegisteredModelTag
from tether.errors import invalid_parameter
from tether.registry.validation import IS_PROMPT_TAG_KEY
from tether.search.filter_parser import _check_list_use, _list_items, _quoted_string
from tether.search.filter_syntax import FilterParser, RawValue
from tether.search.grammar import fmt_set
from tether.search.order_by import _parse_order_by_tokens
from tether.search.page_token import create_page_token, parse_page_token
from tether.search.runs import compare
from tether.search.tokenizer import IDENT, LPAREN, NUMBER, STRING, Token, tokenize

ATTRIBUTE = "attribute"
TAG = "tag"
_ENTITY_TYPES = ("attribute", "tag", "tags")

MODEL_SEARCH_KEYS = frozenset({"name"})
VERSION_SEARCH_KEYS = frozenset({"name", "version_number", "run_id", "source_path"})
VERSION_NUMERIC_KEYS = frozenset({"version_number", "creation_timestamp", "last_updated_timestamp"})
MODEL_LIST_KEYS = ("name",)
VERSION_LIST_KEYS = ("name", "run_id")
STRING_COMPARATORS = frozenset({"=", "!=", "LIKE", "ILIKE", "IN", "NOT IN"})
NUMERIC_COMPARATORS = frozenset({"=", "!=", "<", "<=", ">", ">="})
TAG_COMPARATORS = frozenset({"=", "!=", "LIKE", "ILIKE"})

MODEL_ORDER_BY_KEYS = frozenset({"name", "timestamp", "last_updated_timestamp"})
MODEL_RECOMMENDED_ORDER_BY_KEYS = frozenset({"name", "timestamp"})
VERSION_ORDER_BY_KEYS = frozenset(
    {"name", "version_number", "creation_timestamp", "last_updated_timestamp"}
)
DEFAULT_VERSION_ORDER_BY = ("last_updated_timestamp DESC", "name ASC", "version_number DESC")

MODEL_MAX_RESULTS_DEFAULT = 100
MODEL_MAX_RESULTS_THRESHOLD = 1000
VERSION_MAX_RESULTS_DEFAULT = 200_000
VERSION_MAX_RESULTS_THRESHOLD = 200_000

_INT64 = (-(2**63), 2**63 - 1)


@dataclass(frozen=True)
class Clause:
    entity: str  # ATTRIBUTE or TAG
    key: str
    comparator: str  # upper-case
    value: Any  # str, int, float or tuple[str, ...]


# ----------------------------------------------------------------------------- filters


def _strip_quotes(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in ("'", '"'):
        return value[1:-1]
    return value


def _trim_backticks(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == "`":
        return value[1:-1]
    return value


def _identifier(token: Token, valid_attributes: frozenset[str]) -> tuple[str, str]:
    """MLflow's `_get_model_search_identifier`: the attribute key is checked as written."""
    parts = token.raw.split(".", 1)
    if len(parts) == 1:
        entity, key = ATTRIBUTE, parts[0]
    else:
        entity_raw, key = parts
        if entity_raw not in _ENTITY_TYPES:
            raise invalid_parameter(
                f"Invalid entity type '{entity_raw}'. Valid entity types are {_ENTITY_TYPES}"
            )
        entity = TAG if entity_raw in ("tag", "tags") else ATTRIBUTE
    if entity == ATTRIBUTE and key not in valid_attributes:
        raise invalid_parameter(
            f"Invalid attribute key '{key}' specified. Valid keys are '{fmt_set(valid_attributes)}'"
        )
    return entity, _trim_backticks(_strip_quotes(key))


def _string_or_list(key: str, value: RawValue, list_keys: tuple[str, ...]) -> Any | None:
    if value.kind in (STRING, IDENT):
        return _quoted_string(value)
    if value.kind == LPAREN:
        if key not in list_keys:
            raise invalid_parameter(
                f"Only {sorted(list_keys)} attributes support comparison with a list of quoted "
                "string values."
            )
        return _list_items(value)
    return None


def _tag_value(value: RawValue) -> str:
    if value.kind in (STRING, IDENT):
        return _quoted_string(value)
    raise invalid_parameter(
        f"Expected a quoted string value for tag (e.g. 'my-value'). Got value {value.raw}"
    )


def _number(text: str) -> int | float:
    return int(text) if re.fullmatch(r"-?\d+", text) else float(text)


def _not_string_value(value: RawValue) -> Exception:
    return invalid_parameter(
        "Expected a quoted string value or a list of quoted string values for attributes. "
        f"Got value {value.raw}"
    )


def _raw_clauses(filter_string: str | None) -> list[Any]:
    if not filter_string:
        return []
    if not filter_string.strip():
        raise invalid_parameter(f"Invalid filter '{filter_string}'. Could not be parsed.")
    raw = FilterParser(filter_string, quote_invalid=False).parse()
    for clause in raw:
        if clause.value is None:
            # MLflow's registry parsers fail on IS [NOT] NULL (an internal error there).
            raise invalid_parameter("Invalid comparison clause. Expected 3 tokens found 2")
    return raw


def parse_model_filter_syntax(filter_string: str | None) -> list[tuple[Clause, RawValue]]:
    """Identifiers and values of a `search-registered-models` filter (MLflow's parser step)."""
    parsed = []
    for raw in _raw_clauses(filter_string):
        entity, key = _identifier(raw.ident, MODEL_SEARCH_KEYS)
        if entity == TAG:
            value: Any = _tag_value(raw.value)
        else:
            value = _string_or_list(key, raw.value, MODEL_LIST_KEYS)
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
        _check_list_use(clause.comparator, clause.value, raw)
    return [clause for clause, _ in parsed]


def parse_model_filter(filter_string: str | None) -> list[Clause]:
    """A `search-registered-models` filter, checked as MLflow checks it."""
    return check_model_comparators(parse_model_filter_syntax(filter_string))


def parse_version_filter(filter_string: str | None) -> list[Clause]:
    """A `search-model-versions` filter, checked as MLflow checks it."""
    raws = _raw_clauses(filter_string)
    clauses = []
    for raw in raws:
        entity, key = _identifier(raw.ident, VERSION_SEARCH_KEYS)
        if entity == TAG:
            value: Any = _tag_value(raw.value)
        elif raw.value.kind == NUMBER:
            if key not in VERSION_NUMERIC_KEYS:
                raise invalid_parameter(
                    f"Only the '{fmt_set(VERSION_NUMERIC_KEYS)}' attributes support comparison "
                    "with numeric values."
                )
            value = _number(raw.value.raw)
        else:
            value = _string_or_list(key, raw.value, VERSION_LIST_KEYS)
            if value is None:
                raise _not_string_value(raw.value)
        clauses.append(Clause(entity, key, raw.comparator, value))
    return [
        _check_version_clause(clause, raw.value) for clause, raw in zip(clauses, raws, strict=True)
    ]


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
    _check_list_use(comparator, value, raw)
    return clause


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


def _without_prompt_tag(clauses: list[Clause]) -> list[Clause]:
    return [c for c in clauses if not (c.entity == TAG and c.key == IS_PROMPT_TAG_KEY)]


# ---------------------------------------------------------------------------- order_by


def _order_by_text(clause: str) -> tuple[str, bool]:
    """MLflow's `_parse_order_by_string`: the key as written when it stands alone, unquoted
    (shlex) when a direction follows it."""
    segments, ascending = _parse_order_by_tokens(clause)
    tokens = tokenize(clause)
    if len(tokens) == 1:
        return tokens[0].raw, ascending
    return ".".join(s.text for s in segments), ascending


def parse_model_order_by(order_by: list[str]) -> list[tuple[str, bool]]:
    """(column, ascending) pairs: "name" or "last_updated_time", then the name tie-breaker."""
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
            # MLflow answers INTERNAL_ERROR (500) with this message.
            raise invalid_parameter(f"`order_by` contains duplicate fields: {order_by}")
        seen.add(column)
        parsed.append((column, ascending))
    if "name" not in seen:
        parsed.append(("name", True))
    return parsed


def _order_by_identifier(text: str) -> str:
    """MLflow's `SearchExperimentsUtils._get_identifier` for an order_by key: the key."""
    parts = text.split(".", 1)
    if len(parts) == 1:
        entity, key = ATTRIBUTE, parts[0]
    else:
        entity_raw, key = parts
        if entity_raw not in _ENTITY_TYPES:
            raise invalid_parameter(
                f"Invalid entity type '{entity_raw}'. Valid entity types are {_ENTITY_TYPES}"
            )
        entity = TAG if entity_raw in ("tag", "tags") else ATTRIBUTE
    key = _trim_backticks(_strip_quotes(key))
    if entity == ATTRIBUTE and key not in VERSION_ORDER_BY_KEYS:
        raise invalid_parameter(
            f"Invalid attribute key '{key}' specified. Valid keys are "
            f"'{fmt_set(VERSION_ORDER_BY_KEYS)}'"
        )
    return key


_VERSION_ORDER_COLUMNS = {
    "name": "name",
    "version_number": "version",
    "creation_timestamp": "creation_time",
    "last_updated_timestamp": "last_updated_time",
}


def parse_version_order_by(order_by: list[str]) -> list[tuple[str, bool]]:
    parsed: list[tuple[str, bool]] = []
    seen: set[str] = set()
    for clause in order_by or DEFAULT_VERSION_ORDER_BY:
        text, ascending = _order_by_text(clause)
        key = _order_by_identifier(text.strip())
        if key not in VERSION_ORDER_BY_KEYS:  # a tag: MLflow checks the key alone
            raise invalid_parameter(
                f"Invalid order by key '{key}' specified. Valid keys are "
                f"{fmt_set(VERSION_ORDER_BY_KEYS)}"
            )
        column = _VERSION_ORDER_COLUMNS[key]
        if column in seen:
            # MLflow answers INTERNAL_ERROR (500) with this message.
            raise invalid_parameter(f"`order_by` contains duplicate fields: {order_by}")
        seen.add(column)
        parsed.append((column, ascending))
    if "name" not in seen:
        parsed.append(("name", True))
    if "version" not in seen:
        parsed.append(("version", False))
    return parsed


# ---------------------------------------------------------------------------------- SQL


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _bindable(value: Any) -> Any:
    """An integer beyond BIGINT compares as a float (same order) rather than fail to bind."""
    if isinstance(value, int) and not _INT64[0] <= value <= _INT64[1]:
        return float(value)
    return value


def _model_where(clauses: list[Clause], dialect: str) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    querying_prompts = is_querying_prompts(clauses)
    if not querying_prompts:
        clauses = _without_prompt_tag(clauses)
        where.append(
            ~sa.exists().where(
                RegisteredModelTag.registered_model_id == RegisteredModel.id,
                RegisteredModelTag.key == IS_PROMPT_TAG_KEY,
                RegisteredModelTag.value == "true",
            )
        )
    for clause in clauses:
        if clause.entity == ATTRIBUTE:
            where.append(compare(RegisteredModel.name, clause.comparator, clause.value, dialect))
        else:
            where.append(
                sa.exists().where(
                    RegisteredModelTag.registered_model_id == RegisteredModel.id,
                    RegisteredModelTag.key == clause.key,
                    compare(RegisteredModelTag.value, clause.comparator, clause.value, dialect),
                )
            )
    return where


_VERSION_FILTER_COLUMNS: dict[str, Any] = {
    "name": RegisteredModel.name,
    "run_id": ModelVersion.run_id,
    "source_path": ModelVersion.source,
    "version_number": ModelVersion.version,
}


def _version_where(clauses: list[Clause], dialect: str) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [ModelVersion.deleted == sa.false()]
    if not is_querying_prompts(clauses):
        clauses = _without_prompt_tag(clauses)
        prompt_tag = sa.orm.aliased(ModelVersionTag, name="prompt_tag")
        where.append(
            ~sa.exists().where(
                prompt_tag.registered_model_id == ModelVersion.registered_model_id,
                prompt_tag.key == IS_PROMPT_TAG_KEY,
                prompt_tag.value == "true",
            )
        )
    for clause in clauses:
        if clause.entity == ATTRIBUTE:
            column = _VERSION_FILTER_COLUMNS[clause.key]
            value = _bindable(clause.value)
            where.append(compare(column, clause.comparator, value, dialect))
        else:
            where.append(
                sa.exists().where(
                    ModelVersionTag.registered_model_id == ModelVersion.registered_model_id,
                    ModelVersionTag.version == ModelVersion.version,
                    ModelVersionTag.key == clause.key,
                    compare(ModelVersionTag.value, clause.comparator, clause.value, dialect),
                )
            )
    return where


def _page(rows: list[Any], offset: int, max_results: int) -> tuple[list[Any], str | None]:
    if len(rows) > max_results:
        return rows[:max_results], create_page_token(offset + max_results)
    return rows, None


def check_max_results(max_results: int, threshold: int) -> None:
    if max_results < 1:
        raise invalid_parameter(
            f"Invalid value for max_results. It must be a positive integer, but got {max_results}"
        )
    if max_results > threshold:
        raise invalid_parameter(
            "Invalid value for request parameter max_results. It must be at most "
            f"{threshold}, but got value {max_results}"
        )


def search_model_ids(
    session: Session,
    *,
    filter_string: str,
    max_results: int,
    order_by: list[str],
    page_token: str | None,
) -> tuple[list[int], str | None]:
    """Registered model ids of one page of `search-registered-models`, and the next token."""
    check_max_results(max_results, MODEL_MAX_RESULTS_THRESHOLD)
    parsed = parse_model_filter_syntax(filter_string)
    order = parse_model_order_by(order_by)
    offset = parse_page_token(page_token)
    clauses = check_model_comparators(parsed)
    columns = {"name": RegisteredModel.name, "last_updated_time": RegisteredModel.last_updated_time}
    stmt = (
        sa.select(RegisteredModel.id)
        .where(*_model_where(clauses, _dialect(session)))
        .order_by(*(columns[c].asc() if asc else columns[c].desc() for c, asc in order))
        .offset(offset)
        .limit(max_results + 1)
    )
    return _page(list(session.execute(stmt).scalars()), offset, max_results)


def search_version_keys(
    session: Session,
    *,
    filter_string: str,
    max_results: int,
    order_by: list[str],
    page_token: str | None,
) -> tuple[list[tuple[int, int]], str | None]:
    """(registered model id, version) of one page of `search-model-versions`, and the token."""
    check_max_results(max_results, VERSION_MAX_RESULTS_THRESHOLD)
    clauses = parse_version_filter(filter_string)
    order = parse_version_order_by(order_by)
    offset = parse_page_token(page_token)
    columns: dict[str, Any] = {
        "name": RegisteredModel.name,
        "version": ModelVersion.version,
        "creation_time": ModelVersion.creation_time,
        "last_updated_time": ModelVersion.last_updated_time,
    }
    stmt = (
        sa.select(ModelVersion.registered_model_id, ModelVersion.version)
        .join(RegisteredModel, RegisteredModel.id == ModelVersion.registered_model_id)
        .where(*_version_where(clauses, _dialect(session)))
        .order_by(*(columns[c].asc() if asc else columns[c].desc() for c, asc in order))
        .offset(offset)
        .limit(max_results + 1)
    )
    rows = [(int(r[0]), int(r[1])) for r in session.execute(stmt)]
    return _page(rows, offset, max_results)
