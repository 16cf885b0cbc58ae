"""HTTP endpoints of MLflow's model registry API (`ModelRegistryService` in model_registry.proto).

Methods and paths are the proto's; `get-latest-versions` answers both POST and GET, as MLflow
registers both. Plus the UI's `/model-versions/get-artifact` download (no API prefix), which
streams a version's file through the artifact proxy's backend.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.responses import StreamingResponse

from tether.api import response_models as resp
from tether.api.deps import provider
from tether.api.request import parse_model, parse_request, read_request_data
from tether.api.routing import MlflowRouter, document
from tether.artifacts.http import Artifacts, streamed
from tether.errors import MlflowError, invalid_parameter
from tether.registry import schemas
from tether.registry.search import MODEL_MAX_RESULTS_THRESHOLD, VERSION_MAX_RESULTS_THRESHOLD
from tether.registry.service import RegistryService
from tether.storage.paths import join, safe_relative_path
from tether.threads import blocking
from tether.tracking.validation import invalid_value

Registry = Annotated[RegistryService, Depends(provider(RegistryService))]
api = MlflowRouter("model-registry")
router = api.router

_API_DOCS_HINT = " See the API docs for more information about request parameters."
S = TypeVar("S", schemas.SearchRegisteredModels, schemas.SearchModelVersions)


def _tags(tags: list[schemas.KeyValue]) -> list[tuple[str | None, str | None]]:
    return [(t.key, t.value) for t in tags]


async def _parse_search(request: Request, model: type[S], threshold: int) -> S:
    """The search request; max_results above MLflow's handler bound is refused as it does."""
    data = await read_request_data(request, model)
    body = parse_model(model, data)
    if body.max_results > threshold:
        raw = data.get("max_results")
        raise invalid_parameter(
            invalid_value("max_results", raw, f" Hint: Value was of type '{type(raw).__name__}'.")
            + _API_DOCS_HINT
        )
    return body


# ------------------------------------------------------------------------ registered models


@api.route(
    "/registered-models/create",
    ["POST"],
    request=schemas.CreateRegisteredModel,
    response=resp.RegisteredModelResponse,
)
async def create_registered_model(request: Request, service: Registry) -> dict[str, Any]:
    body = await parse_request(request, schemas.CreateRegisteredModel)
    model = await blocking(service.create_model, body.name, _tags(body.tags), body.description)
    return {"registered_model": model}


@api.route(
    "/registered-models/get",
    ["GET"],
    request=schemas.RegisteredModelName,
    response=resp.RegisteredModelResponse,
)
async def get_registered_model(request: Request, service: Registry) -> dict[str, Any]:
    body = await parse_request(request, schemas.RegisteredModelName)
    return {"registered_model": await blocking(service.get_model, body.name)}


@api.route(
    "/registered-models/update",
    ["PATCH"],
    request=schemas.UpdateRegisteredModel,
    response=resp.RegisteredModelResponse,
)
async def update_registered_model(request: Request, service: Registry) -> dict[str, Any]:
    body = await parse_request(request, schemas.UpdateRegisteredModel)
    return {"registered_model": await blocking(service.update_model, body.name, body.description)}


@api.route(
    "/registered-models/rename",
    ["POST"],
    request=schemas.RenameRegisteredModel,
    response=resp.RegisteredModelResponse,
)
async def rename_registered_model(request: Request, service: Registry) -> dict[str, Any]:
    body = await parse_request(request, schemas.RenameRegisteredModel)
    return {"registered_model": await blocking(service.rename_model, body.name, body.new_name)}


@api.route(
    "/registered-models/delete",
    ["DELETE"],
    request=schemas.RegisteredModelName,
    response=resp.Empty,
)
async def delete_registered_model(request: Request, service: Registry) -> dict[str, Any]:
    body = await parse_request(request, schemas.RegisteredModelName)
    await blocking(service.delete_model, body.name)
    return {}


