"""Trace metrics (`traces/metrics`, what the UI's experiment overview charts) and the NPMI
correlation of two trace filters, as MLflow 3.17 computes them in SQL.

Views: TRACES (count, sessions, latency, token usage per trace), SPANS (count and latency
of the spans received over OTLP; span costs are not computed, so cost metrics have no
points) and ASSESSMENTS (count and value of valid assessments). Points group by the
requested dimensions, optionally by time bucket (`time_interval_seconds`, epoch-aligned,
answered as ISO 8601 UTC), ordered by those, at most `max_results`. Percentiles interpolate
linearly between ranks on both backends.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from tether.db.engine import Database
from tether.db.models import Assessment, TraceInfo, TraceMetadata, TraceRunLink, TraceSpan, TraceTag
from tether.errors import invalid_parameter
from tether.search.experiment_ids import parse_experiment_id
from tether.search.filter_syntax import parse_clauses
from tether.search.sql import dialect_name
from tether.search.tokenizer import IDENT, STRING
from tether.search.values import quoted_string
from tether.tracking.traces import analytics, filters, schemas, search
from tether.tracking.traces.search import analytics_condition

_ALL = ("AVG", "MIN", "MAX", "PERCENTILE")
_TOKENS = ("SUM", *_ALL)
# view -> metric -> (aggregations, dimensions)
CONFIGS: dict[str, dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "TRACES": {
        "trace_count": (("COUNT",), ("trace_name", "trace_status")),
        "session_count": (("COUNT",), ()),
        "latency": (_ALL, ("trace_name",)),
        "input_tokens": (_TOKENS, ("trace_name",)),
        "output_tokens": (_TOKENS, ("trace_name",)),
        "total_tokens": (_TOKENS, ("trace_name",)),
        "cache_read_input_tokens": (_TOKENS, ("trace_name",)),
        "cache_creation_input_tokens": (_TOKENS, ("trace_name",)),
    },
    "SPANS": {
        "span_count": (
            ("COUNT",),
            ("span_name", "span_type", "span_status", "span_model_name", "span_model_provider"),
        ),
        "latency": (_ALL, ("span_name", "span_status")),
        "input_cost": (_TOKENS, ("span_model_name", "span_model_provider")),
        "output_cost": (_TOKENS, ("span_model_name", "span_model_provider")),
        "total_cost": (_TOKENS, ("span_model_name", "span_model_provider")),
    },
    "ASSESSMENTS": {
        "assessment_count": (("COUNT",), ("assessment_name", "assessment_value")),
        "assessment_value": (_ALL, ("assessment_name",)),
    },
}
_FILTER_ENTITIES = {
    "trace": {"status": False, "tag": True, "metadata": True},
    "span": {"name": False, "status": False, "type": False},
    "assessment": {"name": False, "type": False},
}
_COST_METRICS = ("input_cost", "output_cost", "total_cost")


def _label(aggregation: schemas.AggregationIn) -> str:
    if aggregation.aggregation_type == "PERCENTILE":
        return f"P{float(aggregation.percentile_value or 0)}"
    return aggregation.aggregation_type


def _check(body: schemas.QueryTraceMetrics) -> None:
    view = body.view_type
    if view not in CONFIGS:
        raise invalid_parameter(f"view_type must be one of {list(CONFIGS)}, got '{view}'")
    metrics = CONFIGS[view]
    if body.metric_name not in metrics:
        raise invalid_parameter(
            f"metric_name must be one of {list(metrics)}, got '{body.metric_name}'"
        )
    for aggregation in body.aggregations:
        kind, value = aggregation.aggregation_type, aggregation.percentile_value
        if kind == "PERCENTILE":
            if value is None:
                raise invalid_parameter("Percentile value is required for PERCENTILE aggregation")
            if not 0 <= value <= 100:
                raise invalid_parameter(f"Percentile value must be between 0 and 100, got {value}")
        elif value is not None:
            raise invalid_parameter(
                f"Percentile value is only allowed for PERCENTILE aggregation type, got {kind}"
            )
    allowed_aggregations, allowed_dimensions = metrics[body.metric_name]
    invalid = sorted({a.aggregation_type for a in body.aggregations} - set(allowed_aggregations))
    if invalid:
        raise invalid_parameter(
            f"Found invalid aggregation_type(s): {invalid}. "
            f"Supported aggregation types: {sorted(allowed_aggregations)}"
        )
    bad_dimensions = sorted(set(body.dimensions) - set(allowed_dimensions))
    if bad_dimensions:
        raise invalid_parameter(
            f"Found invalid dimension(s): {bad_dimensions}. "
            f"Supported dimensions: {sorted(allowed_dimensions)}"
        )
    if body.time_interval_seconds and (body.start_time_ms is None or body.end_time_ms is None):
        raise invalid_parameter(
            "start_time_ms and end_time_ms are required if time_interval_seconds is set"
        )


def _parse_metric_filter(text: str) -> tuple[str, str, str | None, str, str]:
    """(view, entity, key, comparator, value) of one `view.entity[.key] <op> 'value'`."""
    clauses = parse_clauses(text, quote_invalid=False)
    if len(clauses) != 1:
        raise invalid_parameter(f"Invalid filter: '{text}'. Expected one filter clause.")
    clause = clauses[0]
    identifier = clause.ident.raw
    message = (
        f"Invalid identifier {identifier!r}. Columns should be specified as "
        "'trace.<key>', 'span.<key>', 'assessment.<key>'."
    )
    parts = identifier.split(".", 2)
    if len(parts) not in (2, 3):
        raise invalid_parameter(message)
    view = parts[0].strip("`")
    entity = parts[1]
    key = parts[2] if len(parts) == 3 else None
    if view not in _FILTER_ENTITIES:
        raise invalid_parameter(
            f"Invalid view type '{view}'. Valid values are dict_keys({list(_FILTER_ENTITIES)})"
        )
    entities = _FILTER_ENTITIES[view]
    if entity not in entities:
        raise invalid_parameter(
            f"Invalid entity '{entity}' specified for view type '{view}'. "
            f"Valid entities are {list(entities)}"
        )
    if entities[entity] and key is None:
        raise invalid_parameter(
            f"Filtering by {entity} requires a key, e.g. '{view}.{entity}.<key> = <value>'"
        )
    if not entities[entity] and key is not None:
        raise invalid_parameter(
            f"Filtering by {entity} does not require a key, use '{view}.{entity}' instead"
        )
    if key is not None:
        key = key.strip("\"'").strip("`")
    if clause.value is None or clause.value.kind not in (STRING, IDENT):
        raise invalid_parameter(
            f"Expected a quoted string value for {entity} value (e.g. 'my-value'). "
            f"Got value {clause.value.raw if clause.value else None}"
        )
    return view, entity, key, clause.comparator, quoted_string(clause.value)


class TraceMetrics:
    def __init__(self, db: Database) -> None:
        self.db = db

    def query(self, body: schemas.QueryTraceMetrics) -> list[schemas.MetricDataPoint]:
        _check(body)
        experiment_ids = [parse_experiment_id(e) for e in body.experiment_ids]
        parsed = [_parse_metric_filter(f) for f in body.filters]
        with self.db.read() as session:
            rows, names = self._rows(session, body, experiment_ids, parsed)
        return _points(rows, names, len(names) - len(body.aggregations), body.metric_name)

    def _rows(
        self,
        session: Session,
        body: schemas.QueryTraceMetrics,
        experiment_ids: list[int],
        parsed: list[tuple[str, str, str | None, str, str]],
    ) -> tuple[list[Any], list[str]]:
        view, metric = body.view_type, body.metric_name
        dialect = dialect_name(session)
        conditions: list[Any] = []
        trace_id: Any = TraceInfo.request_id
        if view == "ASSESSMENTS":
            source: Any = sa.select().select_from(Assessment)
            conditions += [Assessment.experiment_id.in_(experiment_ids), Assessment.valid.is_(True)]
            timestamp: Any = Assessment.trace_timestamp_ms
            trace_id = Assessment.trace_id
        else:
            source = sa.select().select_from(TraceInfo)
            conditions.append(TraceInfo.experiment_id.in_(experiment_ids))
            timestamp = TraceInfo.timestamp_ms
            if view == "SPANS":
                source = source.join(TraceSpan, TraceSpan.trace_id == TraceInfo.request_id)
        if body.start_time_ms is not None:
            conditions.append(timestamp >= body.start_time_ms)
        if body.end_time_ms is not None:
            conditions.append(timestamp <= body.end_time_ms)
        for parsed_filter in parsed:
            conditions.append(_filter_condition(view, trace_id, *parsed_filter))
        column = _metric_column(view, metric)
        if view == "TRACES" and metric == "session_count":
            conditions.append(TraceInfo.session_id.is_not(None))
        elif column is not None:
            conditions.append(column.is_not(None))
        if column is None:  # span costs: not computed (README), so never a point
            conditions.append(sa.false())
            column = sa.literal(None)
        dimensions: list[Any] = []
        names: list[str] = []
        if body.time_interval_seconds:
            bucket = body.time_interval_seconds * 1000
            stamp = TraceSpan.start_time_ns // 1_000_000 if view == "SPANS" else timestamp
            dimensions.append((stamp // bucket) * bucket)
            names.append("time_bucket")
        for dimension in body.dimensions:
            dimension_column = _dimension_column(dimension)
            conditions.append(dimension_column.is_not(None))
            dimensions.append(dimension_column)
            names.append(dimension)
        aggregations = [_aggregate(a, column, metric, dialect) for a in body.aggregations]
        names += [_label(a) for a in body.aggregations]
        stmt = source.add_columns(*dimensions, *aggregations).where(*conditions)
        if dimensions:
            stmt = stmt.group_by(*dimensions).order_by(*dimensions)
        return list(session.execute(stmt.limit(body.max_results)).all()), names

    def correlation(
        self,
        experiment_ids: list[str],
        filter1: str,
        filter2: str,
        base_filter: str | None,
    ) -> schemas.FilterCorrelationResponse:
        ids = [parse_experiment_id(e) for e in experiment_ids]
        first = f"{base_filter} and {filter1}" if base_filter else filter1
        second = f"{base_filter} and {filter2}" if base_filter else filter2
        with self.db.read() as session:
            dialect = dialect_name(session)
            total = _count(session, ids, base_filter, dialect)
            count1 = _count(session, ids, first, dialect)
            count2 = _count(session, ids, second, dialect)
            joint = _count(session, ids, f"{first} and {filter2}", dialect)
        npmi, smoothed = npmi_from_counts(joint, count1, count2, total)
        out: schemas.FilterCorrelationResponse = {}
        if not math.isnan(npmi):  # an undefined NPMI is left out, as MLflow does
            out["npmi"] = npmi
        if not math.isnan(smoothed):
            out["npmi_smoothed"] = smoothed
        out["filter1_count"] = count1
        out["filter2_count"] = count2
        out["joint_count"] = joint
        out["total_count"] = total
        return out


def _count(session: Session, ids: list[int], filter_string: str | None, dialect: str) -> int:
    clauses = filters.parse_filter(filter_string) if filter_string else []
    built = search.build(clauses, dialect, ids)
    stmt = sa.select(sa.func.count()).where(TraceInfo.experiment_id.in_(ids), *built.conditions)
    return int(session.scalar(stmt) or 0)


def npmi_from_counts(joint: int, count1: int, count2: int, total: int) -> tuple[float, float]:
    """MLflow's `calculate_npmi_from_counts`: (NPMI, NPMI with Jeffreys smoothing)."""
    nan = float("nan")
    if total <= 0 or count1 == 0 or count2 == 0:
        return nan, nan
    n11, n10, n01 = joint, count1 - joint, count2 - joint
    n00 = total - count1 - count2 + joint
    if min(n11, n10, n01, n00) < 0:
        return nan, nan
    raw = -1.0 if joint == 0 else _npmi(n11, n10, n01, n00, 0)
    return raw, _npmi(n11, n10, n01, n00, 0.5)


