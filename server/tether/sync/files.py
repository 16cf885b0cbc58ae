"""Tether's own artifact store as the sync worker reads it: synchronous, streamed.

The backends are asynchronous (they serve the API's event loop); the worker's lanes are plain
threads, several at once. `Files` owns one private event loop running in a thread of its own,
and every lane submits its store calls to it (`run_coroutine_threadsafe`): the backend (its
Azure clients belong to one loop) is only ever used on that loop, and lanes reading at the
same time never drive one loop from two threads (which asyncio refuses: "This event loop is
already running", a read lost and retried). A backend's chunk stream becomes an ordinary
iterator, a chunk at a time: a file is never held whole in memory.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Generator
from typing import Any, TypeVar

from tether.errors import MlflowError
from tether.storage import locations
from tether.storage.base import ArtifactBackend
from tether.sync.azureml.errors import TransientError

T = TypeVar("T")


class Files:
    def __init__(self, backend: ArtifactBackend | None) -> None:
        self.backend = backend
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def resolve(self, uri: str) -> str | None:
        """The store path of an artifact location (a logged model's), None if not ours."""
        if self.backend is None:
            return None
        try:
            return locations.resolve(self.backend, uri)
        except MlflowError:
            return None

    def walk(self, directory: str) -> list[str]:
        """Store paths of every file under `directory`, sorted."""
        backend = self._backend()
        found: list[str] = []
        pending = [directory]
        while pending:
            current = pending.pop()
            for entry in self._run(backend.list(current)):
                path = f"{current}/{entry.path}" if current else entry.path
                (pending if entry.is_dir else found).append(path)
        return sorted(found)

    def _backend(self) -> ArtifactBackend:
        if self.backend is None:
            raise TransientError("this sync worker has no artifact store to read files from")
        return self.backend

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run `coroutine` on the files' loop and wait for it (from any lane's thread)."""
        with self._lock:
            loop = self._loop
            if loop is None:
                loop = self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(
                    target=loop.run_forever, name="tether-sync-files", daemon=True
                )
                self._thread.start()
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result()

    def open(self, path: str) -> tuple[int, Generator[bytes, None, None]] | None:
        """(size, chunks) of the store file `path`, or None when it is not there (any more)."""
        backend = self._backend()
        try:
            size, chunks = self._run(backend.open_read(path))
        except MlflowError as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise

        def pull() -> Generator[bytes, None, None]:
            stream = chunks.__aiter__()
            try:
                while True:
                    try:
                        yield self._run(_next(stream))
                    except StopAsyncIteration:
                        return
            finally:
                close = getattr(stream, "aclose", None)
                if close is not None:
                    self._run(close())

        return size, pull()

    def close(self) -> None:
        """Close the backend's connections, stop the loop and its thread (worker shutdown)."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        try:
            if self.backend is not None:
                asyncio.run_coroutine_threadsafe(self.backend.close(), loop).result()
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
            loop.close()


async def _next(stream: Any) -> bytes:
    # A coroutine (run_coroutine_threadsafe takes no bare awaitable) for the stream's next chunk.
    chunk: bytes = await stream.__anext__()
    return chunk
