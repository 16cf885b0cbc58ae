"""Liveness and version, at the paths `mlflow server` serves them; readiness at /ready."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import PlainTextResponse

from tether import MLFLOW_VERSION, __version__
from tether.api.access import PUBLIC
from tether.api.responses import JsonResponse
from tether.api.routing import Router
from tether.ops import schemas
from tether.ops.readiness import Readiness

api = Router("health")


@api.get("/health", response_class=PlainTextResponse, access=PUBLIC)
async def health() -> str:
    return "OK"


@api.get("/version", response_class=PlainTextResponse, access=PUBLIC)
async def version() -> str:
    """The MLflow version whose API Tether implements (what clients check features against);
    Tether's own is at /api/2.0/tether/version and in every answer's X-Tether-Version."""
    return MLFLOW_VERSION


@api.get("/api/2.0/tether/version", access=PUBLIC)
async def tether_version() -> schemas.Versions:
    return {"tether_version": __version__, "mlflow_version": MLFLOW_VERSION}


@api.get("/ready", response=schemas.Readiness, same_body_on=(503,), access=PUBLIC)
async def ready(request: Request) -> JsonResponse:
    """200 when the database answers and the artifact store takes writes, else 503; the
    Azure ML sync is reported (queue, reachability) but never makes the server unready."""
    ok, body = await _readiness(request).report()
    return JsonResponse(body, status_code=200 if ok else 503)


def _readiness(request: Request) -> Readiness:
    state = request.app.state
    readiness: Readiness | None = getattr(state, "readiness", None)
    if readiness is None:  # one per app: it holds the probes in flight
        readiness = Readiness(
            state.db,
            state.artifact_backend if state.settings.serve_artifacts else None,
            lambda: state.sync,
            timeout=state.settings.ready_timeout_seconds,
        )
        state.readiness = readiness
    return readiness
