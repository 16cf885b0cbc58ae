"""Artifact operations over the configured backend, and their sync-outbox records.

Paths handed to this service are store-relative and already checked with
`tether.artifacts.paths.safe_relative_path` (the HTTP layer does that). Each successful
write or delete appends one outbox row in its own transaction, after the bytes are durable:
("run", run_id) for `<exp>/<run_id>/artifacts/...`, ("logged_model", model_id) for
`<exp>/models/<model_id>/artifacts/...`, else ("artifact", path); op `artifact_put` or
`artifact_delete`, payload {"path": <store path>, "size": <bytes, None for deletes>}.

For other routes that serve artifacts (the registry's `/model-versions/get-artifact`):

    store_path = services.artifacts.resolve(version.storage_location, safe_relative_path(path))
    return await services.artifacts.stream_download(store_path)
"""

from __future__ import annotations

import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

from fastapi.responses import StreamingResponse

from tether.api.threads import blocking
from tether.artifacts import paths
from tether.artifacts.backends.base import (
    ArtifactBackend,
    FileInfo,
    MultipartBackend,
    UploadCredential,
    UploadedPart,
)
from tether.artifacts.mime import content_disposition, guess_mime_type
from tether.db.engine import Database
from tether.db.models import Run
from tether.errors import MlflowError, invalid_parameter, not_found
from tether.sync import outbox

UNSUPPORTED_MULTIPART = "Multipart upload is not supported for the current artifact repository"
UNSUPPORTED_PRESIGNED_DOWNLOAD = (
    "Multipart download is not supported for the current artifact repository"
)
_HTTP_ANCHOR = "/api/2.0/mlflow-artifacts/artifacts"


def file_json(info: FileInfo, path: str) -> dict[str, Any]:
    """A listing entry as MLflow's FileInfo proto renders it (no file_size for 0 or dirs)."""
    entry: dict[str, Any] = {"path": path, "is_dir": info.is_dir}
    if info.file_size:
        entry["file_size"] = info.file_size
    return entry


class ArtifactService:
    def __init__(self, db: Database, backend: ArtifactBackend) -> None:
        self.db = db
        self.backend = backend

    @property
    def supports_multipart(self) -> bool:
        return isinstance(self.backend, MultipartBackend)

    async def close(self) -> None:
        await self.backend.close()

    # Locations ---------------------------------------------------------------------------

    def resolve(self, uri: str, relative: str = "") -> str:
        """The store path of `relative` (already safe) inside the artifact location `uri`.

        `uri` is a run's `artifact_uri`, a logged model's or model version's location:
        `mlflow-artifacts:/...`, an `http(s)://.../api/2.0/mlflow-artifacts/artifacts/...`
        URL, or a direct URI into the configured store (local path, file://, wasbs://).
        Anything else raises NOT_IMPLEMENTED: this server cannot reach it.
        """
        parsed = urllib.parse.urlparse(uri)
        root: str | None
        if parsed.scheme == "mlflow-artifacts":
            root = paths.uri_to_path(uri)
        elif parsed.scheme in ("http", "https") and _HTTP_ANCHOR in parsed.path:
            root = paths.safe_directory_path(parsed.path.split(_HTTP_ANCHOR, 1)[1].lstrip("/"))
        else:
            root = self.backend.locate(uri)
        if root is None:
            raise MlflowError(
                f"Artifacts at '{uri}' are not stored in this server's artifact store",
                "NOT_IMPLEMENTED",
            )
        return paths.join(root, relative)

    async def run_artifact_uri(self, run_id: str) -> str:
        def load() -> str | None:
            with self.db.read() as session:
                run = session.get(Run, run_id)
                if run is None:
                    raise not_found(f"Run with id={run_id} not found")
                return run.artifact_uri

        return await blocking(load) or ""

    # Proxy operations --------------------------------------------------------------------

    async def upload(self, path: str, chunks: AsyncIterator[bytes]) -> int:
        if not path:
            raise invalid_parameter("Artifact path must include a filename (cannot end with '/').")
        size = await self.backend.write(path, chunks)
        await self._record(path, "artifact_put", size)
        return size

    async def stream_download(self, path: str, *, filename: str | None = None) -> StreamingResponse:
        """Stream the file at store path `path` as an attachment, with MLflow's headers.

        Raises (before anything is sent) RESOURCE_DOES_NOT_EXIST for a missing file and
        INVALID_PARAMETER_VALUE for a directory. `filename` defaults to the path's last part.
        """
        size, chunks = await self.backend.open_read(path)
        name = filename or path.rsplit("/", 1)[-1]
        mime_type = guess_mime_type(name)
        return StreamingResponse(
            chunks,
            headers={
                # Set as a header, not media_type: Starlette would append "; charset=utf-8".
                "Content-Type": mime_type,
                "Content-Length": str(size),
                "Content-Disposition": content_disposition(name),
                "X-Content-Type-Options": "nosniff",
            },
        )

    async def list_dir(self, path: str) -> list[FileInfo]:
        return await self.backend.list(path)

    async def delete(self, path: str) -> None:
        if not path:
            raise invalid_parameter("Refusing to delete the whole artifact store")
        if await self.backend.delete(path):
            await self._record(path, "artifact_delete", None)

    # Multipart uploads -------------------------------------------------------------------

    def _multipart(self) -> MultipartBackend:
        if not isinstance(self.backend, MultipartBackend):
            raise MlflowError(UNSUPPORTED_MULTIPART, "NOT_IMPLEMENTED")
        return self.backend

    async def create_multipart_upload(
        self, path: str, num_parts: int
    ) -> tuple[list[UploadCredential], str | None]:
        return await self._multipart().create_multipart_upload(path, num_parts)

    async def complete_multipart_upload(
        self, path: str, upload_id: str | None, parts: list[UploadedPart]
    ) -> None:
        size = await self._multipart().complete_multipart_upload(path, upload_id, parts)
        await self._record(path, "artifact_put", size)

    async def abort_multipart_upload(self, path: str, upload_id: str | None) -> None:
        await self._multipart().abort_multipart_upload(path, upload_id)

    # Run artifacts (the tracking API's view) ---------------------------------------------

    async def list_run_artifacts(self, run_id: str, path: str) -> dict[str, Any]:
        """`/mlflow/artifacts/list`: entries under `path` of the run, run-relative paths."""
        root_uri = await self.run_artifact_uri(run_id)
        entries = await self.backend.list(self.resolve(root_uri, path))
        body: dict[str, Any] = {"root_uri": root_uri}
        if entries:
            body["files"] = [file_json(e, paths.join(path, e.path)) for e in entries]
        return body

    async def download_run_artifact(self, run_id: str, path: str) -> StreamingResponse:
        """`/get-artifact`: one file of the run."""
        root_uri = await self.run_artifact_uri(run_id)
        return await self.stream_download(self.resolve(root_uri, path))

    # Outbox ------------------------------------------------------------------------------

    async def _record(self, path: str, op: str, size: int | None) -> None:
        entity_type, entity_id = paths.sync_entity(path)

        def append() -> None:
            with self.db.write() as session:
                outbox.append(session, entity_type, entity_id, op, {"path": path, "size": size})

        await blocking(append)
