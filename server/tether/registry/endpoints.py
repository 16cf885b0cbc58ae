"""HTTP endpoints of MLflow's model registry API (`ModelRegistryService` in model_registry.proto).

Methods and paths are the proto's; `get-latest-versions` answers both POST and GET, as MLflow
registers both. Plus the UI's `/model-versions/get-artifact` download (no API prefix), which
streams a version's file through the artifact proxy's backend.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from fastapi.responses import StreamingResponse

from tether.api.access import (
    DELETE,
    EDIT,
    READ,
    SIGNED_IN,
    Visible,
    forget,
    grant_creator,
    registered_model,
    rename,
)
from tether.api.deps import provider
from tether.api.responses import Empty
from tether.api.routing import MLFLOW_PREFIXES, Router
from tether.artifacts.http import Artifacts, streamed
from tether.errors import MlflowError, invalid_parameter
from tether.registry import schemas
from tether.registry.service import RegistryService
from tether.storage.paths import join, safe_relative_path
from tether.threads import blocking

Registry = Annotated[RegistryService, Depends(provider(RegistryService))]
api = Router("model-registry", prefixes=MLFLOW_PREFIXES)

# MLflow's auth rules: the creator gets MANAGE; a version, alias or tag takes its model's
# permission; deleting a model (or a version) needs delete, and forgets the grants on it.
CREATES_MODEL = SIGNED_IN.then(
    grant_creator("registered_model", lambda _, answer: answer["registered_model"]["name"])
)
RENAMES_MODEL = EDIT.on(registered_model()).then(rename("registered_model"))
DELETES_MODEL = DELETE.on(registered_model()).then(forget("registered_model"))
LISTS_MODELS = SIGNED_IN.listing("registered_model")


def _tags(tags: list[schemas.KeyValue]) -> list[tuple[str | None, str | None]]:
    return [(t.key, t.value) for t in tags]


# ------------------------------------------------------------------------ registered models


@api.post("/registered-models/create", access=CREATES_MODEL)
async def create_registered_model(
    body: schemas.CreateRegisteredModel, service: Registry
) -> schemas.RegisteredModelResponse:
    model = await blocking(service.create_model, body.name, _tags(body.tags), body.description)
    return {"registered_model": model}


@api.get("/registered-models/get", access=READ.on(registered_model()))
async def get_registered_model(
    body: schemas.RegisteredModelName, service: Registry
) -> schemas.RegisteredModelResponse:
    return {"registered_model": await blocking(service.get_model, body.name)}


@api.patch("/registered-models/update", access=EDIT.on(registered_model()))
async def update_registered_model(
    body: schemas.UpdateRegisteredModel, service: Registry
) -> schemas.RegisteredModelResponse:
    return {"registered_model": await blocking(service.update_model, body.name, body.description)}


@api.post("/registered-models/rename", access=RENAMES_MODEL)
async def rename_registered_model(
    body: schemas.RenameRegisteredModel, service: Registry
) -> schemas.RegisteredModelResponse:
    return {"registered_model": await blocking(service.rename_model, body.name, body.new_name)}


@api.delete("/registered-models/delete", access=DELETES_MODEL)
async def delete_registered_model(body: schemas.RegisteredModelName, service: Registry) -> Empty:
    await blocking(service.delete_model, body.name)
    return {}


@api.get("/registered-models/search", access=LISTS_MODELS)
async def search_registered_models(
    body: schemas.SearchRegisteredModels, service: Registry, visible: Visible
) -> schemas.SearchRegisteredModelsResponse:
    models, token = await blocking(
        service.search_models,
        readable=visible,
        filter_string=body.filter,
        max_results=body.max_results,
        order_by=body.order_by,
        page_token=body.page_token or None,
    )
    response: schemas.SearchRegisteredModelsResponse = (
        {"registered_models": models} if models else {}
    )
    if token:
        response["next_page_token"] = token
    return response


@api.route(
    "/registered-models/get-latest-versions", ["POST", "GET"], access=READ.on(registered_model())
)
async def get_latest_versions(
    body: schemas.GetLatestVersions, service: Registry
) -> schemas.ModelVersionsResponse:
    versions = await blocking(service.get_latest_versions, body.name, body.stages)
    return {"model_versions": versions} if versions else {}


@api.post("/registered-models/set-tag", access=EDIT.on(registered_model()))
async def set_registered_model_tag(body: schemas.SetRegisteredModelTag, service: Registry) -> Empty:
    await blocking(service.set_model_tag, body.name, body.key, body.value)
    return {}


@api.delete("/registered-models/delete-tag", access=EDIT.on(registered_model()))
async def delete_registered_model_tag(
    body: schemas.DeleteRegisteredModelTag, service: Registry
) -> Empty:
    await blocking(service.delete_model_tag, body.name, body.key)
    return {}


# --------------------------------------------------------------------------------- aliases


@api.post("/registered-models/alias", access=EDIT.on(registered_model()))
async def set_registered_model_alias(
    body: schemas.SetRegisteredModelAlias, service: Registry
) -> Empty:
    await blocking(service.set_alias, body.name, body.alias, body.version)
    return {}


@api.delete("/registered-models/alias", access=EDIT.on(registered_model()))
async def delete_registered_model_alias(
    body: schemas.RegisteredModelAliasKey, service: Registry
) -> Empty:
    await blocking(service.delete_alias, body.name, body.alias)
    return {}


@api.get("/registered-models/alias", access=READ.on(registered_model()))
async def get_model_version_by_alias(
    body: schemas.RegisteredModelAliasKey, service: Registry
) -> schemas.ModelVersionResponse:
    return {"model_version": await blocking(service.get_version_by_alias, body.name, body.alias)}


# ---------------------------------------------------------------------------- model versions


@api.post("/model-versions/create", access=EDIT.on(registered_model()))
async def create_model_version(
    body: schemas.CreateModelVersion, service: Registry
) -> schemas.ModelVersionResponse:
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


@api.get("/model-versions/get", access=READ.on(registered_model()))
async def get_model_version(
    body: schemas.ModelVersionKey, service: Registry
) -> schemas.ModelVersionResponse:
    return {"model_version": await blocking(service.get_version, body.name, body.version)}


@api.patch("/model-versions/update", access=EDIT.on(registered_model()))
async def update_model_version(
    body: schemas.UpdateModelVersion, service: Registry
) -> schemas.ModelVersionResponse:
    version = await blocking(service.update_version, body.name, body.version, body.description)
    return {"model_version": version}


@api.post("/model-versions/transition-stage", access=EDIT.on(registered_model()))
async def transition_model_version_stage(
    body: schemas.TransitionModelVersionStage, service: Registry
) -> schemas.ModelVersionResponse:
    version = await blocking(
        service.transition_stage,
        body.name,
        body.version,
        body.stage,
        body.archive_existing_versions,
    )
    return {"model_version": version}


@api.delete("/model-versions/delete", access=DELETE.on(registered_model()))
async def delete_model_version(body: schemas.ModelVersionKey, service: Registry) -> Empty:
    await blocking(service.delete_version, body.name, body.version)
    return {}


@api.get("/model-versions/get-download-uri", access=READ.on(registered_model()))
async def get_model_version_download_uri(
    body: schemas.GetModelVersionDownloadUri, service: Registry
) -> schemas.GetModelVersionDownloadUriResponse:
    uri = await blocking(service.get_download_uri, body.name, body.version)
    return {"artifact_uri": uri} if uri else {}


@api.get("/model-versions/search", access=LISTS_MODELS)
async def search_model_versions(
    body: schemas.SearchModelVersions, service: Registry, visible: Visible
) -> schemas.SearchModelVersionsResponse:
    versions, token = await blocking(
        service.search_versions,
        readable=visible,
        filter_string=body.filter,
        max_results=body.max_results,
        order_by=body.order_by,
        page_token=body.page_token or None,
    )
    response: schemas.SearchModelVersionsResponse = {"model_versions": versions} if versions else {}
    if token:
        response["next_page_token"] = token
    return response


@api.post("/model-versions/set-tag", access=EDIT.on(registered_model()))
async def set_model_version_tag(body: schemas.SetModelVersionTag, service: Registry) -> Empty:
    await blocking(service.set_version_tag, body.name, body.version, body.key, body.value)
    return {}


@api.delete("/model-versions/delete-tag", access=DELETE.on(registered_model()))
async def delete_model_version_tag(body: schemas.DeleteModelVersionTag, service: Registry) -> Empty:
    await blocking(service.delete_version_tag, body.name, body.version, body.key)
    return {}


# ------------------------------------------------------------------------------- UI download


@api.get("/model-versions/get-artifact", prefixes=("",), access=READ.on(registered_model()))
async def get_model_version_artifact(
    body: schemas.GetModelVersionArtifact, service: Registry, artifacts: Artifacts
) -> StreamingResponse:
    """One file of a model version (MLflow's `get_model_version_artifact_handler`)."""
    if body.path is None:
        raise invalid_parameter("Missing value for required parameter 'path'.")
    relative = safe_relative_path(body.path)
    uri, sub_path = await blocking(service.artifact_root, body.name, body.version)
    store_path = artifacts.resolve(uri, join(safe_relative_path(sub_path), relative))
    if not store_path:
        raise MlflowError("Invalid path", "INVALID_PARAMETER_VALUE")
    return streamed(await artifacts.download(store_path))
