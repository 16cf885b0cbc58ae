"""HTTP endpoints of MLflow's run API."""

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
    logged_models,
    run,
)
from tether.api.deps import provider
from tether.api.responses import Empty
from tether.api.routing import MLFLOW_PREFIXES, Router
from tether.threads import blocking
from tether.tracking.experiments.service import normalize_view_type
from tether.tracking.runs import schemas
from tether.tracking.runs.schemas import MetricIn
from tether.tracking.runs.service import DatasetIn, RunService

Runs = Annotated[RunService, Depends(provider(RunService))]
api = Router("runs", prefixes=MLFLOW_PREFIXES)

# Metrics logged to a logged model, and models linked to a run, need EDIT on those models
# too (MLflow's auth app): EDIT on one's own run must not write into another's model.
METRIC_MODEL = logged_models(lambda body, _: body.model_id, "model_id")
BATCH_MODELS = logged_models(
    lambda body, _: sorted({p.model_id for p in body.points if p.model_id}), "metrics' model_id"
)
LINKED_MODELS = logged_models(
    lambda body, _: sorted({m.model_id for m in body.models if m.model_id}), "models' model_id"
)


@api.post("/runs/create", access=EDIT.on(experiment()))
async def create_run(body: schemas.CreateRun, service: Runs) -> schemas.RunResponse:
    run = await blocking(
        service.create,
        experiment_id=body.experiment_id,
        user_id=body.user_id,
        start_time=body.start_time,
        run_name=body.run_name,
        tags=[(t.key or "", t.value or "") for t in body.tags],
    )
    return {"run": run}


@api.get("/runs/get", access=READ.on(run()))
async def get_run(body: schemas.RunId, service: Runs) -> schemas.RunResponse:
    return {"run": await blocking(service.get, body.run_id)}


@api.post("/runs/update", access=EDIT.on(run()))
async def update_run(body: schemas.UpdateRun, service: Runs) -> schemas.UpdateRunResponse:
    info = await blocking(service.update, body.run_id, body.status, body.end_time, body.run_name)
    return {"run_info": info}


@api.post("/runs/delete", access=DELETE.on(run()))
async def delete_run(body: schemas.RunId, service: Runs) -> Empty:
    await blocking(service.delete, body.run_id)
    return {}


@api.post("/runs/restore", access=DELETE.on(run()))
async def restore_run(body: schemas.RunId, service: Runs) -> Empty:
    await blocking(service.restore, body.run_id)
    return {}


@api.post("/runs/set-tag", access=EDIT.on(run()))
async def set_tag(body: schemas.SetTag, service: Runs) -> Empty:
    await blocking(service.set_tag, body.run_id, body.key, body.value)
    return {}


@api.post("/runs/delete-tag", access=EDIT.on(run()))
async def delete_tag(body: schemas.DeleteTag, service: Runs) -> Empty:
    await blocking(service.delete_tag, body.run_id, body.key)
    return {}


@api.post("/runs/log-parameter", access=EDIT.on(run()))
async def log_param(body: schemas.LogParam, service: Runs) -> Empty:
    await blocking(service.log_param, body.run_id, body.key, body.value)
    return {}


@api.post("/runs/log-metric", access=EDIT.on(run()).and_on(METRIC_MODEL))
async def log_metric(body: schemas.LogMetric, service: Runs) -> Empty:
    metric = MetricIn(
        body.key,
        body.value,
        body.timestamp,
        body.step,
        body.model_id,
        body.dataset_name,
        body.dataset_digest,
    )
    await blocking(service.log_metric, body.run_id, metric)
    return {}


@api.post("/runs/log-batch", access=EDIT.on(run()).and_on(BATCH_MODELS))
async def log_batch(body: schemas.LogBatch, service: Runs) -> Empty:
    await blocking(
        service.log_batch,
        body.run_id,
        body.points,
        [(p.key, p.value) for p in body.params],
        [(t.key, t.value) for t in body.tags],
    )
    return {}


@api.post("/runs/log-inputs", access=EDIT.on(run()).and_on(LINKED_MODELS))
async def log_inputs(body: schemas.LogInputs, service: Runs) -> Empty:
    datasets = [
        None
        if item.dataset is None
        else DatasetIn(
            item.dataset.name,
            item.dataset.digest,
            item.dataset.source_type,
            item.dataset.source,
            item.dataset.schema_,
            item.dataset.profile,
            [(t.key, t.value) for t in item.tags],
        )
        for item in body.datasets
    ]
    model_ids = [m.model_id or "" for m in body.models]
    await blocking(service.log_inputs, body.run_id, datasets, model_ids)
    return {}


@api.post("/runs/outputs", access=EDIT.on(run()).and_on(LINKED_MODELS))
async def log_outputs(body: schemas.LogOutputs, service: Runs) -> Empty:
    models = [(m.model_id or "", m.step) for m in body.models]
    await blocking(service.log_outputs, body.run_id, models)
    return {}


@api.post("/runs/search", access=SIGNED_IN.listing("experiment"))
async def search_runs(
    body: schemas.SearchRuns, service: Runs, visible: Visible
) -> schemas.SearchRunsResponse:
    runs, token = await blocking(
        service.search,
        readable=visible,
        experiment_ids=body.experiment_ids,
        filter_string=body.filter,
        run_view_type=normalize_view_type(body.run_view_type),
        max_results=body.max_results,
        order_by=body.order_by,
        page_token=body.page_token or None,
    )
    response: schemas.SearchRunsResponse = {"runs": runs} if runs else {}
    if token:
        response["next_page_token"] = token
    return response
