"""The X-MLFLOW-WORKSPACE header: which workspace a request works in (MLflow 3.17's
`workspace_before_request_handler`), on every route.

Workspaces off: no header (or a blank one) passes; any other value is refused with MLflow's
500 FEATURE_DISABLED, except on server-info; and the workspace API's paths answer MLflow's
503 sentence naming the route (Flask's rule syntax), before their body is read, as MLflow's
`_disable_if_workspaces_disabled` does. Workspaces on: no header means `default`; a name
must pass MLflow's name rules (400) and exist (404 "Workspace '<name>' not found"), then the
request runs inside `workspace_scope.entered(name)`. The lookup is a primary-key read per
request naming a workspace, as MLflow's is: a deleted workspace stops answering at once, in
every worker (`default` always exists: no read).
"""

from __future__ import annotations

import re

from fastapi.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from tether.api.responses import JsonResponse
from tether.db import workspace_scope
from tether.db.models.workspaces import DEFAULT_WORKSPACE
from tether.errors import MlflowError
from tether.threads import blocking
from tether.workspaces.service import WorkspaceService, validate_named

HEADER = b"x-mlflow-workspace"
FEATURE_DISABLED = MlflowError(
    "Workspace APIs are not available: workspaces are not enabled on this server",
    "FEATURE_DISABLED",
)


_WORKSPACE_API = re.compile(r"^(?P<route>/(?:ajax-)?api/3\.0/mlflow/workspaces)(?P<named>/[^/]+)?$")

_LIST_METHODS = ("GET", "POST")
_NAMED_METHODS = ("GET", "PATCH", "DELETE")


def header_value(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == HEADER:
            return str(value.decode("latin-1")).strip()
    return ""


class WorkspaceHeader:
    def __init__(self, app: ASGIApp, service: WorkspaceService | None) -> None:
        self.app = app
        self.service = service  # None: workspaces are off

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        value = header_value(scope)
        if str(scope.get("path", "")).rstrip("/").endswith("/mlflow/server-info"):
            await self.app(scope, receive, send)
            return
        if self.service is None:
            if value:
                await _refuse(FEATURE_DISABLED, scope, receive, send)
            elif (match := _WORKSPACE_API.match(str(scope.get("path", "")))) and scope.get(
                "method"
            ) in (_NAMED_METHODS if match["named"] else _LIST_METHODS):
                await _disabled(match, scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        name = value or DEFAULT_WORKSPACE
        try:
            validate_named(name)
            if name != DEFAULT_WORKSPACE and not await blocking(self.service.exists, name):
                raise MlflowError(f"Workspace '{name}' not found", "RESOURCE_DOES_NOT_EXIST")
        except MlflowError as exc:
            await _refuse(exc, scope, receive, send)
            return
        with workspace_scope.entered(name):
            await self.app(scope, receive, send)


async def _refuse(exc: MlflowError, scope: Scope, receive: Receive, send: Send) -> None:
    response = JsonResponse(exc.to_body(), status_code=exc.http_status)
    await response(scope, receive, send)


async def _disabled(match: re.Match[str], scope: Scope, receive: Receive, send: Send) -> None:
    rule = match["route"] + ("/<workspace_name>" if match["named"] else "")
    response = Response(
        f"Endpoint: {rule} disabled because the server is running without workspaces "
        "support. To enable workspace, run `mlflow server` with `--enable-workspaces`",
        status_code=503,
        media_type="text/html; charset=utf-8",
    )
    await response(scope, receive, send)
