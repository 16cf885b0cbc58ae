"""Request messages and answers of the user, permission, role and token API (MLflow 3.17's
basic-auth app, `mlflow.server.auth`, plus Tether's personal access tokens)."""

from __future__ import annotations

from typing import ClassVar, NotRequired

from typing_extensions import TypedDict

from tether.wire import Bool, Int64, RequestModel, Str


class Username(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("username",)
    username: Str | None = None


class CreateUser(RequestModel):
    username: Str | None = None
    password: Str | None = None


class UpdatePassword(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("username", "password")
    username: Str | None = None
    password: Str | None = None
    current_password: Str | None = None


class UpdateAdmin(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("username", "is_admin")
    username: Str | None = None
    is_admin: Bool | None = None


class ResourcePermission(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("username", "resource_type", "resource_id")
    username: Str | None = None
    resource_type: Str | None = None
    resource_id: Str | None = None


class GrantPermission(ResourcePermission):
    required: ClassVar[tuple[str, ...]] = (
        "username",
        "resource_type",
        "resource_id",
        "permission",
    )
    permission: Str | None = None


class CreateRole(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("name", "workspace")
    name: Str | None = None
    workspace: Str | None = None
    description: Str | None = None


class RoleId(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("role_id",)
    role_id: Int64 | None = None


class ListRoles(RequestModel):
    workspace: list[Str] = []


class UpdateRole(RoleId):
    name: Str | None = None
    description: Str | None = None


class AddRolePermission(RoleId):
    required: ClassVar[tuple[str, ...]] = (
        "role_id",
        "resource_type",
        "resource_pattern",
        "permission",
    )
    resource_type: Str | None = None
    resource_pattern: Str | None = None
    permission: Str | None = None


class RolePermissionId(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("role_permission_id",)
    role_permission_id: Int64 | None = None


class UpdateRolePermission(RolePermissionId):
    required: ClassVar[tuple[str, ...]] = ("role_permission_id", "permission")
    permission: Str | None = None


class RoleAssignment(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("username", "role_id")
    username: Str | None = None
    role_id: Int64 | None = None


class CreateToken(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("name",)
    name: Str | None = None
    expires_in_days: Int64 | None = None  # none: the token does not expire
    username: Str | None = None  # an admin may create one for another user


class ListTokens(RequestModel):
    username: Str | None = None


class RevokeToken(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("token_id",)
    token_id: Int64 | None = None
    username: Str | None = None


# Answers ----------------------------------------------------------------------------------


class UserInfo(TypedDict):
    id: int
    username: str
    is_admin: bool


class UserResponse(TypedDict):
    user: UserInfo


class RolePermissionInfo(TypedDict):
    id: int
    role_id: int
    resource_type: str
    resource_pattern: str
    permission: str


class RoleInfo(TypedDict):
    id: int
    name: str
    workspace: str
    description: str | None
    permissions: list[RolePermissionInfo]


class ListedUser(UserInfo):
    roles: list[RoleInfo]


class ListUsersResponse(TypedDict):
    users: list[ListedUser]


class CurrentUserResponse(TypedDict):
    user: UserInfo
    is_basic_auth: bool


class PermissionRow(TypedDict):
    role_id: int
    role_name: str
    workspace: str
    resource_type: str
    resource_pattern: str
    permission: str


class UserPermissionsResponse(TypedDict):
    is_admin: bool
    permissions: list[PermissionRow]


class GetUserPermissionResponse(TypedDict):
    allowed: bool
    permission: str


class RoleResponse(TypedDict):
    role: RoleInfo


class RolesResponse(TypedDict):
    roles: list[RoleInfo]


class RolePermissionResponse(TypedDict):
    role_permission: RolePermissionInfo


class RolePermissionsResponse(TypedDict):
    role_permissions: list[RolePermissionInfo]


class AssignmentInfo(TypedDict):
    id: int
    user_id: int
    role_id: int


class AssignmentResponse(TypedDict):
    assignment: AssignmentInfo


class AssignmentsResponse(TypedDict):
    assignments: list[AssignmentInfo]


class TokenInfo(TypedDict):
    id: int
    name: str
    created_at: int
    expires_at: int | None


class CreateTokenResponse(TypedDict):
    token: TokenInfo
    secret: NotRequired[str]  # shown once: only its hash is kept


class TokensResponse(TypedDict):
    tokens: list[TokenInfo]
