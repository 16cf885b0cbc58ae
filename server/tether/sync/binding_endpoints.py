"""`/api/2.0/tether/workspaces[/<name>[/binding]]`: each MLflow workspace's Azure ML binding
and sync state, for admins (`tether workspaces list | bind | unbind` over REST).

A bind is one transaction in the store; every running server (replica) picks it up within
seconds (`tether.sync.runtime`). `default` is bound by the server's own flags: it is listed,
never bound or unbound here."""

from __future__ import annotations

from fastapi import Request

from tether.api.access import ADMIN
from tether.api.routing import Router
from tether.config import Settings
from tether.db.engine import Database
from tether.sync import bindings, destinations
from tether.sync.schemas import (
    BindResponse,
    BindWorkspace,
    ListWorkspaceBindings,
    WorkspaceBindingInfo,
)
from tether.threads import blocking

api = Router("workspace-bindings")
_BASE = "/api/2.0/tether/workspaces"


def _store(request: Request) -> tuple[Database, Settings]:
    return request.app.state.db, request.app.state.settings


@api.get(_BASE, access=ADMIN)
async def list_bindings(request: Request) -> ListWorkspaceBindings:
    db, settings = _store(request)

    def read() -> list[WorkspaceBindingInfo]:
        with db.read() as session:
            return bindings.describe_all(session, settings)

    return {"workspaces": await blocking(read)}


@api.get(_BASE + "/{workspace_name}", access=ADMIN)
async def get_binding(workspace_name: str, request: Request) -> WorkspaceBindingInfo:
    db, settings = _store(request)

    def read() -> WorkspaceBindingInfo:
        with db.read() as session:
            return bindings.describe(session, settings, workspace_name)

    return await blocking(read)


async def _bind(workspace_name: str, body: BindWorkspace, request: Request) -> BindResponse:
    db, settings = _store(request)

    def write() -> BindResponse:
        destination = body.artifacts_destination
        if destination is not None:  # checked before anything is written
            destination = destinations.normalized(destination)
            destinations.verify(settings, db, workspace_name, destination, body.credential)
        with db.write() as session:
            _, fresh = bindings.bind(
                session,
                workspace_name,
                body.azureml_workspace,
                endpoint=body.azureml_endpoint,
                artifacts_destination=destination,
                credential=body.credential,
                force=body.force,
            )
        with db.read() as session:
            info = bindings.describe(session, settings, workspace_name)
        return {"workspace": info, "restarted": fresh}

    return await blocking(write)


@api.put(_BASE + "/{workspace_name}/binding", access=ADMIN)
async def put_binding(workspace_name: str, body: BindWorkspace, request: Request) -> BindResponse:
    return await _bind(workspace_name, body, request)


@api.post(_BASE + "/{workspace_name}/binding", access=ADMIN)
async def post_binding(workspace_name: str, body: BindWorkspace, request: Request) -> BindResponse:
    return await _bind(workspace_name, body, request)


@api.delete(_BASE + "/{workspace_name}/binding", access=ADMIN)
async def delete_binding(workspace_name: str, request: Request) -> WorkspaceBindingInfo:
    """Unbind: the workspace is kept in Tether only; its data and sync state stay."""
    db, settings = _store(request)

    def write() -> WorkspaceBindingInfo:
        with db.write() as session:
            bindings.unbind(session, workspace_name)
        with db.read() as session:
            return bindings.describe(session, settings, workspace_name)

    return await blocking(write)
