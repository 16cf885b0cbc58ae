"""HTTP endpoints of MLflow's artifact proxy (`/api/2.0/mlflow-artifacts/...`), the tracking
API's run-artifact listing (`/mlflow/artifacts/list`), the UI's `/get-artifact` download and
`/api/3.0/mlflow/server-info` (which tells MLflow 3 clients whether to upload in parts).

Artifact paths in URLs are read from the raw (still percent-encoded) request path, so an
encoded slash or traversal (`%2f`, `%2e%2e`) is seen and refused rather than decoded away.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import Response, StreamingResponse
from starlette.requests import ClientDisconnect

from tether.api import response_models as resp
from tether.api.request import parse_request
from tether.api.responses import JsonResponse
from tether.api.routing import MlflowRouter, document
from tether.artifacts import schemas
from tether.artifacts.http import Artifacts, streamed
from tether.artifacts.service import UNSUPPORTED_PRESIGNED_DOWNLOAD, file_json
from tether.config import Settings
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


proxy = APIRouter(
    tags=["artifacts"],
    default_response_class=JsonResponse,
    dependencies=[Depends(_require_serving)],
)


def _proxy_route(path: str, methods: list[str]) -> Callable[[Callable[..., Any]], Any]:
    def decorator(func: Callable[..., Any]) -> Any:
        for index, prefix in enumerate(PROXY_PREFIXES):
            proxy.add_api_route(
                prefix + path,
                func,
                methods=methods,
                include_in_schema=index == 0,
                name=func.__name__ if index == 0 else f"{func.__name__}_ajax",
            )
        return func

    return decorator


def raw_path_after(request: Request, anchor: str) -> str:
    """What follows `anchor` in the raw (still percent-encoded) request path."""
    raw_bytes: bytes = request.scope.get("raw_path") or request.url.path.encode()
    try:
        raw = raw_bytes.decode("utf-8")
    except UnicodeDecodeError:
        raise UnsafePathError(repr(raw_bytes), "request path is not UTF-8") from None
    start = raw.find(anchor)
    if start < 0:
        raise UnsafePathError(raw, "percent-encoded route")
    return raw[start + len(anchor) :]


def path_after(request: Request, anchor: str) -> str:
    """The checked artifact path that follows `anchor` in the raw request path."""
    return safe_relative_path(raw_path_after(request, anchor))


# Proxy: /api/2.0/mlflow-artifacts/... ------------------------------------------------------


@_proxy_route("/artifacts/{artifact_path:path}", ["PUT"])
@document(binary_request=True, empty_response=True)
async def upload_artifact(request: Request, service: Artifacts, artifact_path: str) -> Response:
    raw = raw_path_after(request, "/mlflow-artifacts/artifacts/")
    if raw == "" or raw.endswith("/"):
        raise invalid_parameter("Artifact path must include a filename (cannot end with '/').")
    path = safe_relative_path(raw)
    try:
        await service.upload(path, request.stream())
    except ClientDisconnect:
        # Nothing was stored (a previous version stays); nobody is left to answer.
        log.warning("upload of %r aborted: the client disconnected", path)
        return Response(status_code=400)
    return Response(status_code=200)


@_proxy_route("/artifacts/{artifact_path:path}", ["GET"])
@document(binary_response=True)
async def download_artifact(
    request: Request, service: Artifacts, artifact_path: str
) -> StreamingResponse:
    return streamed(await service.download(path_after(request, "/mlflow-artifacts/artifacts/")))


@_proxy_route("/artifacts/{artifact_path:path}", ["DELETE"])
@document(response=resp.Empty)
async def delete_artifact(request: Request, service: Artifacts, artifact_path: str) -> Any:
    await service.delete(path_after(request, "/mlflow-artifacts/artifacts/"))
    return {}


@_proxy_route("/artifacts", ["GET"])
@document(request=schemas.ListArtifacts, response=resp.ListProxyArtifactsResponse)
async def list_artifacts(request: Request, service: Artifacts) -> Any:
    body = await parse_request(request, schemas.ListArtifacts)
    entries = await service.list_dir(safe_directory_path(body.path))
    return {"files": [file_json(e, e.path) for e in entries]} if entries else {}


def _basename(client_file: str) -> str:
    """MLflow names a multipart artifact after the basename of the client's local file."""
    return safe_relative_path(_SPLIT.split(client_file)[-1])


