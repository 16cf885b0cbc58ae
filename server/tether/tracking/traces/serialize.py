"""Stored traces and assessments as MLflow's JSON answers (protobuf's JSON of `TraceInfoV3`,
`TraceInfo` v2 and `Assessment`).

As MLflow answers them: metadata keys and values cut to 250 characters, tag keys to 250 and
values to 4096 (`_truncate_request_metadata` / `_truncate_tags`); the trace name and the
promoted metadata (session, token usage, cost) rebuilt from their columns; fields at their
protobuf default left out, unless MLflow sets them explicitly (its messages are proto2: a
field set to its default is still answered, e.g. `state`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from tether.tracking.traces import analytics, schemas
from tether.tracking.traces.times import format_duration, format_timestamp

TRACE_NAME_TAG = "mlflow.traceName"
_MAX_METADATA = 250
_MAX_TAG_KEY = 250
_MAX_TAG_VALUE = 4096
_JSON_FORMAT = "JSON_FORMAT"


def trace_tags(row: Any, tags: Mapping[str, str | None]) -> dict[str, str]:
    """A trace's tags as MLflow holds them: the name from its column, not the tag table."""
    out = {k: v or "" for k, v in tags.items() if k != TRACE_NAME_TAG}
    if row.trace_name is not None:
        out[TRACE_NAME_TAG] = row.trace_name
    return out


def trace_metadata(row: Any, metadata: Mapping[str, str | None]) -> dict[str, str]:
    out = {k: v or "" for k, v in metadata.items() if k not in analytics.PROMOTED_KEYS}
    out.update(analytics.compatibility_metadata(row))
    return out


def trace_info(
    row: Any,
    tags: Mapping[str, str | None],
    metadata: Mapping[str, str | None],
    assessments: Sequence[Any],
) -> schemas.TraceInfoV3:
    """`row`: a `trace_info` row (its columns as attributes); `assessments`: rows of
    `assessments`. Written for speed (a search page is a hundred of them): one pass per
    mapping, cut and filtered together; the promoted metadata only looked at when set."""
    info: dict[str, Any] = {"trace_id": row.request_id}
    if row.client_request_id is not None:
        info["client_request_id"] = row.client_request_id
    info["trace_location"] = {
        "type": "MLFLOW_EXPERIMENT",
        "mlflow_experiment": {"experiment_id": str(row.experiment_id)},
    }
    info["request_time"] = format_timestamp(row.timestamp_ms)
    if row.execution_time_ms is not None:
        info["execution_duration"] = format_duration(row.execution_time_ms)
    info["state"] = row.status  # a proto2 field MLflow always sets: answered even when unset
    promoted = analytics.PROMOTED_KEYS
    meta = {
        k[:_MAX_METADATA]: (v or "")[:_MAX_METADATA]
        for k, v in metadata.items()
        if k not in promoted
    }
    for k, v in analytics.compatibility_metadata(row).items():
        meta[k[:_MAX_METADATA]] = v[:_MAX_METADATA]
    if meta:
        info["trace_metadata"] = meta
    if assessments:
        info["assessments"] = [assessment(a) for a in assessments]
    tag_map = {
        k[:_MAX_TAG_KEY]: (v or "")[:_MAX_TAG_VALUE] for k, v in tags.items() if k != TRACE_NAME_TAG
    }
    if row.trace_name is not None:
        tag_map[TRACE_NAME_TAG] = row.trace_name[:_MAX_TAG_VALUE]
    if tag_map:
        info["tags"] = tag_map
    if row.request_preview is not None:
        info["request_preview"] = row.request_preview
    if row.response_preview is not None:
        info["response_preview"] = row.response_preview
    return info  # type: ignore[return-value]


