"""`--workspace-store-uri` (MLflow 3.17's `mlflow server --workspace-store-uri`): where the
server keeps its workspaces. In MLflow it defaults to the backend store and may name another
store: a separate SQL database for the `workspaces` table, or a workspace store plugin that
manages workspaces elsewhere (e.g. Kubernetes namespaces); without `--enable-workspaces` it is
ignored with a warning.

Tether keeps its workspaces in the backend store, next to the experiments and models they
hold, because deleting a workspace (RESTRICT, SET_DEFAULT, CASCADE), creating one and every
request's check that its workspace exists must see the same database, and a delete is one
transaction with what it deletes or moves. So the flag is accepted when it names the backend
store (the same database, however written), ignored with MLflow's warning when workspaces are
off, and refused, saying why, when it names anything else.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

IGNORED = (
    "Ignoring --workspace-store-uri because workspaces are not enabled. "
    "Use --enable-workspaces to activate workspace mode."
)


class WorkspaceStoreError(ValueError):
    """A workspace store Tether cannot use, with what to do instead."""


def _same_database(a: URL, b: URL) -> bool:
    def key(url: URL) -> tuple[object, ...]:
        backend = url.get_backend_name()
        database = url.database or ""
        if backend == "sqlite" and database not in ("", ":memory:"):
            database = os.path.realpath(Path(database).expanduser())
        return (backend, url.username, url.host, url.port or None, database)

    return key(a) == key(b)


def check(workspace_store_uri: str | None, backend_store_uri: str, enabled: bool) -> str | None:
    """None when there is nothing to say, the warning to log when the flag is ignored;
    raises WorkspaceStoreError when it names another store than the backend store."""
    if not workspace_store_uri:
        return None
    if not enabled:
        return IGNORED
    try:
        same = _same_database(make_url(workspace_store_uri), make_url(backend_store_uri))
    except ArgumentError:
        same = False  # not a database URL at all: a plugin's (kubernetes://...) or a typo
    if same:
        return None
    shown = workspace_store_uri.split("://", 1)[0] + "://..."
    raise WorkspaceStoreError(
        f"--workspace-store-uri ({shown}) must name the backend store or be left out: Tether "
        "keeps its workspaces in the backend store, with the experiments and models they hold, "
        "so that creating, checking and deleting a workspace (RESTRICT, SET_DEFAULT, CASCADE) "
        "is one database and one transaction with them. A separate workspace database and "
        "MLflow's workspace store plugins (e.g. Kubernetes namespaces) are not supported."
    )
