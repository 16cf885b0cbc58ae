"""Artifacts routed per workspace: a workspace bound with an artifacts destination
(`tether workspaces bind NAME --artifacts-destination URI`) keeps its files in its own store.

Invariants:
- Clients see one store: store paths and `mlflow-artifacts:` URIs are the same whatever the
  routing, and a bind changes no URI a run, model or version recorded.
- Layout: the store path `workspaces/<name>/<rest>` is `<rest>` in `<name>`'s destination.
  The destination's root is the workspace's prefix, so a team's container reads as a stock
  MLflow artifact root (`<exp>/<run>/artifacts/...`): it can be handed to the team, or be the
  `--artifacts-destination` of a server of its own, as it is. Every other path (`default`'s,
  a workspace's own `default_artifact_root` outside `workspaces/`), and every workspace
  without a destination, is the server store's.
- Writes (and multipart uploads) go to the workspace's current location only. Reads
  (`open_read`) take the first location that has the file: the current one, then its
  previous destinations (newest first), then the server store; `list` merges them (the
  earlier location wins a name); `delete` removes from every one. So files written before a
  bind or a rebind stay readable, listable and deletable where they are until moved
  (`move_workspace`), and no rebind loses a file.
- The route table is read off the event loop, at most every `refresh_seconds`: a bind takes
  effect within that on every process sharing the table. A failed read keeps the last table
  (the first read's failure is raised). A workspace whose route disappears (its binding
  row deleted with the workspace) is still deleted from where it was (CASCADE's cleanup runs
  after the row is gone).
- One backend per destination, created on first use and closed by `close()`. An instance
  serves one event loop (the Azure clients belong to it): each process and each sync worker
  builds its own.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field

from tether.errors import MlflowError
from tether.storage.azure_blob import UNSUPPORTED_MULTIPART
from tether.storage.base import (
    ArtifactBackend,
    FileInfo,
    MultipartBackend,
    UploadCredential,
    UploadedPart,
)
from tether.storage.paths import WORKSPACES_DIR, join
from tether.threads import blocking

log = logging.getLogger("tether.storage")
REFRESH_SECONDS = 2.0  # as often as the sync runtime re-reads the bindings


@dataclass(frozen=True)
class Destination:
    """A workspace's own store: a URI `create_backend` takes, and the name of the credential
    it authenticates with (None: the server's; never a secret)."""

    uri: str
    credential: str | None = None


@dataclass(frozen=True)
class Route:
    """Where a workspace's files are: `current` (None: the server store) takes writes;
    `previous` (newest first) still holds files written before a rebind."""

    current: Destination | None
    previous: tuple[Destination, ...] = field(default=())


# The routes of every workspace that has one (blocking: called off the event loop).
RouteTable = Callable[[], Mapping[str, Route]]
# A backend for a destination (raises MlflowError when it cannot be used, naming no secret).
Opener = Callable[[Destination], ArtifactBackend]


def split(path: str) -> tuple[str | None, str]:
    """`workspaces/<name>/<rest>` -> (name, rest); any other path -> (None, path)."""
    parts = path.split("/", 2)
    if len(parts) >= 2 and parts[0] == WORKSPACES_DIR and parts[1]:
        return parts[1], parts[2] if len(parts) == 3 else ""
    return None, path


@dataclass(frozen=True)
class Moved:
    """What `move_workspace` did: files copied, files already at the destination (only the
    old copy deleted), bytes copied."""

    copied: int = 0
    already_there: int = 0
    bytes: int = 0


class RoutedBackend:
    """An `ArtifactBackend` over the server store and the workspaces' destinations."""

    def __init__(
        self,
        server: ArtifactBackend,
        table: RouteTable,
        opener: Opener,
        *,
        refresh_seconds: float = REFRESH_SECONDS,
    ) -> None:
        self.server = server
        self._table = table
        self._open = opener
        self._refresh_seconds = refresh_seconds
        self._routes: dict[str, Route] = {}
        self._gone: dict[str, Route] = {}
        self._loaded_at: float | None = None
        self._lock = asyncio.Lock()
        self._backends: dict[Destination, ArtifactBackend] = {}

    def __repr__(self) -> str:
        return f"RoutedBackend({self.server!r})"

    # Routes ------------------------------------------------------------------------------

    def _fresh(self) -> bool:
        loaded = self._loaded_at
        return loaded is not None and time.monotonic() - loaded < self._refresh_seconds

    async def routes(self) -> Mapping[str, Route]:
        """The route table, re-read when older than `refresh_seconds`."""
        if self._fresh():
            return self._routes
        async with self._lock:
            if self._fresh():
                return self._routes
            try:
                routes = dict(await blocking(self._table))
            except Exception:
                if self._loaded_at is None:
                    raise
                log.warning("cannot re-read the workspaces' artifact routes", exc_info=True)
                self._loaded_at = time.monotonic()  # retried after the next interval
                return self._routes
            for name, route in self._routes.items():
                if name not in routes:
                    self._gone[name] = route
            for name in routes:
                self._gone.pop(name, None)
            self._routes, self._loaded_at = routes, time.monotonic()
        return self._routes

    def _backend(self, destination: Destination) -> ArtifactBackend:
        backend = self._backends.get(destination)
        if backend is None:
            backend = self._backends[destination] = self._open(destination)
        return backend

    def _places(self, path: str, route: Route | None) -> list[tuple[ArtifactBackend, str]]:
        name, rest = split(path)
        if name is None or route is None:
            return [(self.server, path)]
        places: list[tuple[ArtifactBackend, str]] = []
        seen: set[Destination | None] = set()
        for destination in (route.current, *route.previous, None):
            if destination in seen:
                continue
            seen.add(destination)
            if destination is None:
                places.append((self.server, path))
            else:
                places.append((self._backend(destination), rest))
        return places

    async def places(
        self, path: str, *, deleting: bool = False
    ) -> list[tuple[ArtifactBackend, str]]:
        """(backend, its path) for `path`: where it is written first, then every fallback."""
        name, _ = split(path)
        if name is None:
            return [(self.server, path)]
        routes = await self.routes()
        route = routes.get(name)
        if route is None and deleting:
            route = self._gone.get(name)
        return self._places(path, route)

    # ArtifactBackend ---------------------------------------------------------------------

    async def write(self, path: str, chunks: AsyncIterator[bytes]) -> int:
        backend, where = (await self.places(path))[0]
        return await backend.write(where, chunks)

    async def open_read(self, path: str) -> tuple[int, AsyncIterator[bytes]]:
        places = await self.places(path)
        for index, (backend, where) in enumerate(places):
            try:
                return await backend.open_read(where)
            except MlflowError as exc:
                if exc.error_code != "RESOURCE_DOES_NOT_EXIST" or index == len(places) - 1:
                    raise
        raise AssertionError("unreachable: places is never empty")

    async def list(self, path: str) -> builtins.list[FileInfo]:
        places = await self.places(path)
        if len(places) == 1:
            backend, where = places[0]
            return await backend.list(where)
        merged: dict[str, FileInfo] = {}
        for backend, where in places:
            for entry in await backend.list(where):
                merged.setdefault(entry.path, entry)
        return sorted(merged.values(), key=lambda e: e.path)

    async def delete(self, path: str) -> bool:
        deleted = False
        for backend, where in await self.places(path, deleting=True):
            if where or backend is self.server:
                deleted = await backend.delete(where) or deleted
            else:  # a whole workspace (CASCADE): everything at its destination's root
                for entry in await backend.list(""):
                    deleted = await backend.delete(entry.path) or deleted
        return deleted

    async def close(self) -> None:
        backends, self._backends = list(self._backends.values()), {}
        for backend in backends:
            try:
                await backend.close()
            except Exception:
                log.warning("closing %r failed", backend, exc_info=True)
        await self.server.close()

    async def check(self) -> None:
        """The server store's readiness: one team's store never makes the server unready."""
        await self.server.check()

    def locate(self, uri: str) -> str | None:
        """A direct URI into a workspace's destination (current or previous, as last read) is
        that workspace's store path; else the server store's answer."""
        for name, route in self._routes.items():
            for destination in (route.current, *route.previous):
                if destination is None:
                    continue
                try:
                    inside = self._backend(destination).locate(uri)
                except MlflowError:
                    continue
                if inside is not None:
                    return join(WORKSPACES_DIR, name, inside)
        return self.server.locate(uri)

    # Moving a workspace's files to its current location ---------------------------------

    async def move_workspace(self, name: str) -> Moved:
        """Move every file of workspace `name` found at a fallback location (previous
        destinations, the server store) to its current location: stream-copy, check the size,
        then delete the original. A file the current location already has (written there after
        the bind, or copied by an interrupted move) only loses its old copy, so a move is
        idempotent and resumes where a crash left it."""
        self._loaded_at = None  # the latest route, whatever the cache
        places = await self.places(join(WORKSPACES_DIR, name))
        (target, root), sources = places[0], places[1:]
        moved = Moved()
        for source, source_root in sources:
            moved = await self._move_tree(source, source_root, target, root, "", moved)
        return moved

    async def _move_tree(
        self,
        source: ArtifactBackend,
        source_root: str,
        target: ArtifactBackend,
        target_root: str,
        relative: str,
        moved: Moved,
    ) -> Moved:
        there = {e.path: e for e in await target.list(join(target_root, relative))}
        for entry in await source.list(join(source_root, relative)):
            child = join(relative, entry.path)
            if entry.is_dir:
                moved = await self._move_tree(
                    source, source_root, target, target_root, child, moved
                )
                continue
            existing = there.get(entry.path)
            if existing is None or existing.is_dir:
                size, chunks = await source.open_read(join(source_root, child))
                written = await target.write(join(target_root, child), chunks)
                if written != size:
                    raise MlflowError(
                        f"Moving '{child}': {written} bytes written of {size}; the original "
                        "is kept",
                        "INTERNAL_ERROR",
                    )
                moved = Moved(moved.copied + 1, moved.already_there, moved.bytes + size)
            else:
                moved = Moved(moved.copied, moved.already_there + 1, moved.bytes)
            await source.delete(join(source_root, child))
        return moved


def _multipart(backend: ArtifactBackend) -> MultipartBackend:
    if not isinstance(backend, MultipartBackend):
        raise MlflowError(UNSUPPORTED_MULTIPART, "NOT_IMPLEMENTED")
    return backend


class RoutedMultipartBackend(RoutedBackend):
    """`RoutedBackend` when the server store takes multipart uploads (the server advertises
    them for every workspace): each upload goes to the path's current location, refused
    (NOT_IMPLEMENTED, as MLflow words it) when that store does not take them."""

    async def create_multipart_upload(
        self, path: str, num_parts: int
    ) -> tuple[builtins.list[UploadCredential], str | None]:
        backend, where = (await self.places(path))[0]
        return await _multipart(backend).create_multipart_upload(where, num_parts)

    async def complete_multipart_upload(
        self, path: str, upload_id: str | None, parts: builtins.list[UploadedPart]
    ) -> int:
        backend, where = (await self.places(path))[0]
        return await _multipart(backend).complete_multipart_upload(where, upload_id, parts)

    async def abort_multipart_upload(self, path: str, upload_id: str | None) -> None:
        backend, where = (await self.places(path))[0]
        await _multipart(backend).abort_multipart_upload(where, upload_id)


def routed(
    server: ArtifactBackend,
    table: RouteTable,
    opener: Opener,
    *,
    refresh_seconds: float = REFRESH_SECONDS,
) -> RoutedBackend:
    """The routing backend over `server`: multipart-capable when `server` is."""
    kind = RoutedMultipartBackend if isinstance(server, MultipartBackend) else RoutedBackend
    return kind(server, table, opener, refresh_seconds=refresh_seconds)
