"""HTTP endpoints of MLflow 3's tracing API, at the paths and methods of its protocol:
`/api/3.0/mlflow/traces...` (and `/ajax-api/3.0/...`), the v2 legacy routes under
`/api/2.0/mlflow/traces...`, the UI's `get-trace-artifact`, and the OTLP receiver
`/v1/traces` (`otlp.py`).

Answers that hold spans are streamed span by span (`reads`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from fastapi.responses import StreamingResponse

from tether.api.access import (
    DELETE,
    EDIT,
    READ,
    experiment,
    experiments,
    run,
    trace,
    traces,
)
from tether.api.deps import provider
from tether.api.responses import Empty
from tether.api.routing import MLFLOW3_PREFIXES, MLFLOW_PREFIXES, Router
from tether.errors import MlflowError, invalid_parameter
from tether.threads import blocking
from tether.tracking.traces import schemas, serialize
from tether.tracking.traces.metrics import TraceMetrics
from tether.tracking.traces.reads import TRACE_DATA_FILE, TraceReader
from tether.tracking.traces.searching import TraceSearch, check_page_size, experiment_scope
from tether.tracking.traces.service import TraceService

Traces = Annotated[TraceService, Depends(provider(TraceService))]
Reader = Annotated[TraceReader, Depends(provider(TraceReader))]
Search = Annotated[TraceSearch, Depends(provider(TraceSearch))]
Metrics = Annotated[TraceMetrics, Depends(provider(TraceMetrics))]

api = Router("traces", prefixes=MLFLOW3_PREFIXES)
v2 = Router("traces-v2", prefixes=MLFLOW_PREFIXES)
ui = Router("traces-ui", prefixes=("/ajax-api/2.0/mlflow", "/ajax-api/3.0/mlflow"))

_JSON = "application/json"


def _locations(body: schemas.SearchTracesV3, _: object) -> list[str]:
    return [
        loc.mlflow_experiment.experiment_id or ""
        for loc in body.locations
        if loc.mlflow_experiment is not None
    ]


def _trace_experiment(body: schemas.StartTraceV3, _: object) -> str | None:
    info = body.trace.trace_info
    location = info.trace_location if info is not None else None
    if location is None or location.mlflow_experiment is None:
        return None  # refused by the service, as a bad request
    return location.mlflow_experiment.experiment_id


# Who may do what: as MLflow's auth app, through each trace's experiment.
_STARTED_IN = experiments(_trace_experiment, "trace.trace_info.trace_location")
_SEARCHED = experiments(_locations, "each of locations")


def _pairs(items: list[schemas.KeyValueIn]) -> dict[str, str]:
    return {item.key or "": item.value or "" for item in items}


# v3 ---------------------------------------------------------------------------------------------


@api.post("/traces", access=EDIT.on(_STARTED_IN))
async def start_trace(body: schemas.StartTraceV3, service: Traces) -> schemas.TraceInfoResponse:
    if body.trace.trace_info is None:
        raise invalid_parameter("Missing value for required parameter 'trace.trace_info'.")
    info = await blocking(service.start, body.trace.trace_info)
    return {"trace": {"trace_info": info}}


@api.get("/traces/get", response=schemas.TraceResponse, access=READ.on(traces("trace_id")))
async def get_trace(body: schemas.GetTrace, reader: Reader) -> StreamingResponse:
    pieces = await reader.get_trace(body.trace_id, body.allow_partial)
    return StreamingResponse(pieces, media_type=_JSON)


@api.get(
    "/traces/batchGet",
    response=schemas.BatchGetTracesResponse,
    access=READ.on(traces("trace_ids")),
)
async def batch_get_traces(body: schemas.BatchGetTraces, reader: Reader) -> StreamingResponse:
    pieces = await reader.batch_get(body.trace_ids, body.experiment_ids)
    return StreamingResponse(pieces, media_type=_JSON)


@api.post("/traces/batchGetInfos", access=READ.on(traces("trace_ids")))
async def batch_get_trace_infos(
    body: schemas.BatchGetTraces, service: Traces
) -> schemas.BatchGetTraceInfosResponse:
    infos = await blocking(service.batch_infos, body.trace_ids, body.experiment_ids)
    return {"trace_infos": infos} if infos else {}


@api.post("/traces/search", access=READ.on(_SEARCHED))
async def search_traces(
    body: schemas.SearchTracesV3, search: Search
) -> schemas.SearchTracesV3Response:
    check_page_size(body.max_results)
    reads, token = await search.search(
        experiment_scope(_locations(body, None)),
        body.filter,
        body.max_results,
        body.order_by,
        body.page_token or None,
    )
    response: schemas.SearchTracesV3Response = {}
    if reads:
        response["traces"] = [
            serialize.trace_info(r.row, r.tags, r.metadata, r.assessments) for r in reads
        ]
    if token:
        response["next_page_token"] = token
    return response


@api.post("/traces/delete-traces", access=DELETE.on(experiment()))
async def delete_traces(
    body: schemas.DeleteTraces, service: Traces, reader: Reader
) -> schemas.DeleteTracesResponse:
    return await _delete_traces(body, service, reader)


async def _delete_traces(
    body: schemas.DeleteTraces, service: TraceService, reader: TraceReader
) -> schemas.DeleteTracesResponse:
    deleted = await blocking(
        service.delete,
        body.experiment_id,
        body.max_timestamp_millis,
        body.max_traces,
        body.request_ids,
    )
    await reader.delete_files(deleted.span_dirs, deleted.artifact_uris)
    return {"traces_deleted": deleted.count}


@api.post("/traces/metrics", access=READ.on(experiment("experiment_ids")))
async def query_trace_metrics(
    body: schemas.QueryTraceMetrics, metrics: Metrics
) -> schemas.QueryTraceMetricsResponse:
    points = await blocking(metrics.query, body)
    return {"data_points": points} if points else {}


@api.post("/traces/calculate-filter-correlation", access=READ.on(experiment("experiment_ids")))
async def calculate_filter_correlation(
    body: schemas.CalculateTraceFilterCorrelation, metrics: Metrics
) -> schemas.FilterCorrelationResponse:
    return await blocking(
        metrics.correlation,
        body.experiment_ids,
        body.filter_string1,
        body.filter_string2,
        body.base_filter,
    )


@api.get("/traces/{trace_id}", access=READ.on(trace()))
async def get_trace_info(trace_id: str, service: Traces) -> schemas.TraceInfoResponse:
    return {"trace": {"trace_info": await blocking(service.get_info, trace_id)}}


@api.patch("/traces/{trace_id}/tags", access=EDIT.on(trace()))
async def set_trace_tag(trace_id: str, body: schemas.SetTraceTag, service: Traces) -> Empty:
    await blocking(service.set_tag, trace_id, body.key, body.value)
    return {}


@api.delete("/traces/{trace_id}/tags", access=EDIT.on(trace()))
async def delete_trace_tag(trace_id: str, body: schemas.DeleteTraceTag, service: Traces) -> Empty:
    await blocking(service.delete_tag, trace_id, body.key)
    return {}


@api.post("/traces/{trace_id}/assessments", access=EDIT.on(trace()))
async def create_assessment(
    trace_id: str, body: schemas.CreateAssessment, service: Traces
) -> schemas.AssessmentResponse:
    return {"assessment": await blocking(service.create_assessment, trace_id, body.assessment)}


@api.get("/traces/{trace_id}/assessments/{assessment_id}", access=READ.on(trace()))
async def get_assessment(
    trace_id: str, assessment_id: str, service: Traces
) -> schemas.AssessmentResponse:
    return {"assessment": await blocking(service.get_assessment, trace_id, assessment_id)}


@api.patch("/traces/{trace_id}/assessments/{assessment_id}", access=EDIT.on(trace()))
async def update_assessment(
    trace_id: str, assessment_id: str, body: schemas.UpdateAssessment, service: Traces
) -> schemas.AssessmentResponse:
    updated = await blocking(
        service.update_assessment, trace_id, assessment_id, body.assessment, body.update_mask
    )
    return {"assessment": updated}


@api.delete("/traces/{trace_id}/assessments/{assessment_id}", access=EDIT.on(trace()))
async def delete_assessment(trace_id: str, assessment_id: str, service: Traces) -> Empty:
    await blocking(service.delete_assessment, trace_id, assessment_id)
    return {}


# v2 (MLflow 2.x clients) -----------------------------------------------------------------------


@v2.post("/traces", access=EDIT.on(experiment()))
async def start_trace_v2(
    body: schemas.StartTraceV2, service: Traces
) -> schemas.TraceInfoV2Response:
    info = await blocking(
        service.start_v2,
        body.experiment_id,
        body.timestamp_ms,
        _pairs(body.request_metadata),
        _pairs(body.tags),
    )
    return {"trace_info": info}


@v2.get("/traces", access=READ.on(experiment("experiment_ids")))
async def search_traces_v2(
    body: schemas.SearchTracesV2, search: Search
) -> schemas.SearchTracesV2Response:
    check_page_size(body.max_results)
    reads, token = await search.search(
        experiment_scope(body.experiment_ids),
        body.filter,
        body.max_results,
        body.order_by,
        body.page_token or None,
    )
    response: schemas.SearchTracesV2Response = {}
    if reads:
        response["traces"] = [serialize.trace_info_v2(r.row, r.tags, r.metadata) for r in reads]
    if token:
        response["next_page_token"] = token
    return response


@v2.post("/traces/delete-traces", access=DELETE.on(experiment()))
async def delete_traces_v2(
    body: schemas.DeleteTraces, service: Traces, reader: Reader
) -> schemas.DeleteTracesResponse:
    return await _delete_traces(body, service, reader)


# Stricter than MLflow (which needs READ on the traces): one rule names one action.
@v2.post("/traces/link-to-run", access=EDIT.on(run()).and_on(traces("trace_ids")))
async def link_traces_to_run(body: schemas.LinkTracesToRun, service: Traces) -> Empty:
    await blocking(service.link_to_run, body.trace_ids, body.run_id)
    return {}


@v2.post("/traces/link-prompts", access=EDIT.on(traces("trace_id")))
async def link_prompts_to_trace(body: schemas.LinkPromptsToTrace, service: Traces) -> Empty:
    prompts = [(p.name or "", str(p.version or "")) for p in body.prompt_versions]
    await blocking(service.link_prompts, body.trace_id, prompts)
    return {}


@v2.patch("/traces/{request_id}", access=EDIT.on(trace("request_id")))
async def end_trace_v2(
    request_id: str, body: schemas.EndTraceV2, service: Traces
) -> schemas.TraceInfoV2Response:
    info = await blocking(
        service.end_v2,
        request_id,
        body.timestamp_ms,
        body.status,
        _pairs(body.request_metadata),
        _pairs(body.tags),
    )
    return {"trace_info": info}


@v2.get("/traces/{request_id}/info", access=READ.on(trace("request_id")))
async def get_trace_info_v2(request_id: str, service: Traces) -> schemas.TraceInfoV2Response:
    return {"trace_info": await blocking(service.get_info_v2, request_id)}


@v2.patch("/traces/{request_id}/tags", access=EDIT.on(trace("request_id")))
async def set_trace_tag_v2(request_id: str, body: schemas.SetTraceTag, service: Traces) -> Empty:
    await blocking(service.set_tag, request_id, body.key, body.value)
    return {}


@v2.delete("/traces/{request_id}/tags", access=EDIT.on(trace("request_id")))
async def delete_trace_tag_v2(
    request_id: str, body: schemas.DeleteTraceTag, service: Traces
) -> Empty:
    await blocking(service.delete_tag, request_id, body.key)
    return {}


# The UI's trace data download ---------------------------------------------------------------


@ui.get("/get-trace-artifact", documented=False, access=READ.on(traces("request_id")))
async def get_trace_artifact(body: schemas.TraceArtifactQuery, reader: Reader) -> StreamingResponse:
    """The trace's `traces.json` (`{"spans": [...]}`), or an attachment (`path`)."""
    if not body.request_id:
        raise MlflowError('Request must include the "request_id" query parameter.', "BAD_REQUEST")
    size: int | None
    if body.path:
        size, chunks = await reader.attachment(body.request_id, _safe(body.path))
        name = body.path.rsplit("/", 1)[-1]
    else:
        size, chunks = await reader.trace_data(body.request_id)
        name = TRACE_DATA_FILE
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    if size is not None:
        headers["Content-Length"] = str(size)
    return StreamingResponse(chunks, media_type="application/octet-stream", headers=headers)


def _safe(path: str) -> str:
    from tether.storage import paths

    try:
        return paths.safe_relative_path(path)
    except Exception:
        raise invalid_parameter(f"Invalid path: {path}") from None
