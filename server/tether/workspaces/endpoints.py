"""HTTP endpoints of MLflow 3.17's workspace API (/api/3.0/mlflow/workspaces).

Served only with workspaces on: without them the middleware answers these paths as
`mlflow server` does (`tether.workspaces.middleware`). With authentication, as MLflow 3.17's
basic-auth app: only admins create, read one, update and delete workspaces (reading one is
refused to everyone else by the reference server too: its validator for the path with a
parameter is never matched); a signed-in user lists the workspaces they have a role in. A new
workspace gets MLflow's seeded `admin` and `user` roles; a deleted one loses all its roles.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import Response

from tether.api.access import ADMIN, SIGNED_IN, Visible, workspace_created, workspace_deleted
from tether.api.deps import provider
from tether.api.responses import JsonResponse
from tether.api.routing import MLFLOW3_PREFIXES, Router
from tether.threads import blocking
from tether.workspaces import schemas
from tether.workspaces.service import WorkspaceService

Workspaces = Annotated[WorkspaceService, Depends(provider(WorkspaceService))]
api = Router("workspaces", prefixes=MLFLOW3_PREFIXES)


# While workspaces are off, every route answers 503 with MLflow's sentence (middleware).
OFF = (503,)


LISTS_WORKSPACES = SIGNED_IN.listing("workspace")
CREATES_WORKSPACE = ADMIN.then(workspace_created(lambda message, _: message.name))
DELETES_WORKSPACE = ADMIN.then(workspace_deleted("workspace_name"))


@api.get("/workspaces", access=LISTS_WORKSPACES, text_on=OFF)
async def list_workspaces(service: Workspaces, visible: Visible) -> schemas.ListWorkspacesResponse:
    found = await blocking(service.list)
    workspaces = [w for w in found if visible.can_list_workspace(w["name"])]
    return {"workspaces": workspaces} if workspaces else {}


@api.post(
    "/workspaces",
    access=CREATES_WORKSPACE,
    response=schemas.WorkspaceResponse,
    ok_status=201,
    text_on=OFF,
)
async def create_workspace(body: schemas.CreateWorkspace, service: Workspaces) -> Response:
    created = await blocking(
        service.create, body.name, body.description, body.default_artifact_root
    )
    return JsonResponse({"workspace": created}, status_code=201)  # MLflow answers 201


@api.get("/workspaces/{workspace_name}", access=ADMIN, text_on=OFF)
async def get_workspace(workspace_name: str, service: Workspaces) -> schemas.WorkspaceResponse:
    return {"workspace": await blocking(service.get, workspace_name)}


@api.patch("/workspaces/{workspace_name}", access=ADMIN, text_on=OFF)
async def update_workspace(
    workspace_name: str, body: schemas.UpdateWorkspace, service: Workspaces
) -> schemas.WorkspaceResponse:
    updated = await blocking(
        service.update,
        workspace_name,
        set(body.model_fields_set),
        body.description,
        body.default_artifact_root,
    )
    return {"workspace": updated}


@api.delete(
    "/workspaces/{workspace_name}",
    access=DELETES_WORKSPACE,
    empty_response=True,
    ok_status=204,
    text_on=OFF,
)
async def delete_workspace(workspace_name: str, request: Request, service: Workspaces) -> Response:
    """`?mode=SET_DEFAULT|CASCADE|RESTRICT` (default RESTRICT); 204 with no body."""
    mode = request.query_params.get("mode", "RESTRICT")
    leftover = await blocking(service.delete, workspace_name, mode)
    await service.remove_artifacts(leftover)
    return Response(status_code=204)
