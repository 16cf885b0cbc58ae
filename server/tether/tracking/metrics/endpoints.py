"""HTTP endpoints of MLflow's metric history API."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from tether.api import response_models as resp
from tether.api.deps import provider
from tether.api.request import parse_request
from tether.api.routing import MlflowRouter
from tether.threads import blocking
from tether.tracking.metrics import schemas
from tether.tracking.metrics.service import MetricService

Metrics = Annotated[MetricService, Depends(provider(MetricService))]
api = MlflowRouter("metrics")
router = api.router


@api.route(
    "/metrics/get-history",
    ["GET"],
    request=schemas.GetMetricHistory,
    response=resp.GetMetricHistoryResponse,
)
async def get_metric_history(request: Request, service: Metrics) -> dict[str, Any]:
    body = await parse_request(request, schemas.GetMetricHistory)
    metrics, token = await blocking(
        service.history, body.run_id, body.metric_key, body.max_results, body.page_token or None
    )
    response: dict[str, Any] = {}
    if metrics:
        response["metrics"] = metrics
    if token:
        response["next_page_token"] = token
    return response


@api.route(
    "/metrics/get-history-bulk-interval",
    ["GET"],
    request=schemas.GetMetricHistoryBulkInterval,
    response=resp.GetMetricHistoryBulkIntervalResponse,
)
async def get_metric_history_bulk_interval(request: Request, service: Metrics) -> dict[str, Any]:
    body = await parse_request(request, schemas.GetMetricHistoryBulkInterval)
    metrics = await blocking(
        service.bulk_interval,
        body.run_ids,
        body.metric_key,
        body.max_results,
        body.start_step,
        body.end_step,
    )
    return {"metrics": metrics} if metrics else {}
