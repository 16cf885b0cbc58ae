"""HTTP endpoints of MLflow 3's logged-model API, at the paths and methods of its protocol."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends
from fastapi.responses import StreamingResponse

from tether.api.access import DELETE, EDIT, READ, SIGNED_IN, Visible, experiment, logged_model
from tether.api.deps import provider
from tether.api.responses import Empty
from tether.api.routing import MLFLOW_PREFIXES, Router
from tether.artifacts import schemas as artifact_schemas
from tether.artifacts.http import Artifacts, streamed
from tether.errors import MlflowError
from tether.storage import paths
from tether.threads import blocking
from tether.tracking.logged_models import schemas
from tether.tracking.logged_models.search import OrderBy
from tether.tracking.logged_models.service import (
    KeyValueIn,
    LoggedModelService,
    check_body_model_id,
)

LoggedModels = Annotated[LoggedModelService, Depends(provider(LoggedModelService))]
api = Router("logged-models", prefixes=MLFLOW_PREFIXES)


def _pairs(items: list[Any]) -> list[KeyValueIn]:
    return [KeyValueIn(item.key, item.value) for item in items]


@api.post("/logged-models", access=EDIT.on(experiment()))
async def create_logged_model(
    body: schemas.CreateLoggedModel, service: LoggedModels
) -> schemas.LoggedModelResponse:
    model = await blocking(
        service.create,
        experiment_id=body.experiment_id,
        name=body.name,
        model_type=body.model_type,
        source_run_id=body.source_run_id,
        params=_pairs(body.params),
        tags=_pairs(body.tags),
    )
    return {"model": model}


@api.post("/logged-models/search", access=SIGNED_IN.listing("experiment"))
async def search_logged_models(
    body: schemas.SearchLoggedModels, service: LoggedModels, visible: Visible
) -> schemas.SearchLoggedModelsResponse:
    models, token = await blocking(
        service.search,
        readable=visible,
        experiment_ids=body.experiment_ids,
        filter_string=body.filter or None,
        datasets=[(d.dataset_name, d.dataset_digest) for d in body.datasets],
        max_results=body.max_results,
        order_by=[
            OrderBy(
                o.field_name or "",
                o.ascending,
                o.dataset_name or None,
                o.dataset_digest or None,
            )
            for o in body.order_by
        ],
        page_token=body.page_token or None,
    )
    response: schemas.SearchLoggedModelsResponse = {"models": models} if models else {}
    if token:
        response["next_page_token"] = token
    return response


@api.get("/logged-models/{model_id}", access=READ.on(logged_model()))
async def get_logged_model(
    model_id: str, body: schemas.GetLoggedModel, service: LoggedModels
) -> schemas.LoggedModelResponse:
    return {"model": await blocking(service.get, model_id, body.allow_deleted)}


@api.patch("/logged-models/{model_id}", access=EDIT.on(logged_model()))
async def finalize_logged_model(
    model_id: str, body: schemas.FinalizeLoggedModel, service: LoggedModels
) -> schemas.LoggedModelResponse:
    check_body_model_id(model_id, body.model_id)
    return {"model": await blocking(service.finalize, model_id, body.status)}


@api.delete("/logged-models/{model_id}", access=DELETE.on(logged_model()))
async def delete_logged_model(model_id: str, service: LoggedModels) -> Empty:
    await blocking(service.delete, model_id)
    return {}


@api.patch("/logged-models/{model_id}/tags", access=EDIT.on(logged_model()))
async def set_logged_model_tags(
    model_id: str, body: schemas.SetLoggedModelTags, service: LoggedModels
) -> Empty:
    await blocking(service.set_tags, model_id, _pairs(body.tags))
    return {}


@api.delete("/logged-models/{model_id}/tags/{tag_key}", access=DELETE.on(logged_model()))
async def delete_logged_model_tag(model_id: str, tag_key: str, service: LoggedModels) -> Empty:
    await blocking(service.delete_tag, model_id, tag_key)
    return {}


@api.post("/logged-models/{model_id}/params", access=EDIT.on(logged_model()))
async def log_logged_model_params(
    model_id: str, body: schemas.LogLoggedModelParams, service: LoggedModels
) -> Empty:
    check_body_model_id(model_id, body.model_id)
    await blocking(service.log_params, model_id, _pairs(body.params))
    return {}


# Artifacts (through the artifact proxy's store) ---------------------------------------------


@api.get("/logged-models/{model_id}/artifacts/directories", access=READ.on(logged_model()))
async def list_logged_model_artifacts(
    model_id: str,
    body: schemas.ListLoggedModelArtifacts,
    service: LoggedModels,
    artifacts: Artifacts,
) -> artifact_schemas.ListRunArtifactsResponse:
    relative = paths.safe_directory_path(body.artifact_directory_path or "")
    model = await blocking(service.get, model_id)
    return await artifacts.list_under(model["info"]["artifact_uri"], relative)


@api.get(
    "/logged-models/{model_id}/artifacts/files",
    prefixes=("/ajax-api/2.0/mlflow",),  # MLflow serves it under ajax-api only
    documented=False,
    access=READ.on(logged_model()),
)
async def get_logged_model_artifact(
    model_id: str, body: schemas.GetLoggedModelArtifact, service: LoggedModels, artifacts: Artifacts
) -> StreamingResponse:
    """The UI's download of one file of a logged model."""
    if not body.artifact_file_path:
        raise MlflowError(
            'Request must include the "artifact_file_path" query parameter.', "BAD_REQUEST"
        )
    relative = paths.safe_relative_path(body.artifact_file_path)
    model = await blocking(service.get, model_id)
    store_path = artifacts.resolve(model["info"]["artifact_uri"], relative)
    return streamed(await artifacts.download(store_path))
