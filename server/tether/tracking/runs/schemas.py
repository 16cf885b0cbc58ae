"""Request bodies and answers of MLflow's run endpoints."""

from __future__ import annotations

from typing import Any, ClassVar, Literal, NamedTuple, NotRequired, Self

from pydantic import Field, PrivateAttr
from typing_extensions import TypedDict

from tether.db.int64 import INT64_MAX, INT64_MIN
from tether.tracking import validation
from tether.tracking.experiments.schemas import KeyValue, KeyValuePair, LifecycleStage
from tether.tracking.metrics.schemas import Metric
from tether.wire import Double, Int64, RequestModel, Str, parse_model


class MetricIn(NamedTuple):
    """One point as the client sent it. A tuple: log-batch builds a thousand per request."""

    key: str | None
    value: float | None
    timestamp: int | None
    step: int
    # MLflow 3: a point logged with a model id is also a metric of that logged model.
    model_id: str | None = None
    dataset_name: str | None = None
    dataset_digest: str | None = None


class CreateRun(RequestModel):
    experiment_id: Str = ""
    user_id: Str = ""
    start_time: Int64 | None = None
    run_name: Str = ""
    tags: list[KeyValue] = []


class RunId(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("run_id",)
    run_id: Str


class UpdateRun(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("run_id",)
    run_id: Str
    # RunStatus by name or, as protobuf's JSON also allows, by enum number.
    status: Str | Int64 | None = Field(default=None, examples=["FINISHED", "RUNNING"])
    end_time: Int64 | None = None
    run_name: Str | None = None


class SetTag(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("run_id", "key")
    run_id: Str
    key: Str
    value: Str = ""


class DeleteTag(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("run_id", "key")
    run_id: Str
    key: Str


class LogParam(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("run_id", "key")
    run_id: Str
    key: Str
    value: Str = ""


class LogMetric(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("run_id", "key", "value", "timestamp")
    run_id: Str
    key: Str
    value: Double
    timestamp: Int64
    step: Int64 = 0
    model_id: Str | None = None
    dataset_name: Str | None = None
    dataset_digest: Str | None = None


class MetricPoint(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("key", "value", "timestamp")
    key: Str | None = None
    value: Double | None = None
    timestamp: Int64 | None = None
    step: Int64 = 0
    model_id: Str | None = None
    dataset_name: Str | None = None
    dataset_digest: Str | None = None


class BatchKeyValue(KeyValue):
    required: ClassVar[tuple[str, ...]] = ("key",)


class LogBatch(RequestModel):
    # Its points are read as `points`: `metrics` stays empty when they took the fast path.
    required: ClassVar[tuple[str, ...]] = ("run_id",)
    run_id: Str
    metrics: list[MetricPoint] = []
    params: list[BatchKeyValue] = []
    tags: list[BatchKeyValue] = []
    _points: list[MetricIn] = PrivateAttr(default_factory=list)

    @property
    def points(self) -> list[MetricIn]:
        return self._points

    @classmethod
    def check_size(cls, size: int) -> None:
        validation.validate_batch_log_request_size(size)

    @classmethod
    def parse(cls, data: dict[str, Any]) -> Self:
        """Plain points skip per-point model validation (same result, see plain_metrics); the
        rest of the body, and any batch with an unusual point, goes through the model."""
        points = plain_metrics(data.get("metrics"))
        if points is None:
            body = parse_model(cls, data)
            body._points = [
                MetricIn(
                    m.key,
                    m.value,
                    m.timestamp,
                    m.step,
                    m.model_id,
                    m.dataset_name,
                    m.dataset_digest,
                )
                for m in body.metrics
            ]
        else:
            body = parse_model(cls, {**data, "metrics": []})
            body._points = points
        return body


class InputTagBody(RequestModel):
    key: Str | None = None
    value: Str | None = None


class DatasetBody(RequestModel):
    name: Str | None = None
    digest: Str | None = None
    source_type: Str | None = None
    source: Str | None = None
    schema_: Str | None = Field(default=None, alias="schema")
    profile: Str | None = None


class DatasetInputBody(RequestModel):
    tags: list[InputTagBody] = []
    dataset: DatasetBody | None = None


class ModelInputBody(RequestModel):
    model_id: Str | None = None


class LogInputs(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("run_id",)
    run_id: Str
    datasets: list[DatasetInputBody] = []
    models: list[ModelInputBody] = []


class ModelOutputBody(RequestModel):
    model_id: Str | None = None
    step: Int64 = 0


class LogOutputs(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("run_id", "models")
    run_id: Str
    models: list[ModelOutputBody]


class SearchRuns(RequestModel):
    experiment_ids: list[Str] = []
    filter: Str = ""
    run_view_type: Str | Int64 = "ACTIVE_ONLY"
    max_results: Int64 = 1000
    order_by: list[Str] = []
    page_token: Str = ""


def plain_metrics(items: Any) -> list[MetricIn] | None:
    """log-batch's `metrics` straight from the parsed JSON, when every point has the plain
    shape clients send: a non-empty string key without NUL, a number value, integer timestamp
    and step within int64, and no model or dataset fields. These are exactly the points the
    request model accepts unchanged, so this gives the same MetricIn list without validating
    a thousand models. Anything else returns None: the caller validates with the model, which
    also words any error as MLflow does."""
    if type(items) is not list:
        return None
    new = tuple.__new__
    result: list[MetricIn] = []
    append = result.append
    for item in items:
        if type(item) is not dict:
            return None
        key = item.get("key")
        value = item.get("value")
        timestamp = item.get("timestamp")
        step = item.get("step", 0)
        if type(key) is not str or not key or "\x00" in key:
            return None
        if type(value) is not float:
            if type(value) is not int or not INT64_MIN <= value <= INT64_MAX:
                return None
            value = float(value)
        if type(timestamp) is not int or not INT64_MIN <= timestamp <= INT64_MAX:
            return None
        if type(step) is not int or not INT64_MIN <= step <= INT64_MAX:
            return None
        if (
            item.get("model_id") is not None
            or item.get("dataset_name") is not None
            or item.get("dataset_digest") is not None
        ):
            return None
        append(new(MetricIn, (key, value, timestamp, step, None, None, None)))
    return result


# Answers -----------------------------------------------------------------------------------
# As MLflow's JSON renders its protobuf messages: int64 as numbers, unset fields left out
# (`NotRequired`), and so empty lists too.

RunStatus = Literal["RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"]


class RunInfo(TypedDict):
    run_id: str
    run_uuid: str
    run_name: NotRequired[str]
    experiment_id: str
    user_id: NotRequired[str]
    status: RunStatus
    start_time: NotRequired[int]
    end_time: NotRequired[int]
    artifact_uri: NotRequired[str]
    lifecycle_stage: LifecycleStage


class RunData(TypedDict):
    metrics: NotRequired[list[Metric]]
    params: NotRequired[list[KeyValuePair]]
    tags: NotRequired[list[KeyValuePair]]


class Dataset(TypedDict):
    name: NotRequired[str]
    digest: NotRequired[str]
    source_type: NotRequired[str]
    source: NotRequired[str]
    schema: NotRequired[str]
    profile: NotRequired[str]


class DatasetInput(TypedDict):
    tags: NotRequired[list[KeyValuePair]]
    dataset: Dataset


class ModelInput(TypedDict):
    model_id: str


class ModelOutput(TypedDict):
    model_id: str
    step: int


class RunInputs(TypedDict):
    dataset_inputs: NotRequired[list[DatasetInput]]
    model_inputs: NotRequired[list[ModelInput]]


class RunOutputs(TypedDict):
    model_outputs: NotRequired[list[ModelOutput]]


class Run(TypedDict):
    info: RunInfo
    data: RunData
    inputs: RunInputs
    outputs: NotRequired[RunOutputs]  # runs/get and runs/search show it, runs/create not


class RunResponse(TypedDict):
    """`CreateRun.Response`, `GetRun.Response`."""

    run: Run


class UpdateRunResponse(TypedDict):
    run_info: RunInfo


class SearchRunsResponse(TypedDict):
    runs: NotRequired[list[Run]]
    next_page_token: NotRequired[str]
