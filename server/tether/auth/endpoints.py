"""MLflow 3.17's user, permission and role API (`mlflow server --app-name basic-auth`), so
`mlflow.server.get_app_client("basic-auth")` works unchanged, and Tether's personal access
tokens. Served only with authentication on.

Who may call what is MLflow's: admins everything; a user reads and changes their own account
(their own password only with `current_password`); granting or revoking on a resource needs
MANAGE on it; roles need an admin or an admin of the role's workspace (a `workspace`/`*`/
MANAGE grant). Tokens: a user creates, lists and revokes their own; an admin anyone's.

With workspaces on, the per-user grant API works in the request's workspace
(X-MLFLOW-WORKSPACE): grants are written to and read from the user's own role there, and a
resource is judged only if it is in that workspace (else NO_PERMISSIONS), as MLflow 3.17's
`_get_active_workspace_name` and `_resolve_user_permission_for_resource`. Listing users then
needs membership (a workspace grant) in the request's workspace.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Request

from tether.api.access import SIGNED_IN, AuthenticationRequired, Rule
from tether.api.responses import Empty
from tether.api.routing import MLFLOW3_PREFIXES, MLFLOW_PREFIXES, Router
from tether.auth import passwords, permissions, schemas
from tether.auth.credentials import NOT_AUTHENTICATED, CredentialCache, Identity
from tether.auth.gate import PermissionGate, identity_of, permission_denied
from tether.auth.permissions import WORKSPACE
from tether.auth.store import AuthStore
from tether.clock import now_ms
from tether.db import workspace_scope
from tether.errors import MlflowError, invalid_parameter
from tether.threads import blocking

log = logging.getLogger("tether.auth")


@dataclass
class AuthState:
    """What the endpoints need (on `app.state.auth`)."""

    store: AuthStore
    gate: PermissionGate
    cache: CredentialCache


def _state(request: Request) -> AuthState:
    state: AuthState = request.app.state.auth
    return state


def _me(request: Request) -> Identity:
    identity = identity_of(request)
    if identity is None:
        raise AuthenticationRequired(NOT_AUTHENTICATED)
    return identity


Auth = Annotated[AuthState, Depends(_state)]
Me = Annotated[Identity, Depends(_me)]

# Every endpoint here is for signed-in users; each checks who may do what itself (below).
CHECKED_HERE: Rule = SIGNED_IN

users = Router("users", prefixes=MLFLOW_PREFIXES)
users3 = Router("users", prefixes=MLFLOW3_PREFIXES)
roles = Router("roles", prefixes=MLFLOW3_PREFIXES)
tokens = Router("tokens", prefixes=("/api/2.0/tether", "/ajax-api/2.0/tether"))
ROUTERS = (users, users3, roles, tokens)


def _is_workspace_admin(auth: AuthState, me: Identity, workspace: str | None = None) -> bool:
    admin_of = auth.store.admin_workspaces(me.user_id)
    return bool(admin_of) if workspace is None else workspace in admin_of


def _require(allowed: bool) -> None:
    if not allowed:
        raise permission_denied()


# Users ------------------------------------------------------------------------------------


@users.post("/users/create", access=CHECKED_HERE)
async def create_user(body: schemas.CreateUser, auth: Auth, me: Me) -> schemas.UserResponse:
    _require(me.is_admin or await blocking(_is_workspace_admin, auth, me))
    if not body.username or not body.password:
        raise invalid_parameter("Username and password cannot be empty.")
    user = await blocking(auth.store.create_user, body.username, body.password)
    log.info("user %r created by %r", user.username, me.username)
    return {"user": user.to_json()}


@users.get("/users/get", access=CHECKED_HERE)
async def get_user(body: schemas.Username, auth: Auth, me: Me) -> schemas.UserResponse:
    _require(me.is_admin or me.username == body.username)
    user = await blocking(auth.store.get_user, body.username or "")
    return {"user": user.to_json()}


def _member(auth: AuthState, me: Identity) -> bool:
    """May create in the request's workspace: MLflow's `validate_can_list_users` (always
    with workspaces off)."""
    workspace = workspace_scope.active()
    gate = auth.gate
    default = gate.default_for(me)
    grants = gate.grants_for(me, workspace)
    absent = gate.absent(default, workspace)
    if workspace is None:
        return True
    held = permissions.workspace_grant(grants)
    return permissions.get(held or absent).can_use or permissions.is_workspace_admin(grants)


@users.get("/users/list", access=CHECKED_HERE)
async def list_users(auth: Auth, me: Me) -> schemas.ListUsersResponse:
    _require(me.is_admin or await blocking(_member, auth, me))
    listed = await blocking(auth.store.list_users_with_roles)
    # Each user's roles as far as the caller may see them (MLflow's `list_users`): all to an
    # admin and of oneself, else those in the workspaces the caller administers.
    admin_of = None if me.is_admin else await blocking(auth.store.admin_workspaces, me.user_id)
    return {
        "users": [
            {
                **u.to_json(),
                "roles": roles_
                if admin_of is None or u.username == me.username
                else [r for r in roles_ if r["workspace"] in admin_of],
            }
            for u, roles_ in listed
        ]
    }


@users.get("/users/current", access=CHECKED_HERE)
async def current_user(auth: Auth, me: Me) -> schemas.CurrentUserResponse:
    user = await blocking(auth.store.get_user, me.username)
    info: schemas.UserInfo = {"id": user.id, "username": user.username, "is_admin": me.is_admin}
    return {"user": info, "is_basic_auth": me.via == "password"}


@users.patch("/users/update-password", access=CHECKED_HERE)
async def update_password(body: schemas.UpdatePassword, auth: Auth, me: Me) -> Empty:
    username, password = body.username or "", body.password or ""
    _require(me.is_admin or me.username == username)
    if me.username == username:
        # Self-service re-asserts the current password, so a hijacked session cannot
        # silently take the account over (MLflow's rule); admins changing others' skip it.
        if not body.current_password:
            raise invalid_parameter("Current password is required when changing your own password.")
        user = await blocking(auth.store.get_user, username)
        if not await blocking(passwords.verify_password, body.current_password, user.password_hash):
            raise invalid_parameter("Current password does not match.")
        if password == body.current_password:
            raise invalid_parameter("New password must differ from the current password.")
    await blocking(auth.store.update_password, username, password)
    auth.cache.forget(username)
    log.info("password of %r changed by %r", username, me.username)
    return {}


@users.patch("/users/update-admin", access=CHECKED_HERE)
async def update_admin(body: schemas.UpdateAdmin, auth: Auth, me: Me) -> Empty:
    _require(me.is_admin)
    await blocking(auth.store.update_admin, body.username or "", bool(body.is_admin))
    log.info("admin flag of %r set to %s by %r", body.username, bool(body.is_admin), me.username)
    return {}


@users.delete("/users/delete", access=CHECKED_HERE)
async def delete_user(body: schemas.Username, auth: Auth, me: Me) -> Empty:
    _require(me.is_admin)
    if body.username == me.username:
        raise MlflowError(
            "Users cannot delete their own account. Ask another admin to delete this user instead.",
            "BAD_REQUEST",
        )
    await blocking(auth.store.delete_user, body.username or "")
    auth.cache.forget(body.username or "")
    log.info("user %r deleted by %r", body.username, me.username)
    return {}


# Per-user permissions ---------------------------------------------------------------------


@users3.get("/users/current/permissions", access=CHECKED_HERE)
async def current_permissions(auth: Auth, me: Me) -> schemas.UserPermissionsResponse:
    is_admin, rows = await blocking(auth.store.permission_rows, me.username)
    return {"is_admin": is_admin or me.is_admin, "permissions": rows}


@users3.get("/users/permissions/list", access=CHECKED_HERE)
async def list_permissions(
    body: schemas.Username, auth: Auth, me: Me
) -> schemas.UserPermissionsResponse:
    username = body.username or ""
    mine = me.is_admin or me.username == username
    if not mine:
        _require(await blocking(_is_workspace_admin, auth, me))
    is_admin, rows = await blocking(auth.store.permission_rows, username)
    if not mine:
        admin_of = await blocking(auth.store.admin_workspaces, me.user_id)
        rows = [r for r in rows if r["workspace"] in admin_of]
    return {"is_admin": is_admin, "permissions": rows}


def _resolve(
    auth: AuthState, user_id: int, default: str, resource_type: str, resource_id: str
) -> permissions.Permission:
    """A user's permission on a resource as the gate judges it, in the request's workspace
    (a resource of another workspace, or none: no permission)."""
    workspace = workspace_scope.active()
    grants = auth.store.grants_of(user_id, workspace_scope.current())
    absent = auth.gate.absent(default, workspace)
    outside = workspace is not None and resource_id != "*"
    if outside and not auth.gate.in_workspace(resource_type, resource_id, str(workspace)):
        return permissions.NO_PERMISSIONS
    return permissions.resolve(grants, resource_type, resource_id, default, absent)


def _can_manage(auth: AuthState, me: Identity, resource_type: str, resource_id: str) -> bool:
    """MANAGE on the resource (a wildcard grant: admin or workspace admin), as MLflow."""
    if resource_type == WORKSPACE:
        return True  # refused with MLflow's 400 by the store, for everyone alike
    permissions.validate_resource_type(resource_type)
    if me.is_admin:
        return True
    if resource_id == "*":
        return _is_workspace_admin(auth, me, workspace_scope.current())
    default = auth.gate.default_for(me)
    return _resolve(auth, me.user_id, default, resource_type, resource_id).can_manage


@users3.post("/users/permissions/grant", access=CHECKED_HERE)
async def grant_permission(body: schemas.GrantPermission, auth: Auth, me: Me) -> Empty:
    rtype, rid = body.resource_type or "", body.resource_id or ""
    _require(await blocking(_can_manage, auth, me, rtype, rid))
    await blocking(
        auth.store.grant,
        body.username or "",
        rtype,
        rid,
        body.permission or "",
        workspace_scope.current(),
    )
    log.info(
        "%r granted %s on %s %r to %r", me.username, body.permission, rtype, rid, body.username
    )
    return {}


@users3.post("/users/permissions/revoke", access=CHECKED_HERE)
async def revoke_permission(body: schemas.ResourcePermission, auth: Auth, me: Me) -> Empty:
    rtype, rid = body.resource_type or "", body.resource_id or ""
    _require(await blocking(_can_manage, auth, me, rtype, rid))
    await blocking(auth.store.revoke, body.username or "", rtype, rid, workspace_scope.current())
    log.info("%r revoked %s %r from %r", me.username, rtype, rid, body.username)
    return {}


def _effective(auth: AuthState, username: str, resource_type: str, resource_id: str) -> str:
    user = auth.store.get_user(username)
    if resource_type == WORKSPACE:
        raise invalid_parameter(
            "resource_type 'workspace' is not supported by the per-user permission "
            "convenience APIs. Use set_workspace_permission / "
            "delete_workspace_permission for workspace-wide grants."
        )
    permissions.validate_resource_type(resource_type)
    return _resolve(auth, user.id, auth.gate.default_permission, resource_type, resource_id).name


@users3.get("/users/permissions/get", access=CHECKED_HERE)
async def get_permission(
    body: schemas.ResourcePermission, auth: Auth, me: Me
) -> schemas.GetUserPermissionResponse:
    username = body.username or ""
    if body.resource_type == WORKSPACE:  # MLflow's 400, for everyone alike
        await blocking(_effective, auth, username, WORKSPACE, "*")
    _require(
        me.is_admin
        or me.username == username
        or await blocking(_is_workspace_admin, auth, me, workspace_scope.current())
    )
    name = await blocking(
        _effective, auth, username, body.resource_type or "", body.resource_id or ""
    )
    return {"allowed": permissions.get(name).can_use, "permission": name}


# Roles ------------------------------------------------------------------------------------


def _may_manage_roles(auth: AuthState, me: Identity, workspace: str | None) -> bool:
    if me.is_admin:
        return True
    return workspace is not None and _is_workspace_admin(auth, me, workspace)


def _may_view_roles(auth: AuthState, me: Identity, workspace: str | None) -> bool:
    if me.is_admin:
        return True
    return workspace is not None and workspace in auth.store.present_workspaces(me.user_id)


def _may_manage_role(auth: AuthState, me: Identity, role_id: int) -> bool:
    return me.is_admin or _may_manage_roles(auth, me, auth.store.role_workspace(role_id))


def _may_view_role(auth: AuthState, me: Identity, role_id: int) -> bool:
    return me.is_admin or _may_view_roles(auth, me, auth.store.role_workspace(role_id))


def _nonempty(value: str | None, message: str) -> str:
    if value is None or not value.strip():
        raise invalid_parameter(message)
    return value


@roles.post("/roles/create", access=CHECKED_HERE)
async def create_role(body: schemas.CreateRole, auth: Auth, me: Me) -> schemas.RoleResponse:
    _require(await blocking(_may_manage_roles, auth, me, body.workspace))
    name = _nonempty(body.name, "Role name cannot be empty.")
    workspace = _nonempty(body.workspace, "Workspace cannot be empty.")
    role = await blocking(auth.store.create_role, name, workspace, body.description)
    return {"role": role}


@roles.get("/roles/get", access=CHECKED_HERE)
async def get_role(body: schemas.RoleId, auth: Auth, me: Me) -> schemas.RoleResponse:
    role_id = body.role_id or 0
    _require(await blocking(_may_view_role, auth, me, role_id))
    return {"role": await blocking(auth.store.get_role, role_id)}


@roles.get("/roles/list", access=CHECKED_HERE)
async def list_roles(body: schemas.ListRoles, auth: Auth, me: Me) -> schemas.RolesResponse:
    requested = [w for w in body.workspace if w.strip()]
    if len(requested) != len(body.workspace):
        raise invalid_parameter("Parameter 'workspace' must be a non-empty string when provided.")
    if not me.is_admin:
        present = await blocking(auth.store.present_workspaces, me.user_id)
        _require(bool(requested) and set(requested) <= present)
    found = await blocking(auth.store.list_roles, requested or None)
    return {"roles": found}


@roles.patch("/roles/update", access=CHECKED_HERE)
async def update_role(body: schemas.UpdateRole, auth: Auth, me: Me) -> schemas.RoleResponse:
    role_id = body.role_id or 0
    _require(await blocking(_may_manage_role, auth, me, role_id))
    if body.name is None and body.description is None:
        raise invalid_parameter(
            "At least one of 'name' or 'description' must be provided to update a role."
        )
    if body.name is not None:
        _nonempty(body.name, "Role name cannot be empty.")
    role = await blocking(auth.store.update_role, role_id, body.name, body.description)
    return {"role": role}


@roles.delete("/roles/delete", access=CHECKED_HERE)
async def delete_role(body: schemas.RoleId, auth: Auth, me: Me) -> Empty:
    role_id = body.role_id or 0
    _require(await blocking(_may_manage_role, auth, me, role_id))
    await blocking(auth.store.delete_role, role_id)
    return {}


@roles.post("/roles/permissions/add", access=CHECKED_HERE)
async def add_role_permission(
    body: schemas.AddRolePermission, auth: Auth, me: Me
) -> schemas.RolePermissionResponse:
    role_id = body.role_id or 0
    _require(await blocking(_may_manage_role, auth, me, role_id))
    row = await blocking(
        auth.store.add_role_permission,
        role_id,
        body.resource_type or "",
        body.resource_pattern or "",
        body.permission or "",
    )
    return {"role_permission": row}


@roles.delete("/roles/permissions/remove", access=CHECKED_HERE)
async def remove_role_permission(body: schemas.RolePermissionId, auth: Auth, me: Me) -> Empty:
    rp_id = body.role_permission_id or 0
    workspace = await blocking(auth.store.role_permission_workspace, rp_id)
    _require(await blocking(_may_manage_roles, auth, me, workspace))
    await blocking(auth.store.remove_role_permission, rp_id)
    return {}


@roles.get("/roles/permissions/list", access=CHECKED_HERE)
async def list_role_permissions(
    body: schemas.RoleId, auth: Auth, me: Me
) -> schemas.RolePermissionsResponse:
    role_id = body.role_id or 0
    _require(await blocking(_may_view_role, auth, me, role_id))
    rows = await blocking(auth.store.list_role_permissions, role_id)
    return {"role_permissions": rows}


@roles.patch("/roles/permissions/update", access=CHECKED_HERE)
async def update_role_permission(
    body: schemas.UpdateRolePermission, auth: Auth, me: Me
) -> schemas.RolePermissionResponse:
    rp_id = body.role_permission_id or 0
    workspace = await blocking(auth.store.role_permission_workspace, rp_id)
    _require(await blocking(_may_manage_roles, auth, me, workspace))
    permissions.validate_permission(body.permission)
    row = await blocking(auth.store.update_role_permission, rp_id, body.permission or "")
    return {"role_permission": row}


@roles.post("/roles/assign", access=CHECKED_HERE)
async def assign_role(
    body: schemas.RoleAssignment, auth: Auth, me: Me
) -> schemas.AssignmentResponse:
    role_id = body.role_id or 0
    _require(await blocking(_may_manage_role, auth, me, role_id))
    found = await blocking(auth.store.assign_role, body.username or "", role_id)
    return {"assignment": found}


@roles.delete("/roles/unassign", access=CHECKED_HERE)
async def unassign_role(body: schemas.RoleAssignment, auth: Auth, me: Me) -> Empty:
    role_id = body.role_id or 0
    _require(await blocking(_may_manage_role, auth, me, role_id))
    await blocking(auth.store.unassign_role, body.username or "", role_id)
    return {}


@roles.get("/users/roles/list", access=CHECKED_HERE)
async def list_user_roles(body: schemas.Username, auth: Auth, me: Me) -> schemas.RolesResponse:
    username = body.username or ""
    mine = me.is_admin or me.username == username
    if not mine:
        _require(await blocking(_is_workspace_admin, auth, me))
    found = await blocking(auth.store.list_user_roles, username)
    if not mine:
        admin_of = await blocking(auth.store.admin_workspaces, me.user_id)
        found = [r for r in found if r["workspace"] in admin_of]
    return {"roles": found}


@roles.get("/roles/users/list", access=CHECKED_HERE)
async def list_role_users(body: schemas.RoleId, auth: Auth, me: Me) -> schemas.AssignmentsResponse:
    role_id = body.role_id or 0
    _require(await blocking(_may_manage_role, auth, me, role_id))
    return {"assignments": await blocking(auth.store.list_role_users, role_id)}


# Personal access tokens (Tether's) ---------------------------------------------------------


async def _token_owner(auth: AuthState, me: Identity, username: str | None) -> int:
    if username is None or username == me.username:
        return me.user_id
    _require(me.is_admin)
    return (await blocking(auth.store.get_user, username)).id


@tokens.post("/tokens/create", access=CHECKED_HERE)
async def create_token(
    body: schemas.CreateToken, auth: Auth, me: Me
) -> schemas.CreateTokenResponse:
    owner = await _token_owner(auth, me, body.username)
    expires_at = None
    if body.expires_in_days is not None:
        if not 0 < body.expires_in_days <= 3650:
            raise invalid_parameter("expires_in_days must be between 1 and 3650.")
        expires_at = now_ms() + int(timedelta(days=body.expires_in_days).total_seconds() * 1000)
    token, secret = await blocking(auth.store.create_token, owner, body.name or "", expires_at)
    log.info("access token %d (%r) created by %r", token["id"], token["name"], me.username)
    return {"token": token, "secret": secret}


@tokens.get("/tokens/list", access=CHECKED_HERE)
async def list_tokens(body: schemas.ListTokens, auth: Auth, me: Me) -> schemas.TokensResponse:
    owner = await _token_owner(auth, me, body.username)
    return {"tokens": await blocking(auth.store.list_tokens, owner)}


@tokens.post("/tokens/revoke", access=CHECKED_HERE)
async def revoke_token(body: schemas.RevokeToken, auth: Auth, me: Me) -> Empty:
    owner = await _token_owner(auth, me, body.username)
    await blocking(auth.store.revoke_token, owner, body.token_id or 0)
    log.info("access token %d revoked by %r", body.token_id, me.username)
    return {}
