"""Users, roles, grants and access tokens in SQL (the `auth_*` tables), worded as MLflow's
basic-auth store words its answers and errors (`mlflow.server.auth.sqlalchemy_store`).

Each method is one transaction. These writes append no sync-outbox record: users and
permissions stay in Tether (Azure ML has its own identities and RBAC).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tether.auth import passwords
from tether.auth.permissions import (
    DEFAULT_WORKSPACE,
    WORKSPACE,
    Grant,
    types_for,
    validate_grant,
    validate_resource_type,
)
from tether.auth.schemas import (
    AssignmentInfo,
    PermissionRow,
    RoleInfo,
    RolePermissionInfo,
    TokenInfo,
    UserInfo,
)
from tether.clock import now_ms
from tether.db.engine import Database, fetch_tuples
from tether.db.models import AuthRole, AuthRolePermission, AuthToken, AuthUser, AuthUserRole
from tether.errors import MlflowError, already_exists, invalid_parameter, not_found

_SYNTHETIC_PREFIX = "__user_"
# MLflow 3.17's `_DEFAULT_WORKSPACE_ROLES`, with its descriptions.
SEEDED_ROLES = (
    ("admin", "MANAGE", "Full MANAGE authority over the workspace."),
    (
        "user",
        "USE",
        "Read every resource in the workspace and create new experiments and registered "
        "models; the creator-as-owner mechanism grants MANAGE on what you create, with no "
        "write or delete access to resources owned by other users.",
    ),
)
_SYNTHETIC = re.compile(r"^__user_\d+__$")
TOKEN_PREFIX = "tether_pat_"


def synthetic_role_name(user_id: int) -> str:
    return f"{_SYNTHETIC_PREFIX}{user_id}__"


@dataclass(frozen=True)
class User:
    id: int
    username: str
    is_admin: bool
    password_hash: str | None
    source: str
    display_name: str | None
    grants: tuple[Grant, ...] = ()  # filled by the sign-in reads (`signing_in`, `user_for_token`)

    def to_json(self) -> UserInfo:
        return {"id": self.id, "username": self.username, "is_admin": self.is_admin}


def _user(row: AuthUser) -> User:
    return User(
        row.id, row.username, bool(row.is_admin), row.password_hash, row.source, row.display_name
    )


def role_json(session: Session, role: AuthRole) -> RoleInfo:
    permissions = session.scalars(
        sa.select(AuthRolePermission)
        .where(AuthRolePermission.role_id == role.id)
        .order_by(AuthRolePermission.id)
    )
    return {
        "id": role.id,
        "name": role.name,
        "workspace": role.workspace,
        "description": role.description,
        "permissions": [role_permission_json(p) for p in permissions],
    }


def role_permission_json(row: AuthRolePermission) -> RolePermissionInfo:
    return {
        "id": row.id,
        "role_id": row.role_id,
        "resource_type": row.resource_type,
        "resource_pattern": row.resource_pattern,
        "permission": row.permission,
    }


def validate_password(password: object) -> str:
    if not isinstance(password, str) or len(password) < passwords.MIN_LENGTH:
        raise invalid_parameter("Password must be at least 12 characters.")
    return password


class AuthStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # Users -----------------------------------------------------------------------------

    def create_user(
        self,
        username: str,
        password: str | None,
        *,
        is_admin: bool = False,
        source: str = "password",
        display_name: str | None = None,
    ) -> User:
        if not username:
            raise invalid_parameter("Username cannot be empty.")
        password_hash = None
        if source == "password":
            password_hash = passwords.hash_password(validate_password(password))
        exists = MlflowError(
            f"User (username={username}) already exists.", "RESOURCE_ALREADY_EXISTS"
        )
        try:
            with self.db.write() as session:
                if self._find(session, username) is not None:
                    raise exists
                row = AuthUser(
                    username=username,
                    password_hash=password_hash,
                    is_admin=is_admin,
                    source=source,
                    display_name=display_name,
                    created_at=now_ms(),
                )
                session.add(row)
                session.flush()
                return _user(row)
        except IntegrityError:
            raise exists from None

    @staticmethod
    def _find(session: Session, username: str) -> AuthUser | None:
        return session.scalars(sa.select(AuthUser).where(AuthUser.username == username)).first()

    def _load(self, session: Session, username: str) -> AuthUser:
        row = self._find(session, username)
        if row is None:
            raise not_found(f"User with username={username} not found")
        return row

    def find_user(self, username: str) -> User | None:
        with self.db.read() as session:
            row = self._find(session, username)
            return None if row is None else _user(row)

    def get_user(self, username: str) -> User:
        with self.db.read() as session:
            return _user(self._load(session, username))

    def list_users_with_roles(self) -> list[tuple[User, list[RoleInfo]]]:
        with self.db.read() as session:
            users = session.scalars(sa.select(AuthUser).order_by(AuthUser.id)).all()
            return [(_user(u), self._roles_of(session, u.id)) for u in users]

    def update_password(self, username: str, password: str) -> User:
        password_hash = passwords.hash_password(validate_password(password))
        with self.db.write() as session:
            row = self._load(session, username)
            row.password_hash = password_hash
            row.source = "password"
            return _user(row)

    def update_admin(self, username: str, is_admin: bool) -> User:
        with self.db.write() as session:
            row = self._load(session, username)
            row.is_admin = is_admin
            return _user(row)

    def delete_user(self, username: str) -> User:
        with self.db.write() as session:
            row = self._load(session, username)
            user = _user(row)
            synthetic = session.scalars(
                sa.select(AuthRole.id).where(AuthRole.name == synthetic_role_name(row.id))
            ).all()
            self._delete_roles(session, list(synthetic))
            session.execute(sa.delete(AuthUserRole).where(AuthUserRole.user_id == row.id))
            session.execute(sa.delete(AuthToken).where(AuthToken.user_id == row.id))
            session.delete(row)
            return user

    def ensure_entra_user(self, object_id: str, display_name: str | None) -> User:
        """The user an Entra ID token signs in (created at its first sign-in)."""
        with self.db.read() as session:
            row = self._find(session, object_id)
            if row is not None and row.display_name == display_name:
                return _user(row)
        try:
            with self.db.write() as session:
                row = self._find(session, object_id)
                if row is None:
                    row = AuthUser(
                        username=object_id,
                        password_hash=None,
                        is_admin=False,
                        source="entra",
                        display_name=display_name,
                        created_at=now_ms(),
                    )
                    session.add(row)
                else:
                    row.display_name = display_name
                session.flush()
                return _user(row)
        except IntegrityError:  # signed in twice at once: the other request created it
            return self.get_user(object_id)

    # Grants ----------------------------------------------------------------------------

    def grants_of(self, user_id: int, workspace: str = DEFAULT_WORKSPACE) -> list[Grant]:
        """The user's grants in `workspace` (through every role of theirs there)."""
        with self.db.read() as session:
            return self._grants(session, user_id, workspace)

    @staticmethod
    def _grants(session: Session, user_id: int, workspace: str = DEFAULT_WORKSPACE) -> list[Grant]:
        stmt = (
            sa.select(
                AuthRolePermission.resource_type,
                AuthRolePermission.resource_pattern,
                AuthRolePermission.permission,
            )
            .join(AuthRole, AuthRole.id == AuthRolePermission.role_id)
            .join(AuthUserRole, AuthUserRole.role_id == AuthRole.id)
            .where(AuthUserRole.user_id == user_id, AuthRole.workspace == workspace)
        )
        return [Grant(t, p, n) for t, p, n in fetch_tuples(session, stmt)]

    def _synthetic_role(self, session: Session, user_id: int, workspace: str) -> AuthRole:
        """The user's own role in `workspace` (`__user_<id>__`), where per-user grants live."""
        name = synthetic_role_name(user_id)
        role = session.scalars(
            sa.select(AuthRole).where(AuthRole.workspace == workspace, AuthRole.name == name)
        ).first()
        if role is None:
            role = AuthRole(name=name, workspace=workspace, description=None)
            session.add(role)
            session.flush()
        assigned = session.scalar(
            sa.select(AuthUserRole.id).where(
                AuthUserRole.user_id == user_id, AuthUserRole.role_id == role.id
            )
        )
        if assigned is None:
            session.add(AuthUserRole(user_id=user_id, role_id=role.id))
            session.flush()
        return role

    @staticmethod
    def _own_grant(
        session: Session, role_id: int, resource_type: str, pattern: str
    ) -> AuthRolePermission | None:
        return session.scalars(
            sa.select(AuthRolePermission).where(
                AuthRolePermission.role_id == role_id,
                AuthRolePermission.resource_type == resource_type,
                AuthRolePermission.resource_pattern == pattern,
            )
        ).first()

    def grant(
        self,
        username: str,
        resource_type: str,
        pattern: str,
        permission: str,
        workspace: str = DEFAULT_WORKSPACE,
    ) -> None:
        """`users/permissions/grant` (in the request's workspace): RESOURCE_ALREADY_EXISTS
        when the user has one already."""
        _reject_workspace(resource_type)
        validate_grant(resource_type, pattern, permission)
        duplicate = already_exists(
            f"Permission for user={username} on resource_type={resource_type}, "
            f"resource_id={pattern} already exists."
        )
        try:
            with self.db.write() as session:
                user = self._load(session, username)
                role = self._synthetic_role(session, user.id, workspace)
                if self._own_grant(session, role.id, resource_type, pattern) is not None:
                    raise duplicate
                session.add(
                    AuthRolePermission(
                        role_id=role.id,
                        resource_type=resource_type,
                        resource_pattern=pattern,
                        permission=permission,
                    )
                )
                session.flush()
        except IntegrityError:
            raise duplicate from None

    def grant_creator(
        self, user_id: int, resource_type: str, pattern: str, workspace: str = DEFAULT_WORKSPACE
    ) -> None:
        """MANAGE for the creator of an experiment or registered model (an upsert), in the
        workspace it was created in."""
        with self.db.write() as session:
            role = self._synthetic_role(session, user_id, workspace)
            existing = self._own_grant(session, role.id, resource_type, pattern)
            if existing is None:
                session.add(
                    AuthRolePermission(
                        role_id=role.id,
                        resource_type=resource_type,
                        resource_pattern=pattern,
                        permission="MANAGE",
                    )
                )
            else:
                existing.permission = "MANAGE"

    def revoke(
        self, username: str, resource_type: str, pattern: str, workspace: str = DEFAULT_WORKSPACE
    ) -> None:
        _reject_workspace(resource_type)
        validate_resource_type(resource_type)
        with self.db.write() as session:
            user = self._load(session, username)
            role = session.scalars(
                sa.select(AuthRole).where(
                    AuthRole.workspace == workspace,
                    AuthRole.name == synthetic_role_name(user.id),
                )
            ).first()
            row = (
                None if role is None else self._own_grant(session, role.id, resource_type, pattern)
            )
            if row is None:
                raise not_found(
                    f"Permission for user={username} on resource_type={resource_type}, "
                    f"resource_id={pattern} not found."
                )
            session.delete(row)

    def _synthetic_role_ids(self, session: Session, workspace: str) -> list[int]:
        rows = session.execute(
            sa.select(AuthRole.id, AuthRole.name).where(AuthRole.workspace == workspace)
        )
        return [rid for rid, name in rows if _SYNTHETIC.match(name)]

    def forget(self, resource_type: str, pattern: str, workspace: str = DEFAULT_WORKSPACE) -> None:
        """Drop the per-user grants on a deleted resource of `workspace` (a later one of the
        same name must not inherit them; the same name in another workspace is another
        resource); roles made by admins are left alone, as in MLflow."""
        with self.db.write() as session:
            role_ids = self._synthetic_role_ids(session, workspace)
            if role_ids:
                session.execute(
                    sa.delete(AuthRolePermission).where(
                        AuthRolePermission.role_id.in_(role_ids),
                        AuthRolePermission.resource_type.in_(types_for(resource_type)),
                        AuthRolePermission.resource_pattern == pattern,
                    )
                )

    def rename(
        self, resource_type: str, old: str, new: str, workspace: str = DEFAULT_WORKSPACE
    ) -> None:
        with self.db.write() as session:
            role_ids = self._synthetic_role_ids(session, workspace)
            if role_ids:
                session.execute(
                    sa.update(AuthRolePermission)
                    .where(
                        AuthRolePermission.role_id.in_(role_ids),
                        AuthRolePermission.resource_type.in_(types_for(resource_type)),
                        AuthRolePermission.resource_pattern == old,
                    )
                    .values(resource_pattern=new)
                )

    def permission_rows(self, username: str) -> tuple[bool, list[PermissionRow]]:
        """`users/permissions/list`: every grant of every role the user holds."""
        with self.db.read() as session:
            user = self._load(session, username)
            stmt = (
                sa.select(AuthRole, AuthRolePermission)
                .join(AuthUserRole, AuthUserRole.role_id == AuthRole.id)
                .join(AuthRolePermission, AuthRolePermission.role_id == AuthRole.id)
                .where(AuthUserRole.user_id == user.id)
                .order_by(AuthRole.id, AuthRolePermission.id)
            )
            rows: list[PermissionRow] = [
                {
                    "role_id": role.id,
                    "role_name": role.name,
                    "workspace": role.workspace,
                    "resource_type": rp.resource_type,
                    "resource_pattern": rp.resource_pattern,
                    "permission": rp.permission,
                }
                for role, rp in session.execute(stmt).tuples()
            ]
            return bool(user.is_admin), rows

    # Roles -----------------------------------------------------------------------------

    def create_role(self, name: str, workspace: str, description: str | None) -> RoleInfo:
        _reject_synthetic_name(name)
        exists = already_exists(f"Role (name={name}, workspace={workspace}) already exists.")
        try:
            with self.db.write() as session:
                found = session.scalar(
                    sa.select(AuthRole.id).where(
                        AuthRole.workspace == workspace, AuthRole.name == name
                    )
                )
                if found is not None:
                    raise exists
                role = AuthRole(name=name, workspace=workspace, description=description)
                session.add(role)
                session.flush()
                return role_json(session, role)
        except IntegrityError:
            raise exists from None

    @staticmethod
    def _role(session: Session, role_id: int) -> AuthRole:
        role = session.get(AuthRole, role_id)
        if role is None:
            raise not_found(f"Role with id={role_id} not found")
        return role

    def get_role(self, role_id: int) -> RoleInfo:
        with self.db.read() as session:
            return role_json(session, self._role(session, role_id))

    def role_workspace(self, role_id: int) -> str | None:
        with self.db.read() as session:
            role = session.get(AuthRole, role_id)
            return None if role is None else role.workspace

    def list_roles(self, workspaces: list[str] | None) -> list[RoleInfo]:
        with self.db.read() as session:
            stmt = sa.select(AuthRole).order_by(AuthRole.id)
            if workspaces is not None:
                stmt = stmt.where(AuthRole.workspace.in_(workspaces))
            return [role_json(session, r) for r in session.scalars(stmt).all()]

    def update_role(self, role_id: int, name: str | None, description: str | None) -> RoleInfo:
        if name is not None:
            _reject_synthetic_name(name)
        with self.db.write() as session:
            role = self._role(session, role_id)
            if name is not None:
                clash = session.scalar(
                    sa.select(AuthRole.id).where(
                        AuthRole.workspace == role.workspace,
                        AuthRole.name == name,
                        AuthRole.id != role_id,
                    )
                )
                if clash is not None:
                    raise already_exists(
                        f"Role with name={name} already exists in workspace={role.workspace}"
                    )
                role.name = name
            if description is not None:
                role.description = description
            session.flush()
            return role_json(session, role)

    def delete_role(self, role_id: int) -> None:
        with self.db.write() as session:
            self._role(session, role_id)
            self._delete_roles(session, [role_id])

    @staticmethod
    def _delete_roles(session: Session, role_ids: list[int]) -> None:
        if not role_ids:
            return
        session.execute(
            sa.delete(AuthRolePermission).where(AuthRolePermission.role_id.in_(role_ids))
        )
        session.execute(sa.delete(AuthUserRole).where(AuthUserRole.role_id.in_(role_ids)))
        session.execute(sa.delete(AuthRole).where(AuthRole.id.in_(role_ids)))

    def add_role_permission(
        self, role_id: int, resource_type: str, pattern: str, permission: str
    ) -> RolePermissionInfo:
        validate_grant(resource_type, pattern, permission)
        exists = already_exists(
            f"Role permission (role_id={role_id}, resource_type={resource_type}, "
            f"resource_pattern={pattern}) already exists."
        )
        try:
            with self.db.write() as session:
                self._role(session, role_id)
                if self._own_grant(session, role_id, resource_type, pattern) is not None:
                    raise exists
                row = AuthRolePermission(
                    role_id=role_id,
                    resource_type=resource_type,
                    resource_pattern=pattern,
                    permission=permission,
                )
                session.add(row)
                session.flush()
                return role_permission_json(row)
        except IntegrityError:
            raise exists from None

    @staticmethod
    def _role_permission(session: Session, role_permission_id: int) -> AuthRolePermission:
        row = session.get(AuthRolePermission, role_permission_id)
        if row is None:
            raise not_found(f"Role permission with id={role_permission_id} not found")
        return row

    def role_permission_workspace(self, role_permission_id: int) -> str | None:
        with self.db.read() as session:
            row = session.get(AuthRolePermission, role_permission_id)
            if row is None:
                return None
            role = session.get(AuthRole, row.role_id)
            return None if role is None else role.workspace

    def remove_role_permission(self, role_permission_id: int) -> None:
        with self.db.write() as session:
            session.delete(self._role_permission(session, role_permission_id))

    def list_role_permissions(self, role_id: int) -> list[RolePermissionInfo]:
        with self.db.read() as session:
            self._role(session, role_id)
            rows = session.scalars(
                sa.select(AuthRolePermission)
                .where(AuthRolePermission.role_id == role_id)
                .order_by(AuthRolePermission.id)
            )
            return [role_permission_json(r) for r in rows]

    def update_role_permission(
        self, role_permission_id: int, permission: str
    ) -> RolePermissionInfo:
        with self.db.write() as session:
            row = self._role_permission(session, role_permission_id)
            validate_grant(row.resource_type, row.resource_pattern, permission)
            row.permission = permission
            session.flush()
            return role_permission_json(row)

    def assign_role(self, username: str, role_id: int) -> AssignmentInfo:
        with self.db.write() as session:
            user = self._load(session, username)
            self._role(session, role_id)
            found = session.scalar(
                sa.select(AuthUserRole.id).where(
                    AuthUserRole.user_id == user.id, AuthUserRole.role_id == role_id
                )
            )
            if found is not None:
                raise already_exists(
                    f"User role assignment (user_id={user.id}, role_id={role_id}) already exists"
                )
            row = AuthUserRole(user_id=user.id, role_id=role_id)
            session.add(row)
            session.flush()
            return {"id": row.id, "user_id": row.user_id, "role_id": row.role_id}

    def unassign_role(self, username: str, role_id: int) -> None:
        with self.db.write() as session:
            user = self._load(session, username)
            row = session.scalars(
                sa.select(AuthUserRole).where(
                    AuthUserRole.user_id == user.id, AuthUserRole.role_id == role_id
                )
            ).first()
            if row is None:
                raise not_found(
                    f"User role assignment (user_id={user.id}, role_id={role_id}) not found"
                )
            session.delete(row)

    def _roles_of(self, session: Session, user_id: int) -> list[RoleInfo]:
        roles = session.scalars(
            sa.select(AuthRole)
            .join(AuthUserRole, AuthUserRole.role_id == AuthRole.id)
            .where(AuthUserRole.user_id == user_id)
            .order_by(AuthRole.id)
        ).all()
        return [role_json(session, r) for r in roles]

    def list_user_roles(self, username: str) -> list[RoleInfo]:
        with self.db.read() as session:
            return self._roles_of(session, self._load(session, username).id)

    def list_role_users(self, role_id: int) -> list[AssignmentInfo]:
        with self.db.read() as session:
            self._role(session, role_id)
            rows = session.scalars(
                sa.select(AuthUserRole)
                .where(AuthUserRole.role_id == role_id)
                .order_by(AuthUserRole.id)
            )
            return [{"id": r.id, "user_id": r.user_id, "role_id": r.role_id} for r in rows]

    def admin_workspaces(self, user_id: int) -> set[str]:
        """Workspaces where the user holds (`workspace`, `*`, MANAGE) through a role."""
        with self.db.read() as session:
            rows = session.scalars(
                sa.select(AuthRole.workspace)
                .join(AuthRolePermission, AuthRolePermission.role_id == AuthRole.id)
                .join(AuthUserRole, AuthUserRole.role_id == AuthRole.id)
                .where(
                    AuthUserRole.user_id == user_id,
                    AuthRolePermission.resource_type == WORKSPACE,
                    AuthRolePermission.resource_pattern == "*",
                    AuthRolePermission.permission == "MANAGE",
                )
                .distinct()
            )
            return set(rows)

    def accessible_workspaces(self, user_id: int) -> set[str]:
        """Workspaces the user sees in the workspace list (MLflow's
        `list_accessible_workspace_names`): any role assigned to them there made by an admin,
        or their own role there when it holds a workspace-wide grant (per-resource grants
        alone do not make a workspace visible)."""
        with self.db.read() as session:
            assigned = session.execute(
                sa.select(AuthRole.id, AuthRole.workspace, AuthRole.name)
                .join(AuthUserRole, AuthUserRole.role_id == AuthRole.id)
                .where(AuthUserRole.user_id == user_id)
            ).all()
            found = {ws for _, ws, name in assigned if not _SYNTHETIC.match(name)}
            own = [role_id for role_id, _, name in assigned if _SYNTHETIC.match(name)]
            if own:
                rows = session.execute(
                    sa.select(AuthRole.workspace)
                    .join(AuthRolePermission, AuthRolePermission.role_id == AuthRole.id)
                    .where(
                        AuthRole.id.in_(own),
                        AuthRolePermission.resource_type == WORKSPACE,
                        AuthRolePermission.resource_pattern == "*",
                        AuthRolePermission.permission.in_(("USE", "MANAGE")),
                    )
                )
                found.update(rows.scalars())
            return found

    def seed_workspace_roles(self, workspace: str) -> None:
        """The roles MLflow 3.17 seeds into a new workspace (`MLFLOW_RBAC_SEED_DEFAULT_ROLES`,
        on by default): `admin` (workspace MANAGE) and `user` (workspace USE), for an admin to
        assign. One transaction; a name already taken is left as it is."""
        with self.db.write() as session:
            for name, permission, description in SEEDED_ROLES:
                taken = session.scalar(
                    sa.select(AuthRole.id).where(
                        AuthRole.workspace == workspace, AuthRole.name == name
                    )
                )
                if taken is not None:
                    continue
                role = AuthRole(name=name, workspace=workspace, description=description)
                session.add(role)
                session.flush()
                session.add(
                    AuthRolePermission(
                        role_id=role.id,
                        resource_type=WORKSPACE,
                        resource_pattern="*",
                        permission=permission,
                    )
                )

    def drop_workspace(self, workspace: str) -> None:
        """Every role of a deleted workspace, with its grants and assignments (MLflow's
        `delete_workspace_permissions_for_workspace` and `delete_roles_for_workspace`)."""
        with self.db.write() as session:
            ids = session.scalars(sa.select(AuthRole.id).where(AuthRole.workspace == workspace))
            self._delete_roles(session, list(ids))

    def present_workspaces(self, user_id: int) -> set[str]:
        with self.db.read() as session:
            rows = session.scalars(
                sa.select(AuthRole.workspace)
                .join(AuthUserRole, AuthUserRole.role_id == AuthRole.id)
                .where(AuthUserRole.user_id == user_id)
                .distinct()
            )
            return set(rows)

    # Tokens ----------------------------------------------------------------------------

    def create_token(
        self, user_id: int, name: str, expires_at: int | None
    ) -> tuple[TokenInfo, str]:
        """A new token for the user: (its description, the secret, shown once)."""
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self.db.write() as session:
            row = AuthToken(
                user_id=user_id,
                name=name,
                token_hash=token_hash(secret),
                created_at=now_ms(),
                expires_at=expires_at,
            )
            session.add(row)
            session.flush()
            return token_json(row), secret

    def list_tokens(self, user_id: int) -> list[TokenInfo]:
        with self.db.read() as session:
            rows = session.scalars(
                sa.select(AuthToken).where(AuthToken.user_id == user_id).order_by(AuthToken.id)
            )
            return [token_json(r) for r in rows]

    def revoke_token(self, user_id: int, token_id: int) -> None:
        with self.db.write() as session:
            row = session.get(AuthToken, token_id)
            if row is None or row.user_id != user_id:
                raise not_found(f"Token with id={token_id} not found")
            session.delete(row)

    # Sign-in reads: every request runs one, so they are plain Core queries on one
    # connection (ORM objects and a second session cost ~1 ms a request: bench/auth.py), and
    # they bring the user's grants along, so the permission check needs no query of its own.

    def signing_in(self, username: str) -> User | None:
        """The user named `username` with their grants, or None (one query)."""
        with self.db.read() as session:
            rows = fetch_tuples(session, _WITH_GRANTS.where(AuthUser.username == username))
        if not rows:
            return None
        user_id, name, is_admin, password_hash, source, display_name = rows[0][:6]
        grants = tuple(Grant(t, p, n) for *_, t, p, n in rows if t is not None)
        return User(user_id, name, bool(is_admin), password_hash, source, display_name, grants)

    def user_for_token(self, secret: str, now: int) -> User | None:
        """The user a token signs in (with their grants), if it exists and has not expired."""
        with self.db.read() as session:
            rows = fetch_tuples(
                session,
                _USER_COLUMNS.add_columns(AuthToken.expires_at)
                .join(AuthToken, AuthToken.user_id == AuthUser.id)
                .where(AuthToken.token_hash == token_hash(secret)),
            )
            if not rows:
                return None
            *user, expires_at = rows[0]
            if expires_at is not None and expires_at <= now:
                return None
            return self._with_grants(session, tuple(user))

    def _with_grants(self, session: Session, row: tuple[Any, ...]) -> User:
        user_id, username, is_admin, password_hash, source, display_name = row
        grants = () if is_admin else tuple(self._grants(session, user_id))
        return User(user_id, username, bool(is_admin), password_hash, source, display_name, grants)


