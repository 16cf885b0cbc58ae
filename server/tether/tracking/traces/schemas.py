"""Request messages and answers of MLflow's tracing endpoints (`/api/3.0/mlflow/traces...`,
the v2 legacy routes, assessments, trace metrics), as MLflow 3.17's protos define them.

Request fields use protobuf's JSON forms: timestamps as RFC 3339 strings, durations as
"1.5s", enums by name (or number), maps as JSON objects; assessment values are any JSON.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, NotRequired

from pydantic import BeforeValidator, Field
from typing_extensions import TypedDict

from tether.tracking.traces.times import parse_duration, parse_timestamp
from tether.wire import Bool, Double, Int64, RequestModel, Str

TRACE_STATES = ("STATE_UNSPECIFIED", "OK", "ERROR", "IN_PROGRESS")
TRACE_STATUSES = ("TRACE_STATUS_UNSPECIFIED", "OK", "ERROR", "IN_PROGRESS")
SOURCE_TYPES = ("SOURCE_TYPE_UNSPECIFIED", "HUMAN", "LLM_JUDGE", "CODE")
VIEW_TYPES = ("METRIC_VIEW_TYPE_UNSPECIFIED", "TRACES", "SPANS", "ASSESSMENTS")
AGGREGATION_TYPES = (
    "AGGREGATION_TYPE_UNSPECIFIED",
    "COUNT",
    "SUM",
    "AVG",
    "PERCENTILE",
    "MIN",
    "MAX",
)


def _enum(names: tuple[str, ...]) -> Any:
    """A protobuf enum in JSON: its name, or its number."""

    def read(value: Any) -> str:
        if isinstance(value, bool):
            raise ValueError("bool")
        if isinstance(value, int) and 0 <= value < len(names):
            return names[value]
        if isinstance(value, str) and value in names:
            return value
        raise ValueError(f"not one of {names}")

    return BeforeValidator(read)


def _timestamp(value: Any) -> int:
    if not isinstance(value, str):
        raise ValueError("not a timestamp string")
    return parse_timestamp(value)


def _duration(value: Any) -> int:
    if not isinstance(value, str):
        raise ValueError("not a duration string")
    return parse_duration(value)


def _string_map(value: Any) -> dict[str, str]:
    """A proto map<string, string>: a JSON object of strings."""
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ValueError("not a map of strings")
    return value


def _field_mask(value: Any) -> list[str]:
    """A FieldMask: "a,b" (camelCase or snake_case) or {"paths": [...]}; snake_case paths."""
    if isinstance(value, dict) and isinstance(value.get("paths"), list):
        paths = value["paths"]
    elif isinstance(value, str):
        paths = [p for p in value.split(",") if p]
    else:
        raise ValueError("not a field mask")
    return ["".join(f"_{c.lower()}" if c.isupper() else c for c in str(p)) for p in paths]


Timestamp = Annotated[int, BeforeValidator(_timestamp)]
Duration = Annotated[int, BeforeValidator(_duration)]
StringMap = Annotated[dict[str, str], BeforeValidator(_string_map)]
TraceState = Annotated[str, _enum(TRACE_STATES)]
TraceStatus = Annotated[str, _enum(TRACE_STATUSES)]
SourceType = Annotated[str, _enum(SOURCE_TYPES)]


class KeyValueIn(RequestModel):
    key: Str | None = None
    value: Str | None = None


class ExperimentLocationIn(RequestModel):
    experiment_id: Str | None = None


class TraceLocationIn(RequestModel):
    type: Str | Int64 | None = None
    mlflow_experiment: ExperimentLocationIn | None = None


class AssessmentSourceIn(RequestModel):
    source_type: SourceType = "SOURCE_TYPE_UNSPECIFIED"
    source_id: Str | None = None


class AssessmentErrorIn(RequestModel):
    error_code: Str | None = None
    error_message: Str | None = None
    stack_trace: Str | None = None


class FeedbackIn(RequestModel):
    value: Any = None
    error: AssessmentErrorIn | None = None


class SerializedValueIn(RequestModel):
    serialization_format: Str | None = None
    value: Str | None = None


class ExpectationIn(RequestModel):
    value: Any = None
    serialized_value: SerializedValueIn | None = None


class IssueIn(RequestModel):
    issue_name: Str | None = None


class AssessmentIn(RequestModel):
    assessment_id: Str | None = None
    assessment_name: Str | None = None
    trace_id: Str | None = None
    span_id: Str | None = None
    source: AssessmentSourceIn | None = None
    create_time: Timestamp | None = None
    last_update_time: Timestamp | None = None
    feedback: FeedbackIn | None = None
    expectation: ExpectationIn | None = None
    issue: IssueIn | None = None
    rationale: Str | None = None
    error: AssessmentErrorIn | None = None
    metadata: StringMap = {}
    overrides: Str | None = None
    valid: Bool | None = None


class TraceInfoIn(RequestModel):
    trace_id: Str | None = None
    client_request_id: Str | None = None
    trace_location: TraceLocationIn | None = None
    request_preview: Str | None = None
    response_preview: Str | None = None
    request_time: Timestamp | None = None
    execution_duration: Duration | None = None
    state: TraceState = "STATE_UNSPECIFIED"
    trace_metadata: StringMap = {}
    tags: StringMap = {}
    assessments: list[AssessmentIn] = []


class TraceIn(RequestModel):
    trace_info: TraceInfoIn | None = None


class StartTraceV3(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("trace",)
    trace: TraceIn


class StartTraceV2(RequestModel):
    experiment_id: Str | None = None
    timestamp_ms: Int64 | None = None
    request_metadata: list[KeyValueIn] = []
    tags: list[KeyValueIn] = []


class EndTraceV2(RequestModel):
    timestamp_ms: Int64 | None = None
    status: TraceStatus = "TRACE_STATUS_UNSPECIFIED"
    request_metadata: list[KeyValueIn] = []
    tags: list[KeyValueIn] = []


class GetTrace(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("trace_id",)
    trace_id: Str
    allow_partial: Bool = False


class BatchGetTraces(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("trace_ids",)
    trace_ids: list[Str]
    experiment_ids: list[Str] = []


class SearchTracesV3(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("locations",)
    locations: list[TraceLocationIn]
    filter: Str = ""
    max_results: Int64 = 100
    order_by: list[Str] = []
    page_token: Str = ""


class SearchTracesV2(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("experiment_ids",)
    experiment_ids: list[Str]
    filter: Str = ""
    max_results: Int64 = 100
    order_by: list[Str] = []
    page_token: Str = ""


class DeleteTraces(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("experiment_id",)
    experiment_id: Str
    max_timestamp_millis: Int64 | None = None
    max_traces: Int64 | None = None
    request_ids: list[Str] = []


class SetTraceTag(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("key",)
    key: Str
    value: Str = ""


class DeleteTraceTag(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("key",)
    key: Str


class LinkTracesToRun(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("trace_ids", "run_id")
    trace_ids: list[Str]
    run_id: Str


class PromptVersionRef(RequestModel):
    name: Str | None = None
    version: Str | Int64 | None = None


class LinkPromptsToTrace(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("trace_id", "prompt_versions")
    trace_id: Str
    prompt_versions: list[PromptVersionRef]


class CreateAssessment(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("assessment",)
    assessment: AssessmentIn


class UpdateAssessment(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("assessment", "update_mask")
    assessment: AssessmentIn
    update_mask: Annotated[list[str], BeforeValidator(_field_mask)] = Field(
        json_schema_extra={"type": "string", "examples": ["assessment_name,feedback"]}
    )


class AggregationIn(RequestModel):
    aggregation_type: Annotated[str, _enum(AGGREGATION_TYPES)] = "AGGREGATION_TYPE_UNSPECIFIED"
    percentile_value: Double | None = None


class QueryTraceMetrics(RequestModel):
    required: ClassVar[tuple[str, ...]] = (
        "experiment_ids",
        "view_type",
        "metric_name",
        "aggregations",
    )
    experiment_ids: list[Str]
    view_type: Annotated[str, _enum(VIEW_TYPES)]
    metric_name: Str
    aggregations: list[AggregationIn]
    dimensions: list[Str] = []
    filters: list[Str] = []
    time_interval_seconds: Int64 | None = None
    start_time_ms: Int64 | None = None
    end_time_ms: Int64 | None = None
    max_results: Int64 = 1000
    page_token: Str = ""


class CalculateTraceFilterCorrelation(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("experiment_ids", "filter_string1", "filter_string2")
    experiment_ids: list[Str]
    filter_string1: Str
    filter_string2: Str
    base_filter: Str | None = None


class TraceArtifactQuery(RequestModel):
    request_id: Str | None = None
    path: Str | None = None


# Answers -----------------------------------------------------------------------------------


class ExperimentLocation(TypedDict):
    experiment_id: str


class TraceLocation(TypedDict):
    type: str
    mlflow_experiment: ExperimentLocation


class AssessmentSource(TypedDict):
    source_type: NotRequired[str]
    source_id: NotRequired[str]


class AssessmentError(TypedDict):
    error_code: NotRequired[str]
    error_message: NotRequired[str]
    stack_trace: NotRequired[str]


class Feedback(TypedDict):
    value: NotRequired[Any]
    error: NotRequired[AssessmentError]


class SerializedValue(TypedDict):
    serialization_format: str
    value: str


class Expectation(TypedDict):
    value: NotRequired[Any]
    serialized_value: NotRequired[SerializedValue]


class IssueReference(TypedDict):
    issue_name: NotRequired[str]


class Assessment(TypedDict):
    assessment_id: NotRequired[str]
    assessment_name: NotRequired[str]
    trace_id: NotRequired[str]
    span_id: NotRequired[str]
    source: AssessmentSource
    create_time: str
    last_update_time: str
    feedback: NotRequired[Feedback]
    expectation: NotRequired[Expectation]
    issue: NotRequired[IssueReference]
    rationale: NotRequired[str]
    metadata: NotRequired[dict[str, str]]
    overrides: NotRequired[str]
    valid: NotRequired[bool]


class TraceInfoV3(TypedDict):
    trace_id: str
    client_request_id: NotRequired[str]
    trace_location: TraceLocation
    request_time: str
    execution_duration: NotRequired[str]
    state: NotRequired[str]
    trace_metadata: NotRequired[dict[str, str]]
    assessments: NotRequired[list[Assessment]]
    tags: NotRequired[dict[str, str]]
    request_preview: NotRequired[str]
    response_preview: NotRequired[str]


class TraceInfoOnly(TypedDict):
    trace_info: TraceInfoV3


class TraceInfoResponse(TypedDict):
    """`StartTraceV3`, `GetTraceInfoV3`: a trace with its info only."""

    trace: TraceInfoOnly


class KeyValuePair(TypedDict):
    key: str
    value: str


class TraceInfoV2(TypedDict):
    request_id: str
    experiment_id: str
    timestamp_ms: int
    execution_time_ms: int
    status: NotRequired[str]
    request_metadata: NotRequired[list[KeyValuePair]]
    tags: NotRequired[list[KeyValuePair]]


class TraceInfoV2Response(TypedDict):
    """`StartTrace`, `EndTrace`, `GetTraceInfo` (v2)."""

    trace_info: TraceInfoV2


class SearchTracesV3Response(TypedDict):
    traces: NotRequired[list[TraceInfoV3]]
    next_page_token: NotRequired[str]


class SearchTracesV2Response(TypedDict):
    traces: NotRequired[list[TraceInfoV2]]
    next_page_token: NotRequired[str]


class BatchGetTraceInfosResponse(TypedDict):
    trace_infos: NotRequired[list[TraceInfoV3]]


class OtlpSpan(TypedDict, total=False):
    """An OpenTelemetry span in OTLP's proto3 JSON (ids base64, times in nanoseconds)."""

    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    start_time_unix_nano: int
    end_time_unix_nano: int
    attributes: list[dict[str, Any]]
    events: list[dict[str, Any]]
    links: list[dict[str, Any]]
    status: dict[str, Any]


class Trace(TypedDict):
    trace_info: TraceInfoV3
    spans: NotRequired[list[OtlpSpan]]


class TraceResponse(TypedDict):
    """`GetTrace`: the trace with its spans."""

    trace: Trace


class BatchGetTracesResponse(TypedDict):
    traces: NotRequired[list[Trace]]


class DeleteTracesResponse(TypedDict):
    traces_deleted: NotRequired[int]


class AssessmentResponse(TypedDict):
    assessment: Assessment


class MetricDataPoint(TypedDict):
    metric_name: str
    dimensions: NotRequired[dict[str, str]]
    values: NotRequired[dict[str, float]]


class QueryTraceMetricsResponse(TypedDict):
    data_points: NotRequired[list[MetricDataPoint]]
    next_page_token: NotRequired[str]


class FilterCorrelationResponse(TypedDict):
    npmi: NotRequired[float]
    npmi_smoothed: NotRequired[float]
    filter1_count: NotRequired[int]
    filter2_count: NotRequired[int]
    joint_count: NotRequired[int]
    total_count: NotRequired[int]
