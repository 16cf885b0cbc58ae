"""HTTP endpoints of MLflow's experiment API."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from tether.api.deps import provider
from tether.api.responses import Empty
from tether.api.routing import MLFLOW_PREFIXES, Router
from tether.threads import blocking
from tether.tracking.experiments import schemas
from tether.tracking.experiments.service import ExperimentService, normalize_view_type

Experiments = Annotated[ExperimentService, Depends(provider(ExperimentService))]
api = Router("experiments", prefixes=MLFLOW_PREFIXES)


@api.post("/experiments/create")
async def create_experiment(
    body: schemas.CreateExperiment, service: Experiments
) -> schemas.CreateExperimentResponse:
    tags = [(t.key or "", t.value or "") for t in body.tags]
    return {
        "experiment_id": await blocking(service.create, body.name, body.artifact_location, tags)
    }


@api.get("/experiments/get")
async def get_experiment(
    body: schemas.ExperimentId, service: Experiments
) -> schemas.GetExperimentResponse:
    return {"experiment": await blocking(service.get, body.experiment_id)}


@api.get("/experiments/get-by-name")
async def get_experiment_by_name(
    body: schemas.GetExperimentByName, service: Experiments
) -> schemas.GetExperimentResponse:
    return {"experiment": await blocking(service.get_by_name, body.experiment_name)}


@api.route("/experiments/search", ["GET", "POST"])
async def search_experiments(
    body: schemas.SearchExperiments, service: Experiments
) -> schemas.SearchExperimentsResponse:
    experiments, token = await blocking(
        service.search,
        view_type=normalize_view_type(body.view_type),
        max_results=body.max_results,
        filter_string=body.filter,
        order_by=body.order_by,
        page_token=body.page_token or None,
    )
    response: schemas.SearchExperimentsResponse = (
        {"experiments": experiments} if experiments else {}
    )
    if token:
        response["next_page_token"] = token
    return response


@api.post("/experiments/update")
async def update_experiment(body: schemas.UpdateExperiment, service: Experiments) -> Empty:
    await blocking(service.rename, body.experiment_id, body.new_name)
    return {}


@api.post("/experiments/delete")
async def delete_experiment(body: schemas.ExperimentId, service: Experiments) -> Empty:
    await blocking(service.delete, body.experiment_id)
    return {}


@api.post("/experiments/restore")
async def restore_experiment(body: schemas.ExperimentId, service: Experiments) -> Empty:
    await blocking(service.restore, body.experiment_id)
    return {}


@api.post("/experiments/set-experiment-tag")
async def set_experiment_tag(body: schemas.SetExperimentTag, service: Experiments) -> Empty:
    await blocking(service.set_tag, body.experiment_id, body.key, body.value)
    return {}


@api.post("/experiments/delete-experiment-tag")
async def delete_experiment_tag(body: schemas.DeleteExperimentTag, service: Experiments) -> Empty:
    await blocking(service.delete_tag, body.experiment_id, body.key)
    return {}
