"""Request bodies and answers of MLflow's metric history endpoints, and the metric point every
tracking answer shows."""

from __future__ import annotations

from typing import ClassVar, Literal, NotRequired

from typing_extensions import TypedDict

from tether.wire import Int64, RequestModel, Str


class GetMetricHistory(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("run_id", "metric_key")
    run_id: Str
    metric_key: Str
    page_token: Str = ""
    max_results: Int64 | None = None


class GetMetricHistoryBulk(RequestModel):
    """The UI's unsampled bulk read (`/ajax-api/2.0/mlflow/metrics/get-history-bulk` only):
    `run_id` repeated in the query string. Nothing is required here: the service refuses what
    MLflow's handler refuses, with its wording (an empty `metric_key` is allowed)."""

    run_id: list[Str] = []
    metric_key: Str | None = None
    max_results: Int64 | None = None


class GetMetricHistoryBulkInterval(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("run_ids", "metric_key")
    run_ids: list[Str]
    metric_key: Str
    start_step: Int64 | None = None
    end_step: Int64 | None = None
    max_results: Int64 | None = None


# Answers -----------------------------------------------------------------------------------

# Protobuf's JSON mapping spells NaN and the infinities as strings.
JsonDouble = float | Literal["NaN", "Infinity", "-Infinity"]


class Metric(TypedDict):
    # A point (a run's latest, a history's, a logged model's): the dataset, model and run
    # fields only where the answer has them.
    key: str
    value: JsonDouble
    timestamp: int
    step: int
    dataset_name: NotRequired[str]
    dataset_digest: NotRequired[str]
    model_id: NotRequired[str]
    run_id: NotRequired[str]


class GetMetricHistoryResponse(TypedDict):
    metrics: NotRequired[list[Metric]]
    next_page_token: NotRequired[str]


class GetMetricHistoryBulkResponse(TypedDict):
    """Points of every run asked for, each with its `run_id`; always a list, as MLflow's
    handler answers a plain dict rather than a protobuf message."""

    metrics: list[Metric]


class GetMetricHistoryBulkIntervalResponse(TypedDict):
    """Points of every run asked for, each with its `run_id`."""

    metrics: NotRequired[list[Metric]]
