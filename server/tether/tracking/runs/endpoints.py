"""HTTP endpoints of MLflow's run API."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from tether.api import response_models as resp
from tether.api.deps import provider
from tether.api.request import parse_model, parse_request, read_request_data
from tether.api.routing import MlflowRouter
from tether.threads import blocking
from tether.tracking import validation
from tether.tracking.experiments.service import normalize_view_type
from tether.tracking.runs import schemas
from tether.tracking.runs.service import DatasetIn, MetricIn, RunService

Runs = Annotated[RunService, Depends(provider(RunService))]
api = MlflowRouter("runs")
router = api.router


@api.route("/runs/create", ["POST"], request=schemas.CreateRun, response=resp.RunResponse)
async def create_run(request: Request, service: Runs) -> dict[str, Any]:
    body = await parse_request(request, schemas.CreateRun)
    run = await blocking(
        service.create,
        experiment_id=body.experiment_id,
        user_id=body.user_id,
        start_time=body.start_time,
        run_name=body.run_name,
        tags=[(t.key or "", t.value or "") for t in body.tags],
    )
    return {"run": run}


@api.route("/runs/get", ["GET"], request=schemas.RunId, response=resp.RunResponse)
async def get_run(request: Request, service: Runs) -> dict[str, Any]:
    body = await parse_request(request, schemas.RunId)
    return {"run": await blocking(service.get, body.run_id)}


@api.route("/runs/update", ["POST"], request=schemas.UpdateRun, response=resp.UpdateRunResponse)
async def update_run(request: Request, service: Runs) -> dict[str, Any]:
    body = await parse_request(request, schemas.UpdateRun)
    info = await blocking(service.update, body.run_id, body.status, body.end_time, body.run_name)
    return {"run_info": info}


@api.route("/runs/delete", ["POST"], request=schemas.RunId, response=resp.Empty)
async def delete_run(request: Request, service: Runs) -> dict[str, Any]:
    body = await parse_request(request, schemas.RunId)
    await blocking(service.delete, body.run_id)
    return {}


@api.route("/runs/restore", ["POST"], request=schemas.RunId, response=resp.Empty)
async def restore_run(request: Request, service: Runs) -> dict[str, Any]:
    body = await parse_request(request, schemas.RunId)
    await blocking(service.restore, body.run_id)
    return {}


@api.route("/runs/set-tag", ["POST"], request=schemas.SetTag, response=resp.Empty)
async def set_tag(request: Request, service: Runs) -> dict[str, Any]:
    body = await parse_request(request, schemas.SetTag)
    await blocking(service.set_tag, body.run_id, body.key, body.value)
    return {}


@api.route("/runs/delete-tag", ["POST"], request=schemas.DeleteTag, response=resp.Empty)
async def delete_tag(request: Request, service: Runs) -> dict[str, Any]:
    body = await parse_request(request, schemas.DeleteTag)
    await blocking(service.delete_tag, body.run_id, body.key)
    return {}


@api.route("/runs/log-parameter", ["POST"], request=schemas.LogParam, response=resp.Empty)
async def log_param(request: Request, service: Runs) -> dict[str, Any]:
    body = await parse_request(request, schemas.LogParam)
    await blocking(service.log_param, body.run_id, body.key, body.value)
    return {}


@api.route("/runs/log-metric", ["POST"], request=schemas.LogMetric, response=resp.Empty)
async def log_metric(request: Request, service: Runs) -> dict[str, Any]:
    body = await parse_request(request, schemas.LogMetric)
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


@api.route("/runs/log-batch", ["POST"], request=schemas.LogBatch, response=resp.Empty)
async def log_batch(request: Request, service: Runs) -> dict[str, Any]:
    validation.validate_batch_log_request_size(len(await request.body()))
    data = await read_request_data(request, schemas.LogBatch)
    # Plain points skip per-point model validation (same result, see plain_metrics); the
    # rest of the body, and any batch with an unusual point, goes through the model.
    metrics = schemas.plain_metrics(data.get("metrics"))
    if metrics is None:
        body = parse_model(schemas.LogBatch, data)
        metrics = [
            MetricIn(
                m.key, m.value, m.timestamp, m.step, m.model_id, m.dataset_name, m.dataset_digest
            )
            for m in body.metrics
        ]
    else:
        body = parse_model(schemas.LogBatch, {**data, "metrics": []})
    await blocking(
        service.log_batch,
        body.run_id,
        metrics,
        [(p.key, p.value) for p in body.params],
        [(t.key, t.value) for t in body.tags],
    )
    return {}


@api.route("/runs/log-inputs", ["POST"], request=schemas.LogInputs, response=resp.Empty)
async def log_inputs(request: Request, service: Runs) -> dict[str, Any]:
    body = await parse_request(request, schemas.LogInputs)
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


@api.route("/runs/outputs", ["POST"], request=schemas.LogOutputs, response=resp.Empty)
async def log_outputs(request: Request, service: Runs) -> dict[str, Any]:
    body = await parse_request(request, schemas.LogOutputs)
    models = [(m.model_id or "", m.step) for m in body.models]
    await blocking(service.log_outputs, body.run_id, models)
    return {}


@api.route("/runs/search", ["POST"], request=schemas.SearchRuns, response=resp.SearchRunsResponse)
async def search_runs(request: Request, service: Runs) -> dict[str, Any]:
    body = await parse_request(request, schemas.SearchRuns)
    runs, token = await blocking(
        service.search,
        experiment_ids=body.experiment_ids,
        filter_string=body.filter,
        run_view_type=normalize_view_type(body.run_view_type),
        max_results=body.max_results,
        order_by=body.order_by,
        page_token=body.page_token or None,
    )
    response: dict[str, Any] = {}
    if runs:
        response["runs"] = runs
    if token:
        response["next_page_token"] = token
    return response
