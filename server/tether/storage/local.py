"""Artifacts on the local filesystem, under one root directory.

Every path is resolved (symlinks followed) and must stay inside the root, so a symlink
planted in the tree cannot expose or overwrite anything outside it. Writes go to a hidden
temporary file beside the target, are fsynced, then renamed over the target: a reader never
sees a half-written file and a failed upload leaves the previous version in place.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import os
import shutil
import stat
import urllib.parse
import urllib.request
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

from tether.errors import invalid_parameter, not_found
from tether.storage.base import FileInfo
from tether.storage.paths import UnsafePathError
from tether.storage.streams import gather
from tether.threads import blocking

TEMP_PREFIX = ".tether-upload-"
_NAME_MAX, _PATH_MAX = 255, 4096  # Linux file systems' limits, in bytes


def directory_error(path: str) -> Exception:
    return invalid_parameter(f"Artifact path refers to a directory, not a file: '{path}'")


class LocalBackend:
    def __init__(self, root: Path | str, *, chunk_size: int = 1024 * 1024) -> None:
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        self.root = root.resolve()
        self.chunk_size = chunk_size

    def __repr__(self) -> str:
        return f"LocalBackend({str(self.root)!r})"

    # Paths -------------------------------------------------------------------------------

    def _inside(self, resolved: Path) -> bool:
        return resolved == self.root or self.root in resolved.parents

    def _check_length(self, path: str) -> None:
        """A path the file system would refuse (ENAMETOOLONG) is the client's error."""
        if len(os.fsencode(self.root / path)) >= _PATH_MAX or any(
            len(os.fsencode(name)) > _NAME_MAX for name in path.split("/")
        ):
            raise invalid_parameter("Artifact path is too long for the artifact store")

    def _resolve(self, path: str) -> Path:
        """The real location of `path`, which must be inside the root."""
        self._check_length(path)
        resolved = (self.root / path).resolve() if path else self.root
        if not self._inside(resolved):
            raise UnsafePathError(path, "resolves outside the artifact root")
        return resolved

    def locate(self, uri: str) -> str | None:
        parsed = urllib.parse.urlparse(uri)
        if parsed.scheme == "file":
            if parsed.netloc not in ("", "localhost"):
                return None
            local = urllib.request.url2pathname(parsed.path)
        elif parsed.scheme == "" and uri.startswith("/"):
            local = uri
        else:
            return None
        resolved = Path(local).resolve()
        if not self._inside(resolved):
            return None
        return resolved.relative_to(self.root).as_posix() if resolved != self.root else ""

    # Writes ------------------------------------------------------------------------------

    async def write(self, path: str, chunks: AsyncIterator[bytes]) -> int:
        target, temp, handle = await blocking(self._create_temp, path)
        written = 0
        # The received chunks are gathered (not joined: no copy) and written with one writev
        # per `chunk_size` bytes, so a thread hop and a syscall cover many chunks. One write
        # stays in flight while the next batch is received: receiving and writing overlap,
        # and at most two batches are held.
        in_flight: asyncio.Future[None] | None = None
        try:
            async for parts, size in gather(chunks, self.chunk_size, _MAX_PARTS):
                if in_flight is not None:
                    await in_flight
                in_flight = asyncio.ensure_future(blocking(_write_all, handle.fileno(), parts))
                written += size
            if in_flight is not None:
                await in_flight
            await blocking(self._commit, handle, temp, target)
        except BaseException:
            if in_flight is not None:  # never close the file under a running write
                await asyncio.wait([in_flight])
            await blocking(self._discard, handle, temp)
            raise
        return written

    def _create_temp(self, path: str) -> tuple[Path, Path, BinaryIO]:
        target = self._resolve(path)
        parent = target.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise invalid_parameter(
                f"Cannot write artifact '{path}': a parent path is a file"
            ) from None
        if not self._inside(parent.resolve()):  # a symlink swapped in since _resolve
            raise UnsafePathError(path, "parent resolves outside the artifact root")
        if target.is_dir():
            raise directory_error(path)
        temp = parent / f"{TEMP_PREFIX}{uuid.uuid4().hex}"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        fd = os.open(temp, flags, 0o644)
        return target, temp, os.fdopen(fd, "wb", buffering=0)

    @staticmethod
    def _commit(handle: BinaryIO, temp: Path, target: Path) -> None:
        handle.flush()
        os.fsync(handle.fileno())
        handle.close()
        os.replace(temp, target)
        _fsync_dir(target.parent)

    @staticmethod
    def _discard(handle: BinaryIO, temp: Path) -> None:
        handle.close()
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()

    async def delete(self, path: str) -> bool:
        return await blocking(self._delete, path)

    def _delete(self, path: str) -> bool:
        if not path:
            raise invalid_parameter("Refusing to delete the whole artifact store")
        self._check_length(path)
        head, _, name = path.rpartition("/")
        item = self._resolve(head) / name
        if item.is_symlink():  # remove the link itself, never what it points to
            item.unlink()
        elif item.is_dir():
            shutil.rmtree(item)
        elif item.exists():
            item.unlink()
        else:
            return False
        _fsync_dir(item.parent)
        return True

    # Reads -------------------------------------------------------------------------------

    async def open_read(self, path: str) -> tuple[int, AsyncIterator[bytes]]:
        handle, size = await blocking(self._open, path)
        return size, self._chunks(handle)

    def _open(self, path: str) -> tuple[BinaryIO, int]:
        target = self._resolve(path)
        try:
            fd = os.open(target, os.O_RDONLY)
        except (FileNotFoundError, NotADirectoryError):
            raise not_found(f"No such artifact: '{path}'") from None
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            os.close(fd)
            raise directory_error(path)
        return os.fdopen(fd, "rb", buffering=0), info.st_size

    async def _chunks(self, handle: BinaryIO) -> AsyncIterator[bytes]:
        try:
            while chunk := await blocking(handle.read, self.chunk_size):
                yield chunk
        finally:
            handle.close()

    async def list(self, path: str) -> builtins.list[FileInfo]:
        return await blocking(self._list, path)

    def _list(self, path: str) -> builtins.list[FileInfo]:
        directory = self._resolve(path)
        if not directory.is_dir():
            return []
        entries: builtins.list[FileInfo] = []
        with os.scandir(directory) as scan:
            for entry in scan:
                if entry.name.startswith(TEMP_PREFIX):
                    continue
                if entry.is_symlink() and not self._inside(Path(entry.path).resolve()):
                    continue
                try:
                    if entry.is_dir():
                        entries.append(FileInfo(entry.name, True, None))
                    else:
                        entries.append(FileInfo(entry.name, False, entry.stat().st_size))
                except OSError:  # vanished meanwhile, or a dangling link
                    continue
        return sorted(entries, key=lambda e: e.path)

    async def close(self) -> None:
        return None

    async def check(self) -> None:
        await blocking(self._check)

    def _check(self) -> None:
        """Create and remove a hidden file in the root (listings skip the prefix)."""
        probe = self.root / f"{TEMP_PREFIX}ready-{uuid.uuid4().hex}"
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, b"ok")
        finally:
            os.close(fd)
            probe.unlink()


# Below IOV_MAX (1024 on Linux): writev refuses longer vectors.
_MAX_PARTS = 512


def _write_all(fd: int, parts: builtins.list[bytes]) -> None:
    """Write all of `parts` in order; writev may write less than asked, so loop."""
    views = [memoryview(p) for p in parts]
    while views:
        done = os.writev(fd, views)
        while views and done >= len(views[0]):
            done -= len(views[0])
            views.pop(0)
        if done:
            views[0] = views[0][done:]


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
