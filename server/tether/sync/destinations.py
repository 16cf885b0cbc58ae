"""Each workspace's artifacts destination, as the artifact store routes it
(`tether.storage.routed`): the routes read from `workspace_bindings`, the backend of each
destination with its binding's credential, and the checks a bind makes first.

Invariants:
- A destination's route comes from its row whether bound or not: unbinding changes where the
  workspace syncs, never where its files are (they stay reachable, new files go on landing
  beside them). A rebind to another destination (or to none: the server store) keeps the old
  one as a read fallback (`artifacts_previous`) until `tether workspaces move-artifacts`.
- A Blob destination bound with `--credential NAME` is reached with that credential only
  (`credentials.named_blob_access`), never with the server's storage variables; no secret is
  stored or logged.
- A bind's destination is checked before anything is written: an unsupported URI, a
  credential the environment lacks or a store that does not answer is a 400 and the binding
  stays as it was.
"""

from __future__ import annotations

import asyncio
import json
import os
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from sqlalchemy import or_, select

from tether.config import Settings
from tether.db.engine import Database
from tether.db.models import Workspace, WorkspaceBinding
from tether.errors import MlflowError, invalid_parameter, not_found
from tether.storage import ArtifactBackend, create_backend
from tether.storage.azure_blob import WasbsUri
from tether.storage.configured import artifact_backend, azure_tuning
from tether.storage.locations import absolute_if_local
from tether.storage.routed import (
    Destination,
    Moved,
    Opener,
    Route,
    RoutedBackend,
    RouteTable,
    routed,
)
from tether.sync.azureml.credentials import named_blob_access
from tether.sync.azureml.errors import PermanentError


def previous_of(row: WorkspaceBinding) -> list[Destination]:
    """The row's `artifacts_previous`, newest first."""
    if not row.artifacts_previous:
        return []
    return [Destination(d["uri"], d.get("credential")) for d in json.loads(row.artifacts_previous)]


def store_previous(row: WorkspaceBinding, previous: list[Destination]) -> None:
    row.artifacts_previous = (
        json.dumps([{"uri": d.uri, "credential": d.credential} for d in previous])
        if previous
        else None
    )


def current_of(row: WorkspaceBinding) -> Destination | None:
    if not row.artifacts_destination:
        return None
    return Destination(row.artifacts_destination, row.credential)


def route_table(db: Database) -> RouteTable:
    """The routes of every workspace with a destination, current or previous."""

    def read() -> Mapping[str, Route]:
        with db.read() as session:
            rows = session.scalars(
                select(WorkspaceBinding).where(
                    or_(
                        WorkspaceBinding.artifacts_destination.is_not(None),
                        WorkspaceBinding.artifacts_previous.is_not(None),
                    )
                )
            )
            return {r.workspace: Route(current_of(r), tuple(previous_of(r))) for r in rows}

    return read


def opener(settings: Settings) -> Opener:
    """A destination's backend, with its credential (MlflowError naming the missing
    variables, never their values, when the environment lacks it)."""

    def open_destination(destination: Destination) -> ArtifactBackend:
        env: Mapping[str, str] = os.environ
        credential = None
        if destination.credential and destination.uri.startswith("wasbs:"):
            try:
                env, credential = named_blob_access(destination.credential)
            except PermanentError as exc:
                # The server's configuration, not the request: unavailable until it is fixed
                # (a bind refuses it with 400: `verify`).
                raise MlflowError(
                    f"The artifacts destination's {exc.reason} (or its STORAGE_CONNECTION_"
                    "STRING / STORAGE_ACCESS_KEY)",
                    "TEMPORARILY_UNAVAILABLE",
                ) from None
        return create_backend(
            destination.uri,
            chunk_size=settings.artifact_chunk_size,
            azure=azure_tuning(settings),
            env=env,
            credential=credential,
        )

    return open_destination


def artifact_store(settings: Settings, db: Database) -> RoutedBackend:
    """The server's artifact store, each workspace's files routed to its destination."""
    return routed(artifact_backend(settings), route_table(db), opener(settings))


def normalized(destination: str) -> str:
    """A relative local path made absolute (the server may run elsewhere than the binder)."""
    return absolute_if_local(destination.strip())


