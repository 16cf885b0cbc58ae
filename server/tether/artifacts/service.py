"""Artifact operations over the configured backend, and their sync-outbox records.

Paths handed to this service are store-relative and already checked with
`tether.storage.paths.safe_relative_path` (the HTTP layer does that). Each successful
write or delete appends one outbox row in its own transaction, after the bytes are durable:
("run", run_id) for `<exp>/<run_id>/artifacts/...`, ("logged_model", model_id) for
`<exp>/models/<model_id>/artifacts/...`, else ("artifact", path); op `artifact_put` or
`artifact_delete`, payload {"path": <store path>, "size": <bytes, None for deletes>}.

For other routes that serve artifacts (the registry's `/model-versions/get-artifact`):

    store_path = services.artifacts.resolve(version.storage_location, safe_relative_path(path))
    return streamed(await services.artifacts.download(store_path))  # tether.artifacts.http
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from tether.artifacts.schemas import ListRunArtifactsResponse
from tether.artifacts.serialize import file_info
from tether.db import outbox, workspace_scope
from tether.db.engine import Database
from tether.db.models import Run
from tether.db.outbox.records import ArtifactDelete, ArtifactPut, ArtifactRecord, EntityType
from tether.errors import MlflowError, invalid_parameter, not_found
from tether.storage import locations, paths
from tether.storage.base import (
    ArtifactBackend,
    FileInfo,
    MultipartBackend,
    UploadCredential,
    UploadedPart,
)
from tether.storage.mime import content_disposition, guess_mime_type
from tether.threads import blocking

UNSUPPORTED_MULTIPART = "Multipart upload is not supported for the current artifact repository"
UNSUPPORTED_PRESIGNED_DOWNLOAD = (
    "Multipart download is not supported for the current artifact repository"
)


@dataclass(frozen=True)
class Download:
    """A file to send: its chunk stream and MLflow's download headers (the HTTP layer
    streams it, `tether.artifacts.http.streamed`)."""

    chunks: AsyncIterator[bytes]
    headers: dict[str, str]


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
        """The store path of `relative` inside the artifact location `uri`
        (`tether.storage.locations.resolve`)."""
        return locations.resolve(self.backend, uri, relative)

    async def run_artifact_uri(self, run_id: str) -> str:
        def load() -> str | None:
            with self.db.read() as session:
                run = session.get(Run, run_id)
                if run is None or not workspace_scope.holds_experiment(session, run.experiment_id):
                    raise not_found(f"Run with id={run_id} not found")
                return run.artifact_uri

        return await blocking(load) or ""

    # Proxy operations --------------------------------------------------------------------

    async def upload(self, path: str, chunks: AsyncIterator[bytes]) -> int:
        if not path:
            raise invalid_parameter("Artifact path must include a filename (cannot end with '/').")
        size = await self.backend.write(path, chunks)
        await self._append(_put(path, size))
        return size

    async def download(self, path: str, *, filename: str | None = None) -> Download:
        """The file at store path `path`, to be sent as an attachment with MLflow's headers.

        Raises (before anything is sent) RESOURCE_DOES_NOT_EXIST for a missing file and
        INVALID_PARAMETER_VALUE for a directory. `filename` defaults to the path's last part.
        """
        size, chunks = await self.backend.open_read(path)
        name = filename or path.rsplit("/", 1)[-1]
        mime_type = guess_mime_type(name)
        return Download(
            chunks,
            {
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
            await self._append(_deleted(path))

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
        await self._append(_put(path, size))

    async def abort_multipart_upload(self, path: str, upload_id: str | None) -> None:
        await self._multipart().abort_multipart_upload(path, upload_id)

    # Run artifacts (the tracking API's view) ---------------------------------------------

    async def list_run_artifacts(self, run_id: str, path: str) -> ListRunArtifactsResponse:
        """`/mlflow/artifacts/list`: entries under `path` of the run, run-relative paths."""
        return await self.list_under(await self.run_artifact_uri(run_id), path)

    async def list_under(self, root_uri: str, path: str) -> ListRunArtifactsResponse:
        """The entries under `path` of the artifact location `root_uri`, paths relative to it."""
        entries = await self.backend.list(self.resolve(root_uri, path))
        body: ListRunArtifactsResponse = {"root_uri": root_uri}
        if entries:
            body["files"] = [file_info(e, paths.join(path, e.path)) for e in entries]
        return body

    async def upload_run_artifact(
        self, run_id: str, path: str, chunks: AsyncIterator[bytes]
    ) -> int:
        """The UI's upload-artifact: the file `path` (already safe) of the run, streamed into
        its artifact location (an `artifact_put` outbox record like any proxy upload)."""
        root_uri = await self.run_artifact_uri(run_id)
        return await self.upload(self.resolve(root_uri, path), chunks)

    async def download_run_artifact(self, run_id: str, path: str) -> Download:
        """`/get-artifact`: one file of the run."""
        root_uri = await self.run_artifact_uri(run_id)
        return await self.download(self.resolve(root_uri, path))

    # Outbox ------------------------------------------------------------------------------

    async def _append(self, record: ArtifactRecord) -> None:
        def append() -> None:
            with self.db.write() as session:
                outbox.append(session, record)

        await blocking(append)


def _owner(path: str) -> tuple[EntityType, str]:
    """The outbox entity of a store path: its run, its logged model, or the path itself."""
    entity_type, entity_id = paths.sync_entity(path)
    return EntityType(entity_type), entity_id


def _put(path: str, size: int) -> ArtifactPut:
    entity_type, entity_id = _owner(path)
    return ArtifactPut(entity_id, entity_type=entity_type, path=path, size=size)


def _deleted(path: str) -> ArtifactDelete:
    entity_type, entity_id = _owner(path)
    return ArtifactDelete(entity_id, entity_type=entity_type, path=path)