def _npmi(n11: float, n10: float, n01: float, n00: float, smoothing: float) -> float:
    s11, s10, s01, s00 = (n + smoothing for n in (n11, n10, n01, n00))
    total = s11 + s10 + s01 + s00
    n1, n2 = s11 + s10, s11 + s01
    if n1 <= 0 or n2 <= 0 or s11 <= 0:
        return float("nan")
    if n10 == 0 and n01 == 0 and n00 == 0:
        return 1.0
    pmi = (math.log(s11) + math.log(total)) - (math.log(n1) + math.log(n2))
    denominator = -(math.log(s11) - math.log(total))
    return max(-1.0, min(1.0, pmi / denominator))


def _metric_column(view: str, metric: str) -> Any:
    if view == "TRACES":
        if metric == "trace_count":
            return TraceInfo.request_id
        if metric == "session_count":
            return sa.distinct(TraceInfo.session_id)
        if metric == "latency":
            return TraceInfo.execution_time_ms
        return getattr(TraceInfo, metric)
    if view == "SPANS":
        if metric == "span_count":
            return TraceSpan.span_id
        if metric == "latency":
            return (TraceSpan.end_time_ns - TraceSpan.start_time_ns) // 1_000_000
        return None
    if metric == "assessment_count":
        return Assessment.assessment_id
    return Assessment.aggregate_value


