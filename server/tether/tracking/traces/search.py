"""`search_traces` in SQL: MLflow 3.17's filter semantics on `trace_info` and its children.

Each clause is a condition on `trace_info` (a column, or a correlated IN / EXISTS on tags,
metadata, assessments, run links, prompt links or the span index), as MLflow's SQL store
builds them:
- `run_id = X` matches traces whose `mlflow.sourceRun` metadata is X or that are linked to X;
- assessment clauses (`feedback.<name>`, `expectation.<name>`) look at valid assessments only,
  numeric comparisons at numeric values only, and a session-scoped assessment (metadata naming
  `mlflow.trace.session`) counts for every trace of its session;
- every span clause must hold for one same span. Name, type and status are in the span index;
  a span's content (`trace.text`, `span.attributes.<key>`) is in the artifact store, so those
  clauses are returned as a `ContentCheck` the service applies to the candidate traces' spans.

Ordering is MLflow's: each order_by key (NULLs last in both directions), then timestamp
DESC, then request_id ASC.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement

from tether.db.models import (
    Assessment,
    TraceInfo,
    TraceMetadata,
    TracePromptLink,
    TraceRunLink,
    TraceSpan,
    TraceTag,
)
from tether.errors import invalid_parameter
from tether.search.sql import compare
from tether.tracking.traces import analytics
from tether.tracking.traces.filters import (
    ATTRIBUTE,
    EXPECTATION,
    FEEDBACK,
    ISSUE,
    LINKED_PROMPTS_TAG,
    METADATA,
    NUMERIC_ASSESSMENT_COMPARATORS,
    SOURCE_RUN_METADATA,
    SPAN,
    SPAN_CONTENT,
    TAG,
    TRACE_NAME_TAG,
    Clause,
    OrderClause,
)

_COLUMNS: dict[str, Any] = {
    "request_id": TraceInfo.request_id,
    "experiment_id": TraceInfo.experiment_id,
    "timestamp_ms": TraceInfo.timestamp_ms,
    "execution_time_ms": TraceInfo.execution_time_ms,
    "status": TraceInfo.status,
    "client_request_id": TraceInfo.client_request_id,
}
_NULLABLE = frozenset({"execution_time_ms", "client_request_id", "end_time_ms"})
_SPAN_COLUMNS: dict[str, Any] = {
    "name": TraceSpan.name,
    "type": TraceSpan.type,
    "status": TraceSpan.status,
}


def end_time() -> ColumnElement[Any]:
    return TraceInfo.timestamp_ms + sa.func.coalesce(TraceInfo.execution_time_ms, 0)


def _column(key: str) -> Any:
    if key == "end_time_ms":
        return end_time()
    return _COLUMNS[key]


def _compare(column: Any, comparator: str, value: Any, dialect: str) -> ColumnElement[bool]:
    if comparator == "RLIKE":
        op = "~" if dialect == "postgresql" else "REGEXP"
        return cast("ColumnElement[bool]", column.op(op)(value))
    return compare(column, comparator, value, dialect)


@dataclass(frozen=True)
class ContentCheck:
    """Span clauses one same span must satisfy, where some need its content: `conditions`
    on the span index, `patterns` on the content line."""

    conditions: tuple[ColumnElement[bool], ...]
    patterns: tuple[tuple[str, str], ...]  # (comparator, pattern)

    def matches(self, content: str) -> bool:
        return all(_content_matches(content, c, p) for c, p in self.patterns)


@dataclass
class TraceFilter:
    conditions: list[ColumnElement[bool]] = field(default_factory=list)
    content: ContentCheck | None = None


def build(
    clauses: Sequence[Clause], dialect: str, experiment_ids: Sequence[int] | None
) -> TraceFilter:
    """The SQL conditions (over `trace_info`) of parsed clauses."""
    out = TraceFilter()
    span_conditions: list[ColumnElement[bool]] = []
    patterns: list[tuple[str, str]] = []
    for clause in clauses:
        entity, key, comparator, value = clause.entity, clause.key, clause.comparator, clause.value
        if entity == ATTRIBUTE:
            out.conditions.append(_compare(_column(key), comparator, value, dialect))
        elif entity == TAG:
            out.conditions.append(_tag(key, comparator, value, dialect))
        elif entity == METADATA:
            out.conditions.append(_metadata(key, comparator, value, dialect))
        elif entity == SPAN:
            if key in _SPAN_COLUMNS:
                span_conditions.append(_compare(_SPAN_COLUMNS[key], comparator, value, dialect))
            else:
                patterns.append(_content_pattern(key, comparator, value))
        elif entity in (FEEDBACK, EXPECTATION):
            out.conditions.append(
                _assessment(entity, key, comparator, value, dialect, experiment_ids)
            )
        elif entity == ISSUE:
            issue = sa.select(Assessment.trace_id).where(
                Assessment.assessment_type == "issue", Assessment.name == value
            )
            out.conditions.append(TraceInfo.request_id.in_(issue))
    if span_conditions or patterns:
        scope = [
            TraceSpan.trace_id == TraceInfo.request_id,
            TraceSpan.experiment_id == TraceInfo.experiment_id,
        ]
        out.conditions.append(sa.exists().where(*scope, *span_conditions))
        if patterns:
            out.content = ContentCheck(tuple(span_conditions), tuple(patterns))
    return out


def _tag(key: str, comparator: str, value: Any, dialect: str) -> Any:
    if key == TRACE_NAME_TAG:
        return _nullable_column(TraceInfo.trace_name, comparator, value, dialect)
    if key == LINKED_PROMPTS_TAG:
        if comparator != "=":
            raise invalid_parameter(
                f"Invalid comparator '{comparator}' for prompts filter. "
                "Only '=' is supported with format: prompt = \"name/version\""
            )
        if not isinstance(value, str) or value.count("/") != 1:
            raise invalid_parameter(
                f"Invalid prompts filter value '{value}'. "
                'Expected format: prompt = "name/version"'
            )
        name, version = value.split("/")
        linked = sa.select(TracePromptLink.trace_id).where(
            TracePromptLink.prompt_name == name, TracePromptLink.prompt_version == version
        )
        return TraceInfo.request_id.in_(linked)
    return _key_value(TraceTag, key, comparator, value, dialect)


def _metadata(key: str, comparator: str, value: Any, dialect: str) -> Any:
    if key == analytics.SESSION_KEY:
        return _nullable_column(TraceInfo.session_id, comparator, value, dialect)
    if key in analytics.COLUMNS_BY_KEY:
        return analytics_condition(key, comparator, value)
    if key == SOURCE_RUN_METADATA and comparator == "=":
        linked = sa.exists().where(
            TraceRunLink.trace_id == TraceInfo.request_id, TraceRunLink.run_id == value
        )
        logged = sa.exists().where(
            TraceMetadata.request_id == TraceInfo.request_id,
            TraceMetadata.key == SOURCE_RUN_METADATA,
            TraceMetadata.value == value,
        )
        return sa.or_(linked, logged)
    return _key_value(TraceMetadata, key, comparator, value, dialect)


def _nullable_column(column: Any, comparator: str, value: Any, dialect: str) -> Any:
    if comparator == "IS NULL":
        return column.is_(None)
    if comparator == "IS NOT NULL":
        return column.is_not(None)
    return _compare(column, comparator, value, dialect)


def _key_value(model: Any, key: str, comparator: str, value: Any, dialect: str) -> Any:
    exists = sa.exists().where(model.request_id == TraceInfo.request_id, model.key == key)
    if comparator == "IS NULL":
        return ~exists
    if comparator == "IS NOT NULL":
        return exists
    matching = sa.select(model.request_id).where(
        model.key == key, _compare(model.value, comparator, value, dialect)
    )
    return TraceInfo.request_id.in_(matching)


def analytics_condition(key: str, comparator: str, value: Any) -> ColumnElement[bool]:
    """Token usage and cost metadata, held in columns: presence, or equality with the exact
    JSON MLflow answers for them."""
    columns = {k: getattr(TraceInfo, c) for k, c in analytics.COLUMNS_BY_KEY[key].items()}
    present = sa.or_(*(c.is_not(None) for c in columns.values()))
    if comparator == "IS NULL":
        return ~present
    if comparator == "IS NOT NULL":
        return present
    if comparator not in ("=", "!="):
        raise invalid_parameter(
            f"Comparator '{comparator}' is not supported for reserved metadata '{key}'. "
            "Only '=', '!=', 'IS NULL', and 'IS NOT NULL' are supported."
        )
    try:
        parsed = json.loads(value)
    except (TypeError, ValueError):
        parsed = None
    convert = analytics.token_count if key == analytics.TOKEN_USAGE_KEY else analytics.finite_float
    normalized: dict[str, Any] = {}
    if isinstance(parsed, dict) and set(parsed) <= set(columns):
        normalized = {k: v for k in columns if (v := convert(parsed.get(k))) is not None}
    if normalized and value == json.dumps(normalized):
        equal: ColumnElement[bool] = sa.and_(
            *(
                sa.and_(c.is_not(None), c == normalized[k]) if k in normalized else c.is_(None)
                for k, c in columns.items()
            )
        )
    else:
        equal = sa.false()
    return equal if comparator == "=" else sa.and_(present, ~equal)


def _assessment(
    entity: str,
    name: str,
    comparator: str,
    value: Any,
    dialect: str,
    experiment_ids: Sequence[int] | None,
) -> ColumnElement[bool]:
    base = [
        Assessment.assessment_type == entity,
        Assessment.name == name,
        Assessment.valid.is_(True),
    ]
    if comparator in ("IS NULL", "IS NOT NULL"):
        filters = base
    elif comparator in NUMERIC_ASSESSMENT_COMPARATORS:
        filters = [
            *base,
            Assessment.is_numeric_value.is_(True),
            compare(Assessment.aggregate_value, comparator, value, dialect),
        ]
    elif comparator in ("=", "!="):
        equal = sa.or_(Assessment.value == value, Assessment.value == json.dumps(value))
        filters = [*base, equal if comparator == "=" else ~equal]
    else:
        filters = [*base, _compare(Assessment.value, comparator, value, dialect)]
    direct = sa.select(Assessment.trace_id).where(*filters)
    session_covered = _session_scoped(filters, experiment_ids)
    if comparator == "IS NULL":
        return sa.and_(
            ~sa.exists().where(Assessment.trace_id == TraceInfo.request_id, *filters),
            TraceInfo.request_id.not_in(session_covered),
        )
    return TraceInfo.request_id.in_(sa.union(direct, session_covered))


def _session_scoped(filters: list[Any], experiment_ids: Sequence[int] | None) -> Any:
    """Traces of the sessions that have a matching session-scoped assessment."""
    scoped, member = aliased(TraceInfo), aliased(TraceInfo)
    sessions = (
        sa.select(scoped.session_id)
        .join(Assessment, Assessment.trace_id == scoped.request_id)
        .where(
            *_in_experiments(scoped, experiment_ids),
            scoped.session_id.is_not(None),
            *filters,
            Assessment.assessment_metadata.is_not(None),
            Assessment.assessment_metadata.contains(f'"{analytics.SESSION_KEY}":'),
        )
    )
    return sa.select(member.request_id).where(
        *_in_experiments(member, experiment_ids), member.session_id.in_(sessions)
    )


def _in_experiments(model: Any, experiment_ids: Sequence[int] | None) -> list[Any]:
    return [] if experiment_ids is None else [model.experiment_id.in_(list(experiment_ids))]


# Span content ---------------------------------------------------------------------------------


def _content_pattern(key: str, comparator: str, value: Any) -> tuple[str, str]:
    """MLflow's comparisons on a span's stored content: `span.attributes.<k> LIKE v` looks for
    `"<k>"` followed by v; RLIKE anchors v inside the attribute's JSON-encoded text."""
    if key == SPAN_CONTENT:
        return comparator, value
    attribute = key[len("attributes.") :]
    if len(attribute) >= 2 and attribute[0] == attribute[-1] == "`":
        attribute = attribute[1:-1]
    if comparator in ("IN", "NOT IN"):
        raise invalid_parameter(f"span.{key} comparator '{comparator}' is not supported")
    if comparator == "RLIKE":
        text = str(value)
        prefix, suffix = '"\\\\".*', ""
        if text.startswith("^"):
            text, prefix = text[1:], '"\\\\"'
        if text.endswith("$"):
            text, suffix = text[:-1], '\\\\"'
        return comparator, f'"{attribute}": {prefix}{text}{suffix}'
    return comparator, f'%"{attribute}"{value}%'


