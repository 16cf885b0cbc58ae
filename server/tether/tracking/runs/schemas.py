"""Request bodies of MLflow's run endpoints."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from tether.api.request import Double, Int64, RequestModel, Str
from tether.db.int64 import INT64_MAX, INT64_MIN
from tether.tracking.experiments.schemas import KeyValue
from tether.tracking.runs.service import MetricIn


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
    required: ClassVar[tuple[str, ...]] = ("run_id",)
    run_id: Str
    metrics: list[MetricPoint] = []
    params: list[BatchKeyValue] = []
    tags: list[BatchKeyValue] = []


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
