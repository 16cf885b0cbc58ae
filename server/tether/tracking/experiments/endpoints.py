"""HTTP endpoints of MLflow's experiment API."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from tether.api.access import (
    DELETE,
    EDIT,
    READ,
    SIGNED_IN,
    Visible,
    experiment,
    experiment_named,
    grant_creator,
)
from tether.api.deps import provider
from tether.api.responses import Empty
from tether.api.routing import MLFLOW_PREFIXES, Router
from tether.threads import blocking
from tether.tracking.experiments import schemas
from tether.tracking.experiments.service import ExperimentService, normalize_view_type

Experiments = Annotated[ExperimentService, Depends(provider(ExperimentService))]
api = Router("experiments", prefixes=MLFLOW_PREFIXES)

# The creator of an experiment gets MANAGE on it; searches show only readable experiments.
CREATES_EXPERIMENT = SIGNED_IN.then(
    grant_creator("experiment", lambda _, answer: answer["experiment_id"])
)
LISTS_EXPERIMENTS = SIGNED_IN.listing("experiment")


@api.post("/experiments/create", access=CREATES_EXPERIMENT)
async def create_experiment(
    body: schemas.CreateExperiment, service: Experiments
) -> schemas.CreateExperimentResponse:
    tags = [(t.key or "", t.value or "") for t in body.tags]
    return {
        "experiment_id": await blocking(service.create, body.name, body.artifact_location, tags)
    }


@api.get("/experiments/get", access=READ.on(experiment()))
async def get_experiment(
    body: schemas.ExperimentId, service: Experiments
) -> schemas.GetExperimentResponse:
    return {"experiment": await blocking(service.get, body.experiment_id)}


@api.get("/experiments/get-by-name", access=READ.on(experiment_named()))
async def get_experiment_by_name(
    body: schemas.GetExperimentByName, service: Experiments
) -> schemas.GetExperimentResponse:
    return {"experiment": await blocking(service.get_by_name, body.experiment_name)}


@api.route("/experiments/search", ["GET", "POST"], access=LISTS_EXPERIMENTS)
async def search_experiments(
    body: schemas.SearchExperiments, service: Experiments, visible: Visible
) -> schemas.SearchExperimentsResponse:
    experiments, token = await blocking(
        service.search,
        readable=visible,
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


@api.post("/experiments/update", access=EDIT.on(experiment()))
async def update_experiment(body: schemas.UpdateExperiment, service: Experiments) -> Empty:
    await blocking(service.rename, body.experiment_id, body.new_name)
    return {}


@api.post("/experiments/delete", access=DELETE.on(experiment()))
async def delete_experiment(body: schemas.ExperimentId, service: Experiments) -> Empty:
    await blocking(service.delete, body.experiment_id)
    return {}


@api.post("/experiments/restore", access=DELETE.on(experiment()))
async def restore_experiment(body: schemas.ExperimentId, service: Experiments) -> Empty:
    await blocking(service.restore, body.experiment_id)
    return {}


@api.post("/experiments/set-experiment-tag", access=EDIT.on(experiment()))
async def set_experiment_tag(body: schemas.SetExperimentTag, service: Experiments) -> Empty:
    await blocking(service.set_tag, body.experiment_id, body.key, body.value)
    return {}


@api.post("/experiments/delete-experiment-tag", access=EDIT.on(experiment()))
async def delete_experiment_tag(body: schemas.DeleteExperimentTag, service: Experiments) -> Empty:
    await blocking(service.delete_tag, body.experiment_id, body.key)
    return {}


@api.post(
    "/experiments/search-datasets",
    prefixes=("/ajax-api/2.0/mlflow",),  # MLflow serves it under ajax-api only
    documented=False,
    access=READ.on(experiment("experiment_ids")),  # each of them, as MLflow checks
)
async def search_datasets(
    body: schemas.SearchDatasets, service: Experiments
) -> schemas.SearchDatasetsResponse:
    summaries = await blocking(service.search_datasets, body.experiment_ids)
    return {"dataset_summaries": summaries} if summaries else {}
