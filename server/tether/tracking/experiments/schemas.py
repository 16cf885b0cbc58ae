"""Request bodies and answers of MLflow's experiment endpoints (field names as the MLflow client
sends them)."""

from __future__ import annotations

from typing import ClassVar, Literal, NotRequired

from typing_extensions import TypedDict

from tether.wire import Int64, RequestModel, Str


class KeyValue(RequestModel):
    key: Str | None = None
    value: Str | None = None


class CreateExperiment(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("name",)
    name: Str
    artifact_location: Str = ""
    tags: list[KeyValue] = []


class ExperimentId(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("experiment_id",)
    experiment_id: Str


class GetExperimentByName(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("experiment_name",)
    experiment_name: Str


class UpdateExperiment(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("experiment_id", "new_name")
    experiment_id: Str
    new_name: Str


class SetExperimentTag(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("experiment_id", "key")
    experiment_id: Str
    key: Str
    value: Str = ""


class DeleteExperimentTag(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("experiment_id", "key")
    experiment_id: Str
    key: Str


class SearchExperiments(RequestModel):
    max_results: Int64 | None = None
    page_token: Str = ""
    filter: Str = ""
    order_by: list[Str] = []
    view_type: Str | Int64 = "ACTIVE_ONLY"


class SearchDatasets(RequestModel):
    """The UI's dataset summaries of experiments (ajax-api only)."""

    experiment_ids: list[Str] = []


# Answers -----------------------------------------------------------------------------------
# As MLflow's JSON renders its protobuf messages: int64 as numbers, unset fields left out
# (`NotRequired`), and so empty lists too.

LifecycleStage = Literal["active", "deleted"]


class KeyValuePair(TypedDict):
    """A tag or param (`ExperimentTag`, `RunTag`, `Param`); `value` is left out when unset."""

    key: str
    value: NotRequired[str]


class Experiment(TypedDict):
    experiment_id: str
    name: str
    artifact_location: NotRequired[str]
    lifecycle_stage: LifecycleStage
    last_update_time: NotRequired[int]
    creation_time: NotRequired[int]
    tags: NotRequired[list[KeyValuePair]]
    workspace: str


class CreateExperimentResponse(TypedDict):
    experiment_id: str


class GetExperimentResponse(TypedDict):
    experiment: Experiment


class SearchExperimentsResponse(TypedDict):
    experiments: NotRequired[list[Experiment]]
    next_page_token: NotRequired[str]


class DatasetSummary(TypedDict):
    """A dataset some run of the experiment used, once per context it was used in (the
    run input's `mlflow.data.context` tag: "train", "eval"...; left out when untagged)."""

    experiment_id: str
    name: str
    digest: str
    context: NotRequired[str]


class SearchDatasetsResponse(TypedDict):
    dataset_summaries: NotRequired[list[DatasetSummary]]