@_proxy_route("/mpu/create/{artifact_path:path}", ["POST"])
@document(request=schemas.CreateMultipartUpload, response=resp.CreateMultipartUploadResponse)
async def create_multipart_upload(request: Request, service: Artifacts, artifact_path: str) -> Any:
    directory = path_after(request, "/mlflow-artifacts/mpu/create/")
    body = await parse_request(request, schemas.CreateMultipartUpload)
    target = join(directory, _basename(body.path))
    credentials, upload_id = await service.create_multipart_upload(target, body.num_parts)
    response: dict[str, Any] = {
        "credentials": [
            {"url": c.url, "part_number": c.part_number, "headers": c.headers} for c in credentials
        ]
    }
    if upload_id is not None:
        response["upload_id"] = upload_id
    return response


@_proxy_route("/mpu/complete/{artifact_path:path}", ["POST"])
@document(request=schemas.CompleteMultipartUpload, response=resp.Empty)
async def complete_multipart_upload(
    request: Request, service: Artifacts, artifact_path: str
) -> Any:
    directory = path_after(request, "/mlflow-artifacts/mpu/complete/")
    body = await parse_request(request, schemas.CompleteMultipartUpload)
    target = join(directory, _basename(body.path))
    parts = [UploadedPart(p.part_number, p.etag, p.url) for p in body.parts]
    await service.complete_multipart_upload(target, body.upload_id, parts)
    return {}


@_proxy_route("/mpu/abort/{artifact_path:path}", ["POST"])
@document(request=schemas.AbortMultipartUpload, response=resp.Empty)
async def abort_multipart_upload(request: Request, service: Artifacts, artifact_path: str) -> Any:
    directory = path_after(request, "/mlflow-artifacts/mpu/abort/")
    body = await parse_request(request, schemas.AbortMultipartUpload)
    target = join(directory, _basename(body.path))
    await service.abort_multipart_upload(target, body.upload_id)
    return {}


@_proxy_route("/presigned/{artifact_path:path}", ["GET"])
async def presigned_download(request: Request, artifact_path: str) -> Any:
    path_after(request, "/mlflow-artifacts/presigned/")
    # No backend hands out download URLs (MLflow's Azure repository does not either): the
    # client falls back to downloading through the proxy.
    raise MlflowError(UNSUPPORTED_PRESIGNED_DOWNLOAD, "NOT_IMPLEMENTED")


# Tracking API: run artifacts ---------------------------------------------------------------

tracking = MlflowRouter("artifacts")


@tracking.route(
    "/artifacts/list",
    ["GET"],
    request=schemas.ListRunArtifacts,
    response=resp.ListRunArtifactsResponse,
)
async def list_run_artifacts(request: Request, service: Artifacts) -> Any:
    body = await parse_request(request, schemas.ListRunArtifacts)
    return await service.list_run_artifacts(body.run_id, safe_directory_path(body.path))


ui = APIRouter(tags=["artifacts"], default_response_class=JsonResponse)


@ui.get("/get-artifact")
@document(request=schemas.GetArtifact, binary_response=True)
async def get_artifact(request: Request, service: Artifacts) -> StreamingResponse:
    body = await parse_request(request, schemas.GetArtifact)
    return streamed(await service.download_run_artifact(body.run_id, safe_relative_path(body.path)))


@ui.get("/api/3.0/mlflow/server-info")
@ui.get("/ajax-api/3.0/mlflow/server-info", include_in_schema=False)
@document(response=resp.ServerInfo)
async def server_info(request: Request, service: Artifacts) -> Any:
    settings: Settings = request.app.state.settings
    return {
        "store_type": "SqlStore",
        "workspaces_enabled": False,
        "trace_archival_enabled": False,
        "multipart_uploads_enabled": settings.serve_artifacts and service.supports_multipart,
        "multipart_downloads_enabled": False,
        "presigned_upload_run_id_supported": False,
        "presigned_upload_model_id_supported": False,
        "features_enabled": {"gateway": False},
    }


# Wiring ----------------------------------------------------------------------------------


def install(app: FastAPI) -> None:
    """Register the artifact routes and the refused-path handler (400, logged with the
    client's address)."""

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

    app.include_router(proxy)
    app.include_router(tracking.router)
    app.include_router(ui)