def _place(uri: str) -> tuple[str, str]:
    """(store, path inside it) of a destination URI, to tell overlapping ones apart."""
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme == "wasbs":
        wasbs = WasbsUri.parse(uri)
        return f"wasbs:{wasbs.container}@{wasbs.account}.{wasbs.suffix}", wasbs.path
    local = urllib.request.url2pathname(parsed.path) if parsed.scheme == "file" else uri
    return "file", Path(local).resolve().as_posix().strip("/")


def _overlap(a: str, b: str) -> bool:
    (store_a, path_a), (store_b, path_b) = _place(a), _place(b)
    if store_a != store_b:
        return False
    return (
        not path_a
        or not path_b
        or path_a == path_b
        or f"{path_a}/".startswith(f"{path_b}/")
        or f"{path_b}/".startswith(f"{path_a}/")
    )


def _check_apart(settings: Settings, db: Database, workspace: str, destination: str) -> None:
    """A destination is a store of the workspace's own: deleting the workspace (CASCADE)
    empties it, so it may not overlap the server's store or another workspace's destination
    (current or previous)."""
    others = [("the server's artifact store", settings.resolved_artifacts_destination())]
    with db.read() as session:
        for row in session.scalars(select(WorkspaceBinding)):
            if row.workspace != workspace:
                for one in (current_of(row), *previous_of(row)):
                    if one is not None:
                        others.append((f"workspace '{row.workspace}'s destination", one.uri))
    for what, uri in others:
        try:
            clash = _overlap(destination, uri)
        except (MlflowError, ValueError, OSError):
            continue  # a location that is not a store (mlflow-artifacts:): nothing shared
        if clash:
            raise invalid_parameter(
                f"The artifacts destination '{destination}' overlaps {what} ('{uri}'): a "
                "workspace's destination must be a store (container or prefix) of its own"
            )


def verify(
    settings: Settings, db: Database, workspace: str, destination: str, credential: str | None
) -> None:
    """Refuse (400) a destination the server could not use: unsupported, shared with another
    store (`_check_apart`), a credential the environment lacks, or a store that does not
    answer (its readiness check). Blocking: runs its own event loop (call it off the
    server's)."""
    if destination.startswith("mlflow-artifacts:"):
        raise invalid_parameter(
            f"Unsupported artifacts destination '{destination}': a workspace's destination is "
            "its own store (a local path, file:// or wasbs:// URI), not a path of this server's"
        )
    try:
        _check_apart(settings, db, workspace, destination)
    except (ValueError, OSError) as exc:
        raise invalid_parameter(
            f"The artifacts destination '{destination}' cannot be used: {type(exc).__name__}"
        ) from None

    async def check() -> None:
        backend = opener(settings)(Destination(destination, credential))
        try:
            await backend.check()
        finally:
            await backend.close()

    try:
        asyncio.run(check())
    except MlflowError as exc:
        raise invalid_parameter(
            f"The artifacts destination '{destination}' cannot be used: {exc.message}"
        ) from None
    except (OSError, ValueError) as exc:
        raise invalid_parameter(
            f"The artifacts destination '{destination}' cannot be used: {type(exc).__name__}"
        ) from None


def move(settings: Settings, db: Database, workspace: str) -> Moved:
    """Move the workspace's files from its fallback locations (previous destinations, the
    server store) to its current one (`RoutedBackend.move_workspace`: copy, check the size,
    delete the original; idempotent, resumable), then forget the previous destinations, unless
    a rebind changed them meanwhile. Blocking: runs its own event loop."""
    with db.read() as session:
        if session.get(Workspace, workspace) is None:
            raise not_found(f"Workspace '{workspace}' not found")
        row = session.get(WorkspaceBinding, workspace)
        before = None if row is None else (row.artifacts_destination, row.artifacts_previous)
    store = artifact_store(settings, db)

    async def run() -> Moved:
        try:
            return await store.move_workspace(workspace)
        finally:
            await store.close()

    moved = asyncio.run(run())
    with db.write() as session:
        row = session.get(WorkspaceBinding, workspace)
        if row is not None and (row.artifacts_destination, row.artifacts_previous) == before:
            store_previous(row, [])
    return moved