def _dimension_column(dimension: str) -> Any:
    return {
        "trace_name": TraceInfo.trace_name,
        "trace_status": TraceInfo.status,
        "span_name": TraceSpan.name,
        "span_type": TraceSpan.type,
        "span_status": TraceSpan.status,
        "span_model_name": sa.null(),
        "span_model_provider": sa.null(),
        "assessment_name": Assessment.name,
        "assessment_value": Assessment.value,
    }[dimension]


def _aggregate(aggregation: schemas.AggregationIn, column: Any, metric: str, dialect: str) -> Any:
    kind = aggregation.aggregation_type
    if kind == "COUNT":
        return sa.func.count(column)
    if kind == "SUM":
        return sa.func.sum(column)
    if kind == "AVG":
        return sa.func.avg(column)
    if kind == "MIN":
        return sa.func.min(column)
    if kind == "MAX":
        return sa.func.max(column)
    percentile = float(aggregation.percentile_value or 0)
    if dialect == "postgresql":
        return sa.func.percentile_cont(percentile / 100).within_group(column)
    return sa.func.percentile(column, percentile)


def _filter_condition(
    view: str, trace_id: Any, kind: str, entity: str, key: str | None, comparator: str, value: str
) -> Any:
    def on_trace(condition: Any) -> Any:
        if view == "ASSESSMENTS":
            return sa.exists().where(TraceInfo.request_id == trace_id, condition)
        return condition

    if kind == "trace":
        if entity == "status":
            return on_trace(TraceInfo.status == value)
        assert key is not None
        if entity == "metadata":
            if key == analytics.SESSION_KEY:
                return on_trace(TraceInfo.session_id == value)
            if key in analytics.COLUMNS_BY_KEY:
                return on_trace(analytics_condition(key, comparator, value))
            condition: Any = sa.exists().where(
                TraceMetadata.request_id == trace_id,
                TraceMetadata.key == key,
                TraceMetadata.value == value,
            )
            if key == analytics.SOURCE_RUN_KEY:
                condition = sa.or_(
                    condition,
                    sa.exists().where(
                        TraceRunLink.trace_id == trace_id, TraceRunLink.run_id == value
                    ),
                )
            return condition
        if key == "mlflow.traceName":
            return on_trace(TraceInfo.trace_name == value)
        return sa.exists().where(
            TraceTag.request_id == trace_id, TraceTag.key == key, TraceTag.value == value
        )
    if kind == "span":
        if view != "SPANS":
            raise invalid_parameter(
                f"Filtering by span is only supported for SPANS view type, got {view}"
            )
        column = {"name": TraceSpan.name, "status": TraceSpan.status, "type": TraceSpan.type}
        return column[entity] == value
    if view != "ASSESSMENTS":
        raise invalid_parameter(
            f"Filtering by assessment is only supported for ASSESSMENTS view type, got {view}"
        )
    return (Assessment.name if entity == "name" else Assessment.assessment_type) == value


def _points(
    rows: list[Any], names: list[str], dimension_count: int, metric: str
) -> list[schemas.MetricDataPoint]:
    points: list[schemas.MetricDataPoint] = []
    for row in rows:
        dims = dict(zip(names[:dimension_count], row[:dimension_count], strict=True))
        if any(v is None for v in dims.values()):
            continue
        if "time_bucket" in dims:
            seconds = float(dims["time_bucket"]) / 1000.0
            dims["time_bucket"] = datetime.fromtimestamp(seconds, tz=UTC).isoformat()
        values = {
            name: float(value)
            for name, value in zip(names[dimension_count:], row[dimension_count:], strict=True)
            if value is not None
        }
        if not values:
            continue
        point: schemas.MetricDataPoint = {"metric_name": metric}
        if dims:
            point["dimensions"] = {k: str(v) for k, v in dims.items()}
        point["values"] = values
        points.append(point)
    return points
