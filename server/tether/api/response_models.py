"""The bodies Tether answers, as pydantic models for the OpenAPI document only.

They follow MLflow's protobuf messages (`service.proto`, `model_registry.proto`,
`mlflow_artifacts.proto`) as MLflow's JSON renders them and as the serializers here produce
them: int64 as numbers, non-finite doubles as strings, empty fields and lists left out (so
almost every field is optional). Nothing validates a response against them at run time; the
schemathesis test checks real answers against the committed document.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# Protobuf's JSON mapping spells NaN and the infinities as strings.
Double = float | Literal["NaN", "Infinity", "-Infinity"]
LifecycleStage = Literal["active", "deleted"]


def _drop_defaults(schema: dict[str, Any], cls: type[Any]) -> None:
    """Defaults here only make fields optional (left out of the JSON); they are not values a
    client would see, so the schema shows none."""
    for prop in schema.get("properties", {}).values():
        prop.pop("default", None)


class ResponseModel(BaseModel):
    """A response message: exactly these fields, the optional ones left out when empty."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_drop_defaults)


class ErrorResponse(BaseModel):
    """MLflow's error body, for every 4xx and 5xx answer of the API."""

    model_config = ConfigDict(json_schema_extra=_drop_defaults)

    error_code: str = Field(examples=["INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST"])
    message: str


class Empty(ResponseModel):
    """`{}`: the request succeeded and MLflow's response message has no fields."""


# Tracking: experiments ---------------------------------------------------------------------


class KeyValuePair(ResponseModel):
    """A tag or param (`ExperimentTag`, `RunTag`, `Param`); `value` is left out when unset."""

    key: str
    value: str = ""


class Experiment(ResponseModel):
    experiment_id: str
    name: str
    artifact_location: str = ""
    lifecycle_stage: LifecycleStage
    last_update_time: int = 0
    creation_time: int = 0
    tags: list[KeyValuePair] = []


class CreateExperimentResponse(ResponseModel):
    experiment_id: str


class GetExperimentResponse(ResponseModel):
    experiment: Experiment


class SearchExperimentsResponse(ResponseModel):
    experiments: list[Experiment] = []
    next_page_token: str = ""


# Tracking: runs ----------------------------------------------------------------------------


class Metric(ResponseModel):
    key: str
    value: Double
    timestamp: int
    step: int
    dataset_name: str = ""
    dataset_digest: str = ""
    model_id: str = ""
    run_id: str = ""


class RunInfo(ResponseModel):
    run_id: str
    run_uuid: str
    run_name: str = ""
    experiment_id: str
    user_id: str = ""
    status: Literal["RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"]
    start_time: int = 0
    end_time: int = 0
    artifact_uri: str = ""
    lifecycle_stage: LifecycleStage


class RunData(ResponseModel):
    metrics: list[Metric] = []
    params: list[KeyValuePair] = []
    tags: list[KeyValuePair] = []


class InputTag(ResponseModel):
    key: str
    value: str = ""


class Dataset(ResponseModel):
    name: str = ""
    digest: str = ""
    source_type: str = ""
    source: str = ""
    schema_: str = Field(default="", alias="schema")
    profile: str = ""


class DatasetInput(ResponseModel):
    tags: list[InputTag] = []
    dataset: Dataset


class ModelInput(ResponseModel):
    model_id: str


class ModelOutput(ResponseModel):
    model_id: str
    step: int


class RunInputs(ResponseModel):
    dataset_inputs: list[DatasetInput] = []
    model_inputs: list[ModelInput] = []


class RunOutputs(ResponseModel):
    model_outputs: list[ModelOutput] = []


class Run(ResponseModel):
    info: RunInfo
    data: RunData
    inputs: RunInputs
    outputs: RunOutputs = Field(default_factory=RunOutputs)


class RunResponse(ResponseModel):
    """`CreateRun.Response`, `GetRun.Response`."""

    run: Run


class UpdateRunResponse(ResponseModel):
    run_info: RunInfo


class SearchRunsResponse(ResponseModel):
    runs: list[Run] = []
    next_page_token: str = ""


# Tracking: metric history ------------------------------------------------------------------


class GetMetricHistoryResponse(ResponseModel):
    metrics: list[Metric] = []
    next_page_token: str = ""


class GetMetricHistoryBulkIntervalResponse(ResponseModel):
    """Points of every run asked for, each with its `run_id`."""

    metrics: list[Metric] = []


# Artifacts -------------------------------------------------------------------------------


class FileInfo(ResponseModel):
    path: str
    is_dir: bool
    file_size: int = 0


class ListRunArtifactsResponse(ResponseModel):
    """`ListArtifacts.Response` of the tracking API (and of a logged model's directories)."""

    root_uri: str = ""
    files: list[FileInfo] = []
    next_page_token: str = ""


class ListProxyArtifactsResponse(ResponseModel):
    """`mlflow_artifacts.proto` `ListArtifacts.Response`."""

    files: list[FileInfo] = []


class MultipartUploadCredential(ResponseModel):
    url: str
    part_number: int
    headers: dict[str, str] = {}


class CreateMultipartUploadResponse(ResponseModel):
    upload_id: str = ""
    credentials: list[MultipartUploadCredential] = []


