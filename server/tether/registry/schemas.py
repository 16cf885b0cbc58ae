"""Request bodies and answers of MLflow's model registry endpoints (`model_registry.proto`
field names).

Fields are declared in the order of MLflow's handler schemas, so the first bad field reported
is the one MLflow reports. `None` marks the fields whose presence matters (protobuf HasField).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, NotRequired, Self

from pydantic import Field
from typing_extensions import TypedDict

from tether.errors import API_DOCS_HINT, invalid_parameter
from tether.registry.search import MODEL_MAX_RESULTS_THRESHOLD, VERSION_MAX_RESULTS_THRESHOLD
from tether.tracking.validation import invalid_value
from tether.wire import Bool, Int64, RequestModel, Str, parse_model


def _check_max_results(data: dict[str, Any], max_results: int, bound: int) -> None:
    """max_results above MLflow's handler bound is refused as its handler does."""
    if max_results > bound:
        raw = data.get("max_results")
        raise invalid_parameter(
            invalid_value("max_results", raw, f" Hint: Value was of type '{type(raw).__name__}'.")
            + API_DOCS_HINT
        )


class KeyValue(RequestModel):
    key: Str | None = None
    value: Str | None = None


class CreateRegisteredModel(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("name",)
    name: Str
    tags: list[KeyValue] = []
    description: Str = ""


class RegisteredModelName(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("name",)
    name: Str


class UpdateRegisteredModel(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("name",)
    name: Str
    description: Str = ""


class RenameRegisteredModel(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("name", "new_name")
    name: Str
    new_name: Str


class SearchRegisteredModels(RequestModel):
    filter: Str = ""
    max_results: Int64 = 100
    order_by: list[Str] = []
    page_token: Str = ""

    @classmethod
    def parse(cls, data: dict[str, Any]) -> Self:
        body = parse_model(cls, data)
        _check_max_results(data, body.max_results, MODEL_MAX_RESULTS_THRESHOLD)
        return body


class GetLatestVersions(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("name",)
    name: Str
    stages: list[Str] = []


class SetRegisteredModelTag(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("name", "key")
    name: Str
    key: Str
    value: Str = ""


class DeleteRegisteredModelTag(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("name", "key")
    name: Str
    key: Str


class CreateModelVersion(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("name", "source")
    name: Str
    source: Str
    run_id: Str | None = None
    tags: list[KeyValue] = []
    run_link: Str = ""
    description: Str = ""
    model_id: Str | None = None


class ModelVersionKey(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("name", "version")
    name: Str
    version: Str


class UpdateModelVersion(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("name", "version")
    name: Str
    version: Str
    description: Str | None = None


class TransitionModelVersionStage(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("name", "version", "stage")
    name: Str
    version: Str
    stage: Str = Field(examples=["Staging", "Production", "Archived", "None"])
    archive_existing_versions: Bool = False


class GetModelVersionDownloadUri(RequestModel):
    # MLflow's handler checks nothing here; the store refuses an empty name or version.
    name: Str = ""
    version: Str = ""


class SearchModelVersions(RequestModel):
    filter: Str = ""
    max_results: Int64 = 200_000
    order_by: list[Str] = []
    page_token: Str = ""

    @classmethod
    def parse(cls, data: dict[str, Any]) -> Self:
        body = parse_model(cls, data)
        _check_max_results(data, body.max_results, VERSION_MAX_RESULTS_THRESHOLD)
        return body


class SetModelVersionTag(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("name", "version", "key")
    name: Str
    version: Str
    key: Str
    value: Str = ""


class DeleteModelVersionTag(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("name", "version", "key")
    name: Str
    version: Str
    key: Str


class SetRegisteredModelAlias(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("name", "alias", "version")
    name: Str
    alias: Str
    version: Str


class RegisteredModelAliasKey(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("name", "alias")
    name: Str
    alias: Str


class GetModelVersionArtifact(RequestModel):
    # MLflow reads these from the query string without checks; the store refuses an empty
    # name or version, and a missing path is a 400.
    name: Str = ""
    version: Str = ""
    path: Str | None = None


# Answers -----------------------------------------------------------------------------------
# As MLflow's JSON renders `ModelVersion` / `RegisteredModel` (`to_proto`): unset fields left
# out (`NotRequired`), and so empty lists too.


class RegistryTag(TypedDict):
    """`RegisteredModelTag`, `ModelVersionTag`."""

    key: str
    value: str


VersionStatus = Literal["PENDING_REGISTRATION", "FAILED_REGISTRATION", "READY"]


class ModelVersion(TypedDict):
    name: str
    version: str
    creation_timestamp: int
    last_updated_timestamp: NotRequired[int]
    user_id: NotRequired[str]
    current_stage: str
    description: NotRequired[str]
    source: NotRequired[str]
    run_id: NotRequired[str]
    status: VersionStatus
    status_message: NotRequired[str]
    tags: NotRequired[list[RegistryTag]]
    run_link: NotRequired[str]
    aliases: NotRequired[list[str]]


class RegisteredModelAlias(TypedDict):
    alias: str
    version: str


class RegisteredModel(TypedDict):
    name: str
    creation_timestamp: int
    last_updated_timestamp: NotRequired[int]
    user_id: NotRequired[str]
    description: NotRequired[str]
    latest_versions: NotRequired[list[ModelVersion]]
    tags: NotRequired[list[RegistryTag]]
    aliases: NotRequired[list[RegisteredModelAlias]]


class RegisteredModelResponse(TypedDict):
    registered_model: RegisteredModel


class SearchRegisteredModelsResponse(TypedDict):
    registered_models: NotRequired[list[RegisteredModel]]
    next_page_token: NotRequired[str]


class ModelVersionResponse(TypedDict):
    model_version: ModelVersion


class ModelVersionsResponse(TypedDict):
    """`GetLatestVersions.Response`."""

    model_versions: NotRequired[list[ModelVersion]]


class SearchModelVersionsResponse(TypedDict):
    model_versions: NotRequired[list[ModelVersion]]
    next_page_token: NotRequired[str]


class GetModelVersionDownloadUriResponse(TypedDict):
    artifact_uri: NotRequired[str]
