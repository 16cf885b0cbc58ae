"""The OpenTelemetry receiver: `POST /v1/traces` (OTLP/HTTP, protobuf or JSON, gzip or
deflate), as `mlflow server` serves it.

The experiment comes from the `x-mlflow-experiment-id` header; `x-mlflow-run-id` links the
traces whose root span arrived to that run. Refusals are answered as MLflow answers them:
FastAPI's `{"detail": ...}` for a malformed request (400, 422 for a span that cannot be
read), MLflow's error body for what the store refuses (a missing experiment, a limit). A
success is the empty `ExportTraceServiceResponse`, in protobuf.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import JSONResponse, Response

from tether.api.access import EDIT, experiments, header
from tether.api.deps import provider
from tether.api.routing import Router
from tether.tracking.traces.ingest import OtlpError, SpanIngest

Ingest = Annotated[SpanIngest, Depends(provider(SpanIngest))]

EXPERIMENT_HEADER = "x-mlflow-experiment-id"
RUN_HEADER = "x-mlflow-run-id"

api = Router("opentelemetry")

_BINARY = {"type": "string", "format": "binary"}
_DOCUMENT = {
    "parameters": [
        {"name": EXPERIMENT_HEADER, "in": "header", "required": True, "schema": {"type": "string"}},
        {"name": RUN_HEADER, "in": "header", "required": False, "schema": {"type": "string"}},
    ],
    "requestBody": {
        "required": True,
        "content": {
            "application/x-protobuf": {"schema": _BINARY},
            "application/json": {"schema": {"type": "object"}},
        },
    },
    "responses": {
        "200": {
            "description": "The empty ExportTraceServiceResponse.",
            "content": {"application/x-protobuf": {"schema": _BINARY}},
        },
        "default": {
            "description": 'Refused: FastAPI\'s `{"detail": ...}` for an unreadable request '
            "(400, 422), MLflow's error body for what the store refuses (400, 404).",
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
    },
}


@api.post(
    "/v1/traces",
    binary_request=True,
    response_class=Response,
    openapi_extra=_DOCUMENT,
    access=EDIT.on(experiments(header(EXPERIMENT_HEADER), EXPERIMENT_HEADER)),
)
async def export_traces(request: Request, ingest: Ingest) -> Response:
    """Store OTLP spans in the experiment of the `x-mlflow-experiment-id` header."""
    experiment_id = request.headers.get(EXPERIMENT_HEADER)
    if experiment_id is None:
        missing = {"type": "missing", "loc": ["header", EXPERIMENT_HEADER], "msg": "Field required"}
        return JSONResponse({"detail": [{**missing, "input": None}]}, status_code=422)
    body = await request.body()
    try:
        await ingest.export(
            experiment_id,
            body,
            request.headers.get("content-type"),
            request.headers.get("content-encoding"),
            request.headers.get(RUN_HEADER),
        )
    except OtlpError as exc:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status)
    return Response(b"", media_type="application/x-protobuf")