_USER_COLUMNS = sa.select(
    AuthUser.id,
    AuthUser.username,
    AuthUser.is_admin,
    AuthUser.password_hash,
    AuthUser.source,
    AuthUser.display_name,
)


# A user's row with one row per grant of theirs in the default workspace (or one with NULLs).
_HELD = (
    sa.select(
        AuthUserRole.user_id,
        AuthRolePermission.resource_type,
        AuthRolePermission.resource_pattern,
        AuthRolePermission.permission,
    )
    .join(AuthRole, AuthRole.id == AuthUserRole.role_id)
    .join(AuthRolePermission, AuthRolePermission.role_id == AuthRole.id)
    .where(AuthRole.workspace == DEFAULT_WORKSPACE)
    .subquery()
)
_WITH_GRANTS = _USER_COLUMNS.add_columns(
    _HELD.c.resource_type, _HELD.c.resource_pattern, _HELD.c.permission
).outerjoin(_HELD, _HELD.c.user_id == AuthUser.id)


def token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def token_json(row: AuthToken) -> TokenInfo:
    return {
        "id": row.id,
        "name": row.name,
        "created_at": row.created_at,
        "expires_at": row.expires_at,
    }


def _reject_workspace(resource_type: str) -> None:
    if resource_type == WORKSPACE:
        raise invalid_parameter(
            "resource_type 'workspace' is not supported by the per-user permission "
            "convenience APIs. Use set_workspace_permission / "
            "delete_workspace_permission for workspace-wide grants."
        )


def _reject_synthetic_name(name: str) -> None:
    if name.startswith(_SYNTHETIC_PREFIX):
        raise invalid_parameter(
            f"Role name {name!r} uses the reserved '__user_' prefix, which is held for the "
            "per-user permission representation. Choose a different name."
        )