def trace_info_v2(
    row: Any, tags: Mapping[str, str | None], metadata: Mapping[str, str | None]
) -> schemas.TraceInfoV2:
    """MLflow's `TraceInfoV2.from_v3(...).to_proto()`: the state as a status, a missing
    execution time as 0, the v3 previews and assessments left out."""
    info: dict[str, Any] = {
        "request_id": row.request_id,
        "experiment_id": str(row.experiment_id),
        "timestamp_ms": row.timestamp_ms,
        "execution_time_ms": row.execution_time_ms or 0,
    }
    info["status"] = "TRACE_STATUS_UNSPECIFIED" if row.status == "STATE_UNSPECIFIED" else row.status
    meta = trace_metadata(row, metadata)
    if meta:
        info["request_metadata"] = [
            {"key": k[:_MAX_METADATA], "value": v[:_MAX_METADATA]} for k, v in meta.items()
        ]
    tag_map = trace_tags(row, tags)
    if tag_map:
        info["tags"] = [
            {"key": k[:_MAX_TAG_KEY], "value": v[:_MAX_TAG_VALUE]} for k, v in tag_map.items()
        ]
    return info  # type: ignore[return-value]


def assessment(row: Any) -> schemas.Assessment:
    """`row`: an `assessments` row (ORM entity or `repository.AssessmentRow`)."""
    # proto2: what MLflow's `to_proto` sets is answered, defaults included.
    out: dict[str, Any] = {
        "assessment_id": row.assessment_id,
        "assessment_name": row.name,
        "trace_id": row.trace_id,
    }
    if row.span_id is not None:
        out["span_id"] = row.span_id
    source: dict[str, Any] = {"source_type": row.source_type}
    if row.source_id is not None:
        source["source_id"] = row.source_id
    out["source"] = source
    out["create_time"] = format_timestamp(row.created_timestamp)
    out["last_update_time"] = format_timestamp(row.last_updated_timestamp)
    value = json.loads(row.value)
    if row.assessment_type == "feedback":
        feedback: dict[str, Any] = {"value": value}
        if row.error is not None:
            feedback["error"] = _error(json.loads(row.error))
        out["feedback"] = feedback
        if row.rationale is not None:
            out["rationale"] = row.rationale
    elif row.assessment_type == "expectation":
        out["expectation"] = _expectation(value)
    else:
        issue_name = value.get("issue_name") if isinstance(value, dict) else None
        out["issue"] = {"issue_name": issue_name} if issue_name else {}
        if row.rationale is not None:
            out["rationale"] = row.rationale
    if row.assessment_metadata is not None:
        metadata = json.loads(row.assessment_metadata)
        if metadata:
            out["metadata"] = {str(k): str(v) for k, v in metadata.items()}
    if row.overrides:
        out["overrides"] = row.overrides
    out["valid"] = bool(row.valid)
    return out  # type: ignore[return-value]


def _expectation(value: Any) -> schemas.Expectation:
    """Numbers, strings, booleans and null as a protobuf Value; anything else as JSON text
    (MLflow's `ExpectationValue.to_proto`)."""
    if value is None or isinstance(value, bool | int | float | str):
        return {"value": value}
    return {"serialized_value": {"serialization_format": _JSON_FORMAT, "value": json.dumps(value)}}


def _error(error: dict[str, Any]) -> schemas.AssessmentError:
    out: dict[str, Any] = {}
    if error.get("error_code"):
        out["error_code"] = error["error_code"]
    if error.get("error_message"):
        out["error_message"] = error["error_message"]
    if error.get("stack_trace"):
        out["stack_trace"] = _stack_trace(error["stack_trace"])
    return out  # type: ignore[return-value]


_STACK_TRACE_MAX = 10000
_STACK_TRACE_PREFIX = "[Stack trace is truncated]\n...\n"


def _stack_trace(text: str) -> str:
    if len(text) <= _STACK_TRACE_MAX:
        return text
    return _STACK_TRACE_PREFIX + text[-(_STACK_TRACE_MAX - len(_STACK_TRACE_PREFIX)) :]