@api.route(
    "/registered-models/search",
    ["GET"],
    request=schemas.SearchRegisteredModels,
    response=resp.SearchRegisteredModelsResponse,
)
async def search_registered_models(request: Request, service: Registry) -> dict[str, Any]:
    body = await _parse_search(request, schemas.SearchRegisteredModels, MODEL_MAX_RESULTS_THRESHOLD)
    models, token = await blocking(
        service.search_models,
        filter_string=body.filter,
        max_results=body.max_results,
        order_by=body.order_by,
        page_token=body.page_token or None,
    )
    response: dict[str, Any] = {}
    if models:
        response["registered_models"] = models
    if token:
        response["next_page_token"] = token
    return response


@api.route(
    "/registered-models/get-latest-versions",
    ["POST", "GET"],
    request=schemas.GetLatestVersions,
    response=resp.ModelVersionsResponse,
)
async def get_latest_versions(request: Request, service: Registry) -> dict[str, Any]:
    body = await parse_request(request, schemas.GetLatestVersions)
    versions = await blocking(service.get_latest_versions, body.name, body.stages)
    return {"model_versions": versions} if versions else {}


@api.route(
    "/registered-models/set-tag",
    ["POST"],
    request=schemas.SetRegisteredModelTag,
    response=resp.Empty,
)
async def set_registered_model_tag(request: Request, service: Registry) -> dict[str, Any]:
    body = await parse_request(request, schemas.SetRegisteredModelTag)
    await blocking(service.set_model_tag, body.name, body.key, body.value)
    return {}


@api.route(
    "/registered-models/delete-tag",
    ["DELETE"],
    request=schemas.DeleteRegisteredModelTag,
    response=resp.Empty,
)
async def delete_registered_model_tag(request: Request, service: Registry) -> dict[str, Any]:
    body = await parse_request(request, schemas.DeleteRegisteredModelTag)
    await blocking(service.delete_model_tag, body.name, body.key)
    return {}


# --------------------------------------------------------------------------------- aliases


@api.route(
    "/registered-models/alias",
    ["POST"],
    request=schemas.SetRegisteredModelAlias,
    response=resp.Empty,
)
async def set_registered_model_alias(request: Request, service: Registry) -> dict[str, Any]:
    body = await parse_request(request, schemas.SetRegisteredModelAlias)
    await blocking(service.set_alias, body.name, body.alias, body.version)
    return {}


@api.route(
    "/registered-models/alias",
    ["DELETE"],
    request=schemas.RegisteredModelAliasKey,
    response=resp.Empty,
)
async def delete_registered_model_alias(request: Request, service: Registry) -> dict[str, Any]:
    body = await parse_request(request, schemas.RegisteredModelAliasKey)
    await blocking(service.delete_alias, body.name, body.alias)
    return {}


@api.route(
    "/registered-models/alias",
    ["GET"],
    request=schemas.RegisteredModelAliasKey,
    response=resp.ModelVersionResponse,
)
async def get_model_version_by_alias(request: Request, service: Registry) -> dict[str, Any]:
    body = await parse_request(request, schemas.RegisteredModelAliasKey)
    return {"model_version": await blocking(service.get_version_by_alias, body.name, body.alias)}


# ---------------------------------------------------------------------------- model versions


@api.route(
    "/model-versions/create",
    ["POST"],
    request=schemas.CreateModelVersion,
    response=resp.ModelVersionResponse,
)
async def create_model_version(request: Request, service: Registry) -> dict[str, Any]:
    body = await parse_request(request, schemas.CreateModelVersion)
    version = await blocking(
        service.create_version,
        name=body.name,
        source=body.source,
        run_id=body.run_id,
        tags=_tags(body.tags),
        run_link=body.run_link,
        description=body.description,
        model_id=body.model_id,
    )
    return {"model_version": version}


@api.route(
    "/model-versions/get",
    ["GET"],
    request=schemas.ModelVersionKey,
    response=resp.ModelVersionResponse,
)
async def get_model_version(request: Request, service: Registry) -> dict[str, Any]:
    body = await parse_request(request, schemas.ModelVersionKey)
    return {"model_version": await blocking(service.get_version, body.name, body.version)}


