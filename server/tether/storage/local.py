"""Artifacts on the local filesystem, under one root directory.

Every path is resolved (symlinks followed) and must stay inside the root, so a symlink
planted in the tree cannot expose or overwrite anything outside it. Writes go to a temporary
file in the staging directory `<root>/.tether-upload-staging`, are fsynced, then renamed over
the target (one file system, so the rename is atomic): a reader never sees a half-written
file and a failed upload leaves the previous version in place.

Names starting with `.tether-upload-` (the staging directory, and the temporary files older
versions left beside their targets) are Tether's: refused in client paths, never listed. So a
client cannot write into the staging directory, nor store a file that listings would hide.

Only regular files and directories are served or listed: a FIFO, socket or device planted in
the tree is refused (a FIFO is opened non-blocking and checked before any read: a blocking
open would wait for a writer forever, holding a worker thread) and skipped by listings.

At start, temporary files not modified for `STALE_UPLOAD_SECONDS` are removed from the staging
directory: a crash leaves them behind. Several workers or replicas may share the root, so a
younger file may be another process's upload in progress and stays (an upload writes every
chunk as it arrives: its file's modification time keeps moving).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import errno
import logging
import os
import shutil
import stat
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

from tether.errors import MlflowError, invalid_parameter, not_found
from tether.storage.base import FileInfo
from tether.storage.paths import UnsafePathError
from tether.storage.streams import gather
from tether.threads import blocking

log = logging.getLogger("tether.storage")

TEMP_PREFIX = ".tether-upload-"  # reserved: see the module docstring
STAGING = f"{TEMP_PREFIX}staging"
STALE_UPLOAD_SECONDS = 3600
_NAME_MAX, _PATH_MAX = 255, 4096  # Linux file systems' limits, in bytes


def directory_error(path: str) -> Exception:
    return invalid_parameter(f"Artifact path refers to a directory, not a file: '{path}'")


class LocalBackend:
    def __init__(self, root: Path | str, *, chunk_size: int = 1024 * 1024) -> None:
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        self.root = root.resolve()
        self.chunk_size = chunk_size
        self.staging = self.root / STAGING
        self._prepare_staging()

    def __repr__(self) -> str:
        return f"LocalBackend({str(self.root)!r})"

    # Paths -------------------------------------------------------------------------------

    def _inside(self, resolved: Path) -> bool:
        return resolved == self.root or self.root in resolved.parents

    def _check_path(self, path: str) -> None:
        """A path the file system would refuse (ENAMETOOLONG) is the client's error, and so
        is a reserved name."""
        names = path.split("/")
        if any(name.startswith(TEMP_PREFIX) for name in names):
            raise invalid_parameter(
                f"Artifact path '{path}' uses a reserved name: names starting with "
                f"'{TEMP_PREFIX}' are Tether's own"
            )
        if len(os.fsencode(self.root / path)) >= _PATH_MAX or any(
            len(os.fsencode(name)) > _NAME_MAX for name in names
        ):
            raise invalid_parameter("Artifact path is too long for the artifact store")

    def _resolve(self, path: str) -> Path:
        """The real location of `path`, which must be inside the root."""
        self._check_path(path)
        try:
            resolved = (self.root / path).resolve() if path else self.root
        except RuntimeError:  # a symlink loop planted in the tree
            raise invalid_parameter(f"Artifact path '{path}' cannot be resolved") from None
        if not self._inside(resolved):
            raise UnsafePathError(path, "resolves outside the artifact root")
        return resolved

    # Staging -----------------------------------------------------------------------------

    def _prepare_staging(self) -> None:
        """Create the staging directory (a real directory, never a link) and remove what
        crashed uploads left there. A store this process cannot write (`tether sync run`
        reading a read-only copy) is still readable: only its writes will fail."""
        try:
            with contextlib.suppress(FileExistsError):
                self.staging.mkdir()
            if not stat.S_ISDIR(os.lstat(self.staging).st_mode):
                raise RuntimeError(
                    f"{self.staging} must be a directory (Tether stages uploads there): "
                    "move it away"
                )
            removed = self.remove_stale_uploads(STALE_UPLOAD_SECONDS)
        except OSError as exc:
            log.warning("cannot prepare the upload staging directory %s: %s", self.staging, exc)
            return
        if removed:
            log.info("removed %d stale upload file(s) from %s", removed, self.staging)

    def remove_stale_uploads(self, older_than: float) -> int:
        """Remove staged files not modified for `older_than` seconds; how many were removed.
        Younger ones may be uploads in progress in other processes sharing the root."""
        cutoff = time.time() - older_than
        removed = 0
        with os.scandir(self.staging) as scan:
            for entry in scan:
                try:
                    info = entry.stat(follow_symlinks=False)
                    if stat.S_ISDIR(info.st_mode) or info.st_mtime >= cutoff:
                        continue
                    os.unlink(entry.path)
                    removed += 1
                except FileNotFoundError:  # another process removed it first
                    continue
        return removed

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
        temp = self.staging / uuid.uuid4().hex
        fd = self._create_staged(temp, 0o644)
        return target, temp, os.fdopen(fd, "wb", buffering=0)

    def _create_staged(self, temp: Path, mode: int) -> int:
        """A new file in the staging directory, which is created again if it was removed
        (with the whole store, say) since this process started."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        try:
            return os.open(temp, flags, mode)
        except FileNotFoundError:
            with contextlib.suppress(FileExistsError):
                self.staging.mkdir()
            return os.open(temp, flags, mode)

    @staticmethod
    def _commit(handle: BinaryIO, temp: Path, target: Path) -> None:
        handle.flush()
        os.fsync(handle.fileno())
        handle.close()
        try:
            os.replace(temp, target)
        except FileNotFoundError:
            # The target's directory was deleted meanwhile, or the upload stalled so long
            # that another process's start removed its staged file.
            raise MlflowError(
                "The upload could not be completed: its directory or staged file was removed "
                "meanwhile. Retry the upload.",
                "ABORTED",
            ) from None
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            raise MlflowError(
                f"Cannot store '{target}': it is on another file system than the artifact "
                "root's staging directory (the artifact root must be one file system)",
                "INTERNAL_ERROR",
            ) from None
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
        self._check_path(path)
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
            # Non-blocking: opening a FIFO to read would otherwise wait for a writer forever.
            fd = os.open(target, os.O_RDONLY | os.O_NONBLOCK)
        except (FileNotFoundError, NotADirectoryError):
            raise not_found(f"No such artifact: '{path}'") from None
        except OSError:  # a socket (ENXIO), a device that refuses: not an artifact
            raise _not_regular(path) from None
        try:
            info = os.fstat(fd)
            if stat.S_ISDIR(info.st_mode):
                raise directory_error(path)
            if not stat.S_ISREG(info.st_mode):
                raise _not_regular(path)
            os.set_blocking(fd, True)  # a regular file: reads never wait anyway
        except BaseException:
            os.close(fd)
            raise
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
                try:
                    if entry.is_symlink() and not self._inside(Path(entry.path).resolve()):
                        continue
                    info = entry.stat()  # through a link: what it leads to
                except (OSError, RuntimeError):  # vanished meanwhile, dangling link, loop
                    continue
                if stat.S_ISDIR(info.st_mode):
                    entries.append(FileInfo(entry.name, True, None))
                elif stat.S_ISREG(info.st_mode):
                    entries.append(FileInfo(entry.name, False, info.st_size))
                # Anything else (FIFO, socket, device) is not an artifact.
        return sorted(entries, key=lambda e: e.path)

    async def close(self) -> None:
        return None

    async def check(self) -> None:
        await blocking(self._check)

    def _check(self) -> None:
        """Create and remove a file in the staging directory."""
        probe = self.staging / f"ready-{uuid.uuid4().hex}"
        fd = self._create_staged(probe, 0o600)
        try:
            os.write(fd, b"ok")
        finally:
            os.close(fd)
            probe.unlink()


# Below IOV_MAX (1024 on Linux): writev refuses longer vectors.
_MAX_PARTS = 512


def _not_regular(path: str) -> Exception:
    return invalid_parameter(f"Artifact path refers to a special file, not a file: '{path}'")


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
