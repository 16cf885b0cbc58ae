"""Assessments (feedback, expectations, issue references) as MLflow 3.17 stores them.

A request's assessment is read the way MLflow's entities read its proto: a feedback value or
an expectation value goes through protobuf's `Value`, so every JSON number becomes a float
(`5` is stored as `5.0`); an expectation may instead come JSON-encoded in `serialized_value`;
the source type must be one MLflow knows. Values are stored as JSON text, as MLflow does;
`aggregate_value` is what trace metrics average.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from tether.clock import now_ms
from tether.db.models import Assessment
from tether.errors import invalid_parameter
from tether.tracking.traces import analytics
from tether.tracking.traces.schemas import AssessmentIn

_SOURCE_TYPES = ("SOURCE_TYPE_UNSPECIFIED", "LLM_JUDGE", "HUMAN", "CODE")


def new_id() -> str:
    return "a-" + uuid.uuid4().hex


def through_value(value: Any) -> Any:
    """A JSON value as protobuf's `Value` hands it back: numbers as floats."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, list):
        return [through_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): through_value(v) for k, v in value.items()}
    return value


def kind_of(item: AssessmentIn) -> str:
    kinds = [
        name
        for name, part in (
            ("expectation", item.expectation),
            ("feedback", item.feedback),
            ("issue", item.issue),
        )
        if part is not None
    ]
    if len(kinds) != 1:
        raise invalid_parameter(f"Unknown assessment type: {kinds[0] if kinds else None}")
    return kinds[0]


def value_of(item: AssessmentIn, kind: str) -> Any:
    if kind == "feedback":
        assert item.feedback is not None
        return through_value(item.feedback.value)
    if kind == "expectation":
        assert item.expectation is not None
        serialized = item.expectation.serialized_value
        if serialized is not None:
            if serialized.serialization_format != "JSON_FORMAT":
                raise invalid_parameter(
                    f"Unknown serialization format: {serialized.serialization_format or ''}. "
                    "Only JSON_FORMAT is supported."
                )
            try:
                return json.loads(serialized.value or "")
            except ValueError:
                raise invalid_parameter(
                    "Invalid value for parameter 'assessment.expectation.serialized_value': "
                    "not JSON."
                ) from None
        value = through_value(item.expectation.value)
        if value is None:
            raise invalid_parameter("The `value` field must be specified.")
        return value
    assert item.issue is not None
    return {"issue_name": item.issue.issue_name or ""}


def error_json(item: AssessmentIn, kind: str) -> str | None:
    if kind != "feedback" or item.feedback is None or item.feedback.error is None:
        return None
    error = item.feedback.error
    return json.dumps(
        {
            "error_code": error.error_code or "",
            "error_message": error.error_message or None,
            "stack_trace": error.stack_trace or None,
        }
    )


def source_type(item: AssessmentIn) -> str:
    kind = item.source.source_type if item.source is not None else "SOURCE_TYPE_UNSPECIFIED"
    if kind not in _SOURCE_TYPES:
        raise invalid_parameter(
            f"Invalid assessment source type: {kind}. Valid source types: {list(_SOURCE_TYPES)}"
        )
    return kind


def row_from(
    item: AssessmentIn, trace_id: str, experiment_id: int, trace_timestamp_ms: int
) -> Assessment:
    """A new `assessments` row (MLflow's `SqlAssessments.from_mlflow_entity`)."""
    kind = kind_of(item)
    value = value_of(item, kind)
    aggregate, numeric = analytics.assessment_aggregate(value)
    now = now_ms()
    metadata = dict(item.metadata) or None
    # MLflow's entities drop what the kind does not carry: an expectation has no rationale,
    # overrides or error of its own.
    rationale = (item.rationale or None) if kind != "expectation" else None
    overrides = (item.overrides or None) if kind == "feedback" else None
    run_id = (metadata or {}).get("mlflow.assessment.sourceRunId")
    return Assessment(
        assessment_id=item.assessment_id or new_id(),
        trace_id=trace_id,
        name=item.assessment_name or "",
        assessment_type=kind,
        value=json.dumps(value),
        error=error_json(item, kind),
        created_timestamp=item.create_time or now,
        last_updated_timestamp=item.last_update_time or now,
        experiment_id=experiment_id,
        trace_timestamp_ms=trace_timestamp_ms,
        aggregate_value=aggregate,
        is_numeric_value=numeric,
        source_type=source_type(item),
        source_id=(item.source.source_id or None) if item.source is not None else None,
        run_id=run_id,
        span_id=item.span_id or None,
        rationale=rationale,
        overrides=overrides,
        valid=True,
        assessment_metadata=json.dumps(metadata) if metadata else None,
    )
