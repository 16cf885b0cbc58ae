"""HTTP endpoints of MLflow's artifact proxy (`/api/2.0/mlflow-artifacts/...`), the tracking
API's run-artifact listing (`/mlflow/artifacts/list`), the UI's `/get-artifact` download and
`/api/3.0/mlflow/server-info` (which tells MLflow 3 clients whether to upload in parts).

Artifact paths in URLs are read from the raw (still percent-encoded) request path, so an
encoded slash or traversal (`%2f`, `%2e%2e`) is seen and refused rather than decoded away.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from typing import Annotated, NoReturn

from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response, StreamingResponse
from starlette.requests import ClientDisconnect

from tether.api.access import (
    EDIT,
    MANAGE,
    PUBLIC,
    READ,
    artifact_path,
    message_field,
    path_param,
    run,
)
from tether.api.responses import Empty, JsonResponse
from tether.api.routing import MLFLOW3_PREFIXES, MLFLOW_PREFIXES, Router
from tether.artifacts import schemas
from tether.artifacts.http import Artifacts, streamed
from tether.artifacts.serialize import file_info
from tether.artifacts.service import UNSUPPORTED_PRESIGNED_DOWNLOAD
from tether.config import Settings
from tether.db import workspace_scope
from tether.db.models.workspaces import DEFAULT_WORKSPACE
from tether.errors import MlflowError, invalid_parameter
from tether.storage.base import UploadedPart
from tether.storage.paths import (
    UnsafePathError,
    join,
    safe_directory_path,
    safe_relative_path,
)

log = logging.getLogger("tether.artifacts")

PROXY_PREFIXES = ("/api/2.0/mlflow-artifacts", "/ajax-api/2.0/mlflow-artifacts")
_SPLIT = re.compile(r"[\\/]")


def _require_serving(request: Request) -> None:
    """`--no-serve-artifacts` disables the proxy endpoints with a 503, as in MLflow."""
    settings: Settings = request.app.state.settings
    if not settings.serve_artifacts:
        raise MlflowError(
            f"Endpoint: {request.url.path} disabled due to the server running with "
            "`--no-serve-artifacts`. To enable artifacts server functionality, run "
            "`tether serve` with `--serve-artifacts`",
            "TEMPORARILY_UNAVAILABLE",
        )


def _raw_artifact_path(request: Request, artifact_path: str) -> str:
    """The route's `{artifact_path}` as the client sent it: read from the raw (still
    percent-encoded) request path. (`artifact_path`, decoded, is declared for the document.)"""
    route: str = request.scope["route"].path
    anchor = route[: route.index("{")]
    raw_bytes: bytes = request.scope.get("raw_path") or request.url.path.encode()
    try:
        raw = raw_bytes.decode("utf-8")
    except UnicodeDecodeError:
        raise UnsafePathError(repr(raw_bytes), "request path is not UTF-8") from None
    start = raw.find(anchor)
    if start < 0:
        raise UnsafePathError(raw, "percent-encoded route")
    return raw[start + len(anchor) :]


RawArtifactPath = Annotated[str, Depends(_raw_artifact_path)]


def in_workspace(path: str) -> str:
    """A proxied path inside the request's workspace (MLflow's
    `_get_workspace_scoped_repo_path_if_enabled`): with workspaces on, every path lives under
    `workspaces/<name>/` (added when missing; another workspace's is refused), except that
    `default` keeps serving the legacy paths without the prefix."""
    workspace = workspace_scope.active()
    if workspace is None:
        return path
    base = f"workspaces/{workspace}"
    if not path:
        return base if workspace != DEFAULT_WORKSPACE else path
    if workspace == DEFAULT_WORKSPACE and not path.startswith("workspaces/"):
        return path
    first, _, rest = path.partition("/")
    if first == "workspaces":
        named = rest.partition("/")[0]
        if not named:
            raise invalid_parameter(
                "Artifact paths prefixed with 'workspaces/' must include a workspace name."
            )
        if named != workspace:
            raise invalid_parameter(
                f"Artifact path targets workspace '{named}' but the workspace specified in "
                f"the request is '{workspace}'."
            )
        return path
    return f"{base}/{path}"


def _artifact_path(raw: RawArtifactPath) -> str:
    """The checked artifact path of the route (refused before the request body is read, as
    MLflow's handlers check it first), inside the request's workspace."""
    return in_workspace(safe_relative_path(raw))


ArtifactPath = Annotated[str, Depends(_artifact_path)]


# Proxy: /api/2.0/mlflow-artifacts/... ------------------------------------------------------

# A proxied path starts with its experiment's id (`<experiment id>/<run id>/artifacts/...`):
# that experiment's permission decides (MLflow's auth app). Deleting needs MANAGE, as there.
PROXY_PATH = artifact_path(path_param("artifact_path"), "path artifact_path")
LISTED_PATH = artifact_path(message_field("path"), "path")

proxy = Router("artifacts", prefixes=PROXY_PREFIXES, dependencies=[Depends(_require_serving)])


@proxy.put(
    "/artifacts/{artifact_path:path}",
    binary_request=True,
    empty_response=True,
    access=EDIT.on(PROXY_PATH),
)
async def upload_artifact(request: Request, service: Artifacts, raw: RawArtifactPath) -> Response:
    if raw == "" or raw.endswith("/"):
        raise invalid_parameter("Artifact path must include a filename (cannot end with '/').")
    relative = safe_relative_path(raw)
    path = in_workspace(relative)
    chunks: AsyncIterator[bytes] = request.stream()
    if _TRACE_ARTIFACT.match(relative):
        settings: Settings = request.app.state.settings
        chunks = _trace_artifact_bounded(request, relative, chunks, settings.trace_max_bytes)
    try:
        await service.upload(path, chunks)
    except ClientDisconnect:
        # Nothing was stored (a previous version stays); nobody is left to answer.
        log.warning("upload of %r aborted: the client disconnected", path)
        return Response(status_code=400)
    return Response(status_code=200)


# A trace's artifact location through the proxy (`<experiment id>/traces/<trace id>/artifacts/`,
# the `mlflow.artifactLocation` tag): where MLflow 2.x clients upload a trace's `traces.json`.
# Bounded by the trace size limit, as span batches received over OTLP are.
_TRACE_ARTIFACT = re.compile(r"^[^/]+/traces/[^/]+/artifacts/")


def _trace_artifact_bounded(
    request: Request, path: str, chunks: AsyncIterator[bytes], limit: int
) -> AsyncIterator[bytes]:
    """`chunks`, refused (400, nothing stored: the store's write is all or nothing) once they
    pass `limit` bytes, or before any is read when Content-Length announces more."""
    message = (
        f"Trace artifact '{path}' holds more than {limit} bytes; this server keeps at most "
        f"{limit} bytes per trace (TETHER_TRACE_MAX_BYTES). Nothing was stored."
    )
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise invalid_parameter(message)
    return _at_most(chunks, limit, message)


@proxy.get("/artifacts/{artifact_path:path}", access=READ.on(PROXY_PATH))
async def download_artifact(service: Artifacts, path: ArtifactPath) -> StreamingResponse:
    return streamed(await service.download(path))


@proxy.delete("/artifacts/{artifact_path:path}", access=MANAGE.on(PROXY_PATH))
async def delete_artifact(service: Artifacts, path: ArtifactPath) -> Empty:
    await service.delete(path)
    return {}


@proxy.get("/artifacts", access=READ.on(LISTED_PATH))
async def list_artifacts(
    body: schemas.ListArtifacts, service: Artifacts
) -> schemas.ListProxyArtifactsResponse:
    entries = await service.list_dir(in_workspace(safe_directory_path(body.path)))
    return {"files": [file_info(e, e.path) for e in entries]} if entries else {}


def _basename(client_file: str) -> str:
    """MLflow names a multipart artifact after the basename of the client's local file."""
    return safe_relative_path(_SPLIT.split(client_file)[-1])


@proxy.post("/mpu/create/{artifact_path:path}", access=EDIT.on(PROXY_PATH))
async def create_multipart_upload(
    directory: ArtifactPath, body: schemas.CreateMultipartUpload, service: Artifacts
) -> schemas.CreateMultipartUploadResponse:
    target = join(directory, _basename(body.path))
    credentials, upload_id = await service.create_multipart_upload(target, body.num_parts)
    response: schemas.CreateMultipartUploadResponse = {
        "credentials": [
            {"url": c.url, "part_number": c.part_number, "headers": c.headers} for c in credentials
        ]
    }
    if upload_id is not None:
        response["upload_id"] = upload_id
    return response


@proxy.post("/mpu/complete/{artifact_path:path}", access=EDIT.on(PROXY_PATH))
async def complete_multipart_upload(
    directory: ArtifactPath, body: schemas.CompleteMultipartUpload, service: Artifacts
) -> Empty:
    target = join(directory, _basename(body.path))
    parts = [UploadedPart(p.part_number, p.etag, p.url) for p in body.parts]
    await service.complete_multipart_upload(target, body.upload_id, parts)
    return {}


@proxy.post("/mpu/abort/{artifact_path:path}", access=EDIT.on(PROXY_PATH))
async def abort_multipart_upload(
    directory: ArtifactPath, body: schemas.AbortMultipartUpload, service: Artifacts
) -> Empty:
    target = join(directory, _basename(body.path))
    await service.abort_multipart_upload(target, body.upload_id)
    return {}


@proxy.get("/presigned/{artifact_path:path}", access=READ.on(PROXY_PATH))
async def presigned_download(path: ArtifactPath) -> NoReturn:
    # No backend hands out download URLs (MLflow's Azure repository does not either): the
    # client falls back to downloading through the proxy.
    raise MlflowError(UNSUPPORTED_PRESIGNED_DOWNLOAD, "NOT_IMPLEMENTED")


# Tracking API: run artifacts ---------------------------------------------------------------

tracking = Router("artifacts", prefixes=MLFLOW_PREFIXES)


@tracking.get("/artifacts/list", access=READ.on(run()))
async def list_run_artifacts(
    body: schemas.ListRunArtifacts, service: Artifacts
) -> schemas.ListRunArtifactsResponse:
    return await service.list_run_artifacts(body.run_id, safe_directory_path(body.path))


# The UI's routes ---------------------------------------------------------------------------

ui = Router("artifacts")


@ui.get("/get-artifact", access=READ.on(run()))
async def get_artifact(body: schemas.GetArtifact, service: Artifacts) -> StreamingResponse:
    return streamed(await service.download_run_artifact(body.run_id, safe_relative_path(body.path)))


# MLflow's limit for the UI's uploads (its handler reads them whole; Tether streams them).
UPLOAD_ARTIFACT_MAX_BYTES = 10 * 1024 * 1024
_TOO_LARGE = "Artifact size is too large. Max size is 10MB."


@ui.post(
    "/upload-artifact",
    prefixes=("/ajax-api/2.0/mlflow",),  # MLflow serves it under ajax-api only; exempt
    documented=False,  # from the JSON body limit (tether.api.limits)
    access=EDIT.on(run("run_uuid")),
)
async def upload_run_artifact(
    body: schemas.UploadArtifact, request: Request, service: Artifacts
) -> Response:
    """The UI's upload of one small file into a run's artifacts: `?run_uuid=&path=`, the
    bytes as the body. Checked in MLflow's order with its wording (run id, path, size, some
    data, the run), then streamed into the store, never held whole: at most 10 MB, counted
    as it arrives when no Content-Length announces it (a larger body stores nothing)."""
    run_id = body.run_uuid
    if not run_id:
        raise invalid_parameter("Request must specify run_uuid.")
    if not body.path:
        raise invalid_parameter("Request must specify path.")
    path = safe_relative_path(body.path)
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > UPLOAD_ARTIFACT_MAX_BYTES:
        raise invalid_parameter(_TOO_LARGE)
    try:
        chunks = await _nonempty(_at_most(request.stream(), UPLOAD_ARTIFACT_MAX_BYTES))
        if chunks is None:
            raise invalid_parameter("Request must specify data.")
        await service.upload_run_artifact(run_id, path, chunks)
    except ClientDisconnect:
        log.warning("upload of %r to run %s aborted: the client disconnected", path, run_id)
        return Response(status_code=400)
    return Response(status_code=200, media_type="application/json")  # empty, as MLflow


async def _at_most(
    chunks: AsyncIterator[bytes], limit: int, message: str = _TOO_LARGE
) -> AsyncIterator[bytes]:
    total = 0
    async for chunk in chunks:
        total += len(chunk)
        if total > limit:
            raise invalid_parameter(message)
        yield chunk


async def _nonempty(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes] | None:
    """The stream, or None when it holds no byte (read up to its first non-empty chunk)."""
    async for chunk in chunks:
        if chunk:
            return _chained(chunk, chunks)
    return None


async def _chained(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    yield first
    async for chunk in rest:
        yield chunk


@ui.get("/server-info", prefixes=MLFLOW3_PREFIXES, access=PUBLIC)  # as in MLflow
async def server_info(request: Request, service: Artifacts) -> schemas.ServerInfo:
    settings: Settings = request.app.state.settings
    return {
        "store_type": "SqlStore",
        "workspaces_enabled": settings.enable_workspaces,
        "trace_archival_enabled": False,
        "multipart_uploads_enabled": settings.serve_artifacts and service.supports_multipart,
        "multipart_downloads_enabled": False,
        "presigned_upload_run_id_supported": False,
        "presigned_upload_model_id_supported": False,
        "features_enabled": {"gateway": False},
    }


# Wiring ----------------------------------------------------------------------------------


def install(app: FastAPI) -> None:
    """Answer a refused artifact path with a 400, logged with the client's address."""

    @app.exception_handler(UnsafePathError)
    async def _unsafe_path(request: Request, exc: UnsafePathError) -> JsonResponse:
        client = f"{request.client.host}:{request.client.port}" if request.client else "unknown"
        log.warning(
            "refused artifact path %r from %s (%s): %s",
            exc.path,
            client,
            request.method,
            exc.reason,
        )
        return JsonResponse(exc.to_body(), status_code=exc.http_status)
