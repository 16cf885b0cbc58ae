"""Users, roles, grants and access tokens of the authentication app (`tether.auth`).

The shape is MLflow 3.17's basic-auth store, so its API answers the same ids and names:
a grant is a `(resource_type, resource_pattern, permission)` row of a role, users hold roles,
and a user's own grants live in a hidden per-user role named `__user_<id>__` in the
`default` workspace. Passwords and tokens are stored hashed, never in clear.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tether.db.models.base import Base


class AuthUser(Base):
    """A user: `password_hash` is None for users who sign in through Microsoft Entra ID
    (`source` "entra", `username` their object id, `display_name` their UPN or name)."""

    __tablename__ = "auth_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(256), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(512))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str] = mapped_column(String(16), default="password")
    display_name: Mapped[str | None] = mapped_column(String(256))
    created_at: Mapped[int] = mapped_column(BigInteger)


class AuthRole(Base):
    __tablename__ = "auth_roles"
    __table_args__ = (UniqueConstraint("workspace", "name", name="uq_auth_roles_workspace_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255))
    workspace: Mapped[str] = mapped_column(String(63))
    description: Mapped[str | None] = mapped_column(String(1024))


class AuthRolePermission(Base):
    __tablename__ = "auth_role_permissions"
    __table_args__ = (
        UniqueConstraint(
            "role_id", "resource_type", "resource_pattern", name="uq_auth_role_permissions"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    role_id: Mapped[int] = mapped_column(ForeignKey("auth_roles.id", ondelete="CASCADE"))
    resource_type: Mapped[str] = mapped_column(String(64))
    resource_pattern: Mapped[str] = mapped_column(String(255))
    permission: Mapped[str] = mapped_column(String(32))


class AuthUserRole(Base):
    __tablename__ = "auth_user_roles"
    __table_args__ = (
        UniqueConstraint("user_id", "role_id", name="uq_auth_user_roles"),
        Index("ix_auth_user_roles_role", "role_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("auth_users.id", ondelete="CASCADE"))
    role_id: Mapped[int] = mapped_column(ForeignKey("auth_roles.id", ondelete="CASCADE"))


class AuthToken(Base):
    """A personal access token: only the SHA-256 of its secret is kept (the secret is 256
    random bits, so a fast hash is as safe as a KDF and lets a request find it by index)."""

    __tablename__ = "auth_tokens"
    __table_args__ = (Index("ix_auth_tokens_user", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("auth_users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(256))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int | None] = mapped_column(BigInteger)