@api.route(
    "/model-versions/update",
    ["PATCH"],
    request=schemas.UpdateModelVersion,
    response=resp.ModelVersionResponse,
)
async def update_model_version(request: Request, service: Registry) -> dict[str, Any]:
    body = await parse_request(request, schemas.UpdateModelVersion)
    version = await blocking(service.update_version, body.name, body.version, body.description)
    return {"model_version": version}


@api.route(
    "/model-versions/transition-stage",
    ["POST"],
    request=schemas.TransitionModelVersionStage,
    response=resp.ModelVersionResponse,
)
async def transition_model_version_stage(request: Request, service: Registry) -> dict[str, Any]:
    body = await parse_request(request, schemas.TransitionModelVersionStage)
    version = await blocking(
        service.transition_stage,
        body.name,
        body.version,
        body.stage,
        body.archive_existing_versions,
    )
    return {"model_version": version}


@api.route(
    "/model-versions/delete", ["DELETE"], request=schemas.ModelVersionKey, response=resp.Empty
)
async def delete_model_version(request: Request, service: Registry) -> dict[str, Any]:
    body = await parse_request(request, schemas.ModelVersionKey)
    await blocking(service.delete_version, body.name, body.version)
    return {}


@api.route(
    "/model-versions/get-download-uri",
    ["GET"],
    request=schemas.GetModelVersionDownloadUri,
    response=resp.GetModelVersionDownloadUriResponse,
)
async def get_model_version_download_uri(request: Request, service: Registry) -> dict[str, Any]:
    body = await parse_request(request, schemas.GetModelVersionDownloadUri)
    uri = await blocking(service.get_download_uri, body.name, body.version)
    return {"artifact_uri": uri} if uri else {}


@api.route(
    "/model-versions/search",
    ["GET"],
    request=schemas.SearchModelVersions,
    response=resp.SearchModelVersionsResponse,
)
async def search_model_versions(request: Request, service: Registry) -> dict[str, Any]:
    body = await _parse_search(request, schemas.SearchModelVersions, VERSION_MAX_RESULTS_THRESHOLD)
    versions, token = await blocking(
        service.search_versions,
        filter_string=body.filter,
        max_results=body.max_results,
        order_by=body.order_by,
        page_token=body.page_token or None,
    )
    response: dict[str, Any] = {}
    if versions:
        response["model_versions"] = versions
    if token:
        response["next_page_token"] = token
    return response


@api.route(
    "/model-versions/set-tag", ["POST"], request=schemas.SetModelVersionTag, response=resp.Empty
)
async def set_model_version_tag(request: Request, service: Registry) -> dict[str, Any]:
    body = await parse_request(request, schemas.SetModelVersionTag)
    await blocking(service.set_version_tag, body.name, body.version, body.key, body.value)
    return {}


@api.route(
    "/model-versions/delete-tag",
    ["DELETE"],
    request=schemas.DeleteModelVersionTag,
    response=resp.Empty,
)
async def delete_model_version_tag(request: Request, service: Registry) -> dict[str, Any]:
    body = await parse_request(request, schemas.DeleteModelVersionTag)
    await blocking(service.delete_version_tag, body.name, body.version, body.key)
    return {}


# ------------------------------------------------------------------------------- UI download


@router.get("/model-versions/get-artifact")
@document(request=schemas.GetModelVersionArtifact, binary_response=True)
async def get_model_version_artifact(
    request: Request, service: Registry, artifacts: Artifacts
) -> StreamingResponse:
    """One file of a model version (MLflow's `get_model_version_artifact_handler`)."""
    body = await parse_request(request, schemas.GetModelVersionArtifact)
    if body.path is None:
        raise invalid_parameter("Missing value for required parameter 'path'.")
    relative = safe_relative_path(body.path)
    uri, sub_path = await blocking(service.artifact_root, body.name, body.version)
    store_path = artifacts.resolve(uri, join(safe_relative_path(sub_path), relative))
    if not store_path:
        raise MlflowError("Invalid path", "INVALID_PARAMETER_VALUE")
    return streamed(await artifacts.download(store_path))
