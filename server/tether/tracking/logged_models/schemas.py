"""Request bodies and answers of MLflow's logged-model endpoints
(`/api/2.0/mlflow/logged-models/...`)."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, NotRequired

from pydantic import BeforeValidator, Field
from typing_extensions import TypedDict

from tether.tracking.experiments.schemas import KeyValue, KeyValuePair
from tether.tracking.metrics.schemas import Metric
from tether.wire import Bool, Int64, RequestModel, Str


class CreateLoggedModel(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("experiment_id",)
    experiment_id: Str
    name: Str | None = None
    model_type: Str | None = None
    source_run_id: Str | None = None
    params: list[KeyValue] = []
    tags: list[KeyValue] = []


class FinalizeLoggedModel(RequestModel):
    # MLflow requires the id in the body too (its client always sends it there).
    required: ClassVar[tuple[str, ...]] = ("model_id", "status")
    model_id: Str
    # LoggedModelStatus by name or, as protobuf's JSON also allows, by enum number.
    status: Str | Int64 = Field(examples=["LOGGED_MODEL_READY", "LOGGED_MODEL_UPLOAD_FAILED"])


class SetLoggedModelTags(RequestModel):
    tags: list[KeyValue] = []


class LogLoggedModelParams(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("model_id",)
    model_id: Str
    params: list[KeyValue] = []


class DatasetFilter(RequestModel):
    dataset_name: Str | None = None
    dataset_digest: Str | None = None


class OrderBy(RequestModel):
    field_name: Str | None = None
    ascending: Bool = True
    dataset_name: Str | None = None
    dataset_digest: Str | None = None


class SearchLoggedModels(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("experiment_ids",)
    experiment_ids: list[Str]
    filter: Str = ""
    datasets: list[DatasetFilter] = []
    max_results: Int64 | None = None
    order_by: list[OrderBy] = []
    page_token: Str = ""


class ListLoggedModelArtifacts(RequestModel):
    artifact_directory_path: Str | None = None
    page_token: Str = ""


class GetLoggedModelArtifact(RequestModel):
    artifact_file_path: Str | None = None


def _is_true(value: Any) -> bool:
    """MLflow's reading of `allow_deleted`: the text "true" in any case; anything else is no."""
    return str(value).lower() == "true"


class GetLoggedModel(RequestModel):
    """Query of `GET /logged-models/{model_id}`."""

    allow_deleted: Annotated[bool, BeforeValidator(_is_true)] = False


# Answers -----------------------------------------------------------------------------------

LoggedModelStatus = Literal[
    "LOGGED_MODEL_STATUS_UNSPECIFIED",
    "LOGGED_MODEL_PENDING",
    "LOGGED_MODEL_READY",
    "LOGGED_MODEL_UPLOAD_FAILED",
]


class LoggedModelInfo(TypedDict):
    model_id: str
    experiment_id: str
    name: NotRequired[str]
    creation_timestamp_ms: NotRequired[int]
    last_updated_timestamp_ms: NotRequired[int]
    artifact_uri: NotRequired[str]
    status: LoggedModelStatus
    model_type: NotRequired[str]
    source_run_id: NotRequired[str]
    status_message: NotRequired[str]
    tags: NotRequired[list[KeyValuePair]]


class LoggedModelData(TypedDict):
    params: NotRequired[list[KeyValuePair]]
    metrics: NotRequired[list[Metric]]


class LoggedModel(TypedDict):
    info: LoggedModelInfo
    data: LoggedModelData


class LoggedModelResponse(TypedDict):
    """`CreateLoggedModel`, `GetLoggedModel`, `FinalizeLoggedModel` responses."""

    model: LoggedModel


class SearchLoggedModelsResponse(TypedDict):
    models: NotRequired[list[LoggedModel]]
    next_page_token: NotRequired[str]
