"""Tether's own artifact store as the sync worker reads it: synchronous, streamed.

The backends are asynchronous (they serve the API's event loop); the worker is a plain
thread. `Files` owns one private event loop, used only by the worker's thread, and turns a
backend's chunk stream into an ordinary iterator: a file is never held whole in memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator

from tether.errors import MlflowError
from tether.storage import locations
from tether.storage.base import ArtifactBackend
from tether.sync.azureml.errors import TransientError


class Files:
    def __init__(self, backend: ArtifactBackend | None) -> None:
        self.backend = backend
        self._loop: asyncio.AbstractEventLoop | None = None

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
        if self.backend is None:
            raise TransientError("this sync worker has no artifact store to read files from")
        loop = self._run_loop()
        found: list[str] = []
        pending = [directory]
        while pending:
            current = pending.pop()
            for entry in loop.run_until_complete(self.backend.list(current)):
                path = f"{current}/{entry.path}" if current else entry.path
                (pending if entry.is_dir else found).append(path)
        return sorted(found)

    def _run_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop

    def open(self, path: str) -> tuple[int, Generator[bytes, None, None]] | None:
        """(size, chunks) of the store file `path`, or None when it is not there (any more)."""
        if self.backend is None:
            raise TransientError("this sync worker has no artifact store to read files from")
        loop = self._run_loop()
        try:
            size, chunks = loop.run_until_complete(self.backend.open_read(path))
        except MlflowError as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise

        def pull() -> Generator[bytes, None, None]:
            stream = chunks.__aiter__()
            try:
                while True:
                    try:
                        yield loop.run_until_complete(stream.__anext__())
                    except StopAsyncIteration:
                        return
            finally:
                close = getattr(stream, "aclose", None)
                if close is not None:
                    loop.run_until_complete(close())

        return size, pull()

    def close(self) -> None:
        """Close the backend's connections and the loop (worker shutdown)."""
        if self._loop is None:
            return
        if self.backend is not None:
            self._loop.run_until_complete(self.backend.close())
        self._loop.close()
        self._loop = None