def _like_regex(pattern: str, flags: int) -> re.Pattern[str]:
    parts = [".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern]
    return re.compile("".join(parts), flags | re.DOTALL)


def _content_matches(content: str, comparator: str, pattern: str) -> bool:
    if comparator == "LIKE":
        return _like_regex(pattern, 0).fullmatch(content) is not None
    if comparator == "ILIKE":
        return _like_regex(pattern, re.IGNORECASE).fullmatch(content) is not None
    if comparator == "RLIKE":
        try:
            return re.search(pattern, content) is not None
        except re.error:
            raise invalid_parameter(f"Invalid regular expression '{pattern}'") from None
    if comparator == "=":
        return content == pattern
    if comparator == "!=":
        return content != pattern
    raise invalid_parameter(f"Invalid comparator '{comparator}'")


# Ordering -------------------------------------------------------------------------------------


def order_by(clauses: Sequence[OrderClause]) -> list[Any]:
    """ORDER BY terms over `trace_info` (tags and metadata as correlated scalar subqueries)."""
    terms: list[Any] = []
    seen: set[str] = set()
    for clause in clauses:
        nullable = True
        if clause.entity == ATTRIBUTE:
            value: Any = _column(clause.key)
            nullable = clause.key in _NULLABLE
            seen.add(clause.key)
        elif clause.entity == TAG and clause.key == TRACE_NAME_TAG:
            value = TraceInfo.trace_name
        elif clause.entity == METADATA and clause.key == analytics.SESSION_KEY:
            value = TraceInfo.session_id
        elif clause.entity == METADATA and clause.key in analytics.COLUMNS_BY_KEY:
            raise invalid_parameter(
                f"Ordering by reserved metadata '{clause.key}' is not supported because it "
                "is represented by multiple columns."
            )
        else:
            model: Any = TraceTag if clause.entity == TAG else TraceMetadata
            value = (
                sa.select(model.value)
                .where(model.request_id == TraceInfo.request_id, model.key == clause.key)
                .scalar_subquery()
            )
        if nullable:
            terms.append(sa.case((value.is_(None), 1), else_=0))
        terms.append(value if clause.ascending else value.desc())
    if "timestamp_ms" not in seen:
        terms.append(TraceInfo.timestamp_ms.desc())
    if "request_id" not in seen:
        terms.append(TraceInfo.request_id)
    return terms
