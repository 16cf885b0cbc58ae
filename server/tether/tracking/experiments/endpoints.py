"""HTTP endpoints of MLflow's experiment API."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from tether.api import response_models as resp
from tether.api.deps import provider
from tether.api.request import parse_request
from tether.api.routing import MlflowRouter
from tether.threads import blocking
from tether.tracking.experiments import schemas
from tether.tracking.experiments.service import ExperimentService, normalize_view_type

Experiments = Annotated[ExperimentService, Depends(provider(ExperimentService))]
api = MlflowRouter("experiments")
router = api.router


@api.route(
    "/experiments/create",
    ["POST"],
    request=schemas.CreateExperiment,
    response=resp.CreateExperimentResponse,
)
async def create_experiment(request: Request, service: Experiments) -> dict[str, Any]:
    body = await parse_request(request, schemas.CreateExperiment)
    tags = [(t.key or "", t.value or "") for t in body.tags]
    return {
        "experiment_id": await blocking(service.create, body.name, body.artifact_location, tags)
    }


@api.route(
    "/experiments/get", ["GET"], request=schemas.ExperimentId, response=resp.GetExperimentResponse
)
async def get_experiment(request: Request, service: Experiments) -> dict[str, Any]:
    body = await parse_request(request, schemas.ExperimentId)
    return {"experiment": await blocking(service.get, body.experiment_id)}


@api.route(
    "/experiments/get-by-name",
    ["GET"],
    request=schemas.GetExperimentByName,
    response=resp.GetExperimentResponse,
)
async def get_experiment_by_name(request: Request, service: Experiments) -> dict[str, Any]:
    body = await parse_request(request, schemas.GetExperimentByName)
    return {"experiment": await blocking(service.get_by_name, body.experiment_name)}


@api.route(
    "/experiments/search",
    ["GET", "POST"],
    request=schemas.SearchExperiments,
    response=resp.SearchExperimentsResponse,
)
async def search_experiments(request: Request, service: Experiments) -> dict[str, Any]:
    body = await parse_request(request, schemas.SearchExperiments)
    experiments, token = await blocking(
        service.search,
        view_type=normalize_view_type(body.view_type),
        max_results=body.max_results,
        filter_string=body.filter,
        order_by=body.order_by,
        page_token=body.page_token or None,
    )
    response: dict[str, Any] = {}
    if experiments:
        response["experiments"] = experiments
    if token:
        response["next_page_token"] = token
    return response


@api.route("/experiments/update", ["POST"], request=schemas.UpdateExperiment, response=resp.Empty)
async def update_experiment(request: Request, service: Experiments) -> dict[str, Any]:
    body = await parse_request(request, schemas.UpdateExperiment)
    await blocking(service.rename, body.experiment_id, body.new_name)
    return {}


@api.route("/experiments/delete", ["POST"], request=schemas.ExperimentId, response=resp.Empty)
async def delete_experiment(request: Request, service: Experiments) -> dict[str, Any]:
    body = await parse_request(request, schemas.ExperimentId)
    await blocking(service.delete, body.experiment_id)
    return {}


@api.route("/experiments/restore", ["POST"], request=schemas.ExperimentId, response=resp.Empty)
async def restore_experiment(request: Request, service: Experiments) -> dict[str, Any]:
    body = await parse_request(request, schemas.ExperimentId)
    await blocking(service.restore, body.experiment_id)
    return {}


@api.route(
    "/experiments/set-experiment-tag",
    ["POST"],
    request=schemas.SetExperimentTag,
    response=resp.Empty,
)
async def set_experiment_tag(request: Request, service: Experiments) -> dict[str, Any]:
    body = await parse_request(request, schemas.SetExperimentTag)
    await blocking(service.set_tag, body.experiment_id, body.key, body.value)
    return {}


@api.route(
    "/experiments/delete-experiment-tag",
    ["POST"],
    request=schemas.DeleteExperimentTag,
    response=resp.Empty,
)
async def delete_experiment_tag(request: Request, service: Experiments) -> dict[str, Any]:
    body = await parse_request(request, schemas.DeleteExperimentTag)
    await blocking(service.delete_tag, body.experiment_id, body.key)
    return {}
