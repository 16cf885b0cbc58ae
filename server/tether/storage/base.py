"""The storage interface behind the artifact proxy.

Paths are store-relative POSIX paths that already went through
`tether.storage.paths.safe_relative_path` ("" is the root). Every method streams: no
backend holds a whole file in memory.
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class FileInfo:
    """One listing entry. `path` is the entry's name relative to the listed directory;
    `file_size` is None for directories."""

    path: str
    is_dir: bool
    file_size: int | None


@dataclass(frozen=True)
class UploadCredential:
    """Where the client PUTs one part of a multipart upload (MLflow's MultipartUploadCredential)."""

    url: str
    part_number: int
    headers: dict[str, str]


@dataclass(frozen=True)
class UploadedPart:
    part_number: int
    etag: str
    url: str


class ArtifactBackend(Protocol):
    """What every artifact store implements."""

    async def write(self, path: str, chunks: AsyncIterator[bytes]) -> int:
        """Store `chunks` as the file `path` (replacing it), durably; return bytes written.
        A failed write leaves any previous file at `path` unchanged."""
        ...

    async def open_read(self, path: str) -> tuple[int, AsyncIterator[bytes]]:
        """(size, chunk stream) of the file `path`. Raises `tether.errors.not_found` when
        there is no such file, INVALID_PARAMETER_VALUE when `path` is a directory."""
        ...

    async def list(self, path: str) -> builtins.list[FileInfo]:
        """The entries directly under directory `path`, sorted by name; [] when `path` is a
        file or does not exist."""
        ...

    async def delete(self, path: str) -> bool:
        """Delete the file or directory tree `path`; False when nothing was there."""
        ...

    async def close(self) -> None:
        """Release connections (called at shutdown)."""
        ...

    async def check(self) -> None:
        """Raise when the store cannot take writes now (for `GET /ready`); cheap, no trace."""
        ...

    def locate(self, uri: str) -> str | None:
        """The store-relative path of a direct URI into this store (a local path or file://
        URI under the local root, a wasbs:// URI under the container prefix), else None."""
        ...


@runtime_checkable
class MultipartBackend(Protocol):
    """Stores the client can upload parts to directly (presigned URLs), as MLflow's
    MultipartUploadMixin repositories do."""

    async def create_multipart_upload(
        self, path: str, num_parts: int
    ) -> tuple[list[UploadCredential], str | None]: ...

    async def complete_multipart_upload(
        self, path: str, upload_id: str | None, parts: list[UploadedPart]
    ) -> int: ...

    async def abort_multipart_upload(self, path: str, upload_id: str | None) -> None: ...