class ServerInfo(ResponseModel):
    """`/api/3.0/mlflow/server-info`: what MLflow 3 clients may use on this server."""

    store_type: str
    workspaces_enabled: bool
    trace_archival_enabled: bool
    multipart_uploads_enabled: bool
    multipart_downloads_enabled: bool
    presigned_upload_run_id_supported: bool
    presigned_upload_model_id_supported: bool
    features_enabled: dict[str, bool]


# Logged models (MLflow 3) ------------------------------------------------------------------


class LoggedModelInfo(ResponseModel):
    model_id: str
    experiment_id: str
    name: str = ""
    creation_timestamp_ms: int = 0
    last_updated_timestamp_ms: int = 0
    artifact_uri: str = ""
    status: Literal[
        "LOGGED_MODEL_STATUS_UNSPECIFIED",
        "LOGGED_MODEL_PENDING",
        "LOGGED_MODEL_READY",
        "LOGGED_MODEL_UPLOAD_FAILED",
    ]
    model_type: str = ""
    source_run_id: str = ""
    status_message: str = ""
    tags: list[KeyValuePair] = []


class LoggedModelData(ResponseModel):
    params: list[KeyValuePair] = []
    metrics: list[Metric] = []


class LoggedModel(ResponseModel):
    info: LoggedModelInfo
    data: LoggedModelData


class LoggedModelResponse(ResponseModel):
    """`CreateLoggedModel`, `GetLoggedModel`, `FinalizeLoggedModel` responses."""

    model: LoggedModel


class SearchLoggedModelsResponse(ResponseModel):
    models: list[LoggedModel] = []
    next_page_token: str = ""


# Model registry ----------------------------------------------------------------------------


class RegistryTag(ResponseModel):
    """`RegisteredModelTag`, `ModelVersionTag`."""

    key: str
    value: str


class ModelVersion(ResponseModel):
    name: str
    version: str
    creation_timestamp: int
    last_updated_timestamp: int = 0
    user_id: str = ""
    current_stage: str
    description: str = ""
    source: str = ""
    run_id: str = ""
    status: Literal["PENDING_REGISTRATION", "FAILED_REGISTRATION", "READY"]
    status_message: str = ""
    tags: list[RegistryTag] = []
    run_link: str = ""
    aliases: list[str] = []


class RegisteredModelAlias(ResponseModel):
    alias: str
    version: str


class RegisteredModel(ResponseModel):
    name: str
    creation_timestamp: int
    last_updated_timestamp: int = 0
    user_id: str = ""
    description: str = ""
    latest_versions: list[ModelVersion] = []
    tags: list[RegistryTag] = []
    aliases: list[RegisteredModelAlias] = []


class RegisteredModelResponse(ResponseModel):
    registered_model: RegisteredModel


class SearchRegisteredModelsResponse(ResponseModel):
    registered_models: list[RegisteredModel] = []
    next_page_token: str = ""


class ModelVersionResponse(ResponseModel):
    model_version: ModelVersion


class ModelVersionsResponse(ResponseModel):
    """`GetLatestVersions.Response`."""

    model_versions: list[ModelVersion] = []


class SearchModelVersionsResponse(ResponseModel):
    model_versions: list[ModelVersion] = []
    next_page_token: str = ""


class GetModelVersionDownloadUriResponse(ResponseModel):
    artifact_uri: str = ""


# Tether: Azure ML sync ---------------------------------------------------------------------


class SyncStatus(BaseModel):
    """`GET /api/2.0/tether/sync/status`: the store-wide summary (what `tether sync status
    --json` prints, plus this process's `worker`), or with `?entity=TYPE:ID` that entity's
    detail (status, attempts, Azure id, cursor, mapping report)."""

    model_config = ConfigDict(extra="allow", json_schema_extra=_drop_defaults)

    entities: dict[str, int] = {}
    by_type: dict[str, dict[str, int]] = {}
    worker: dict[str, Any] = {}
    entity: str = ""
    status: str = ""
    report: list[dict[str, Any]] = []


# Tether: readiness -------------------------------------------------------------------------


class ProbeResult(ResponseModel):
    """One dependency's probe: `ok`, and either its latency or why it failed."""

    ok: bool
    latency_ms: float = 0.0
    error: str = ""


class DatabaseProbe(ProbeResult):
    dialect: Literal["sqlite", "postgresql"]


class ArtifactProbe(ProbeResult):
    served: bool  # false: this server does not proxy artifacts, nothing to probe
    backend: str = ""


class SyncReadiness(ResponseModel):
    """Reported, never a reason for 503: writes succeed while Azure ML is away."""

    enabled: bool
    azureml_reachable: bool | None = None  # null: no call answered or failed yet
    last_error: str | None = None
    pending: int = 0
    in_flight: int = 0
    failed: int = 0
    dead: int = 0
    oldest_pending_age_seconds: float | None = None
    queue_error: str = ""


class Readiness(ResponseModel):
    """`GET /ready`: 200 when the database answers and the artifact store takes writes, else
    503 with the same body saying which failed."""

    status: Literal["ready", "unavailable"]
    database: DatabaseProbe
    artifacts: ArtifactProbe
    sync: SyncReadiness
