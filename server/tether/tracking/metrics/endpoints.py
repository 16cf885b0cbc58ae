"""HTTP endpoints of MLflow's metric history API."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from tether.api.access import READ, run, runs
from tether.api.deps import provider
from tether.api.responses import FlaskJsonResponse
from tether.api.routing import MLFLOW_PREFIXES, Router
from tether.threads import blocking
from tether.tracking.metrics import schemas
from tether.tracking.metrics.service import MetricService

Metrics = Annotated[MetricService, Depends(provider(MetricService))]
api = Router("metrics", prefixes=MLFLOW_PREFIXES)


@api.get("/metrics/get-history", access=READ.on(run()))
async def get_metric_history(
    body: schemas.GetMetricHistory, service: Metrics
) -> schemas.GetMetricHistoryResponse:
    metrics, token = await blocking(
        service.history, body.run_id, body.metric_key, body.max_results, body.page_token or None
    )
    response: schemas.GetMetricHistoryResponse = {"metrics": metrics} if metrics else {}
    if token:
        response["next_page_token"] = token
    return response


@api.get("/metrics/get-history-bulk-interval", access=READ.on(runs()))
async def get_metric_history_bulk_interval(
    body: schemas.GetMetricHistoryBulkInterval, service: Metrics
) -> schemas.GetMetricHistoryBulkIntervalResponse:
    metrics = await blocking(
        service.bulk_interval,
        body.run_ids,
        body.metric_key,
        body.max_results,
        body.start_step,
        body.end_step,
    )
    return {"metrics": metrics} if metrics else {}


@api.get(
    "/metrics/get-history-bulk",
    prefixes=("/ajax-api/2.0/mlflow",),  # MLflow serves it under ajax-api only
    documented=False,
    response_class=FlaskJsonResponse,
    access=READ.on(runs("run_id")),  # a NaN point is written as MLflow writes it
)
async def get_metric_history_bulk(
    body: schemas.GetMetricHistoryBulk, service: Metrics
) -> schemas.GetMetricHistoryBulkResponse:
    """The UI's former chart read (today's UI samples through get-history-bulk-interval)."""
    metrics = await blocking(service.bulk, body.run_id, body.metric_key, body.max_results)
    return {"metrics": metrics}
