"""Authentication settings: Tether's `TETHER_*` variables, then MLflow's own configuration.

An existing MLflow auth configuration works as it is: the ini file named by
`MLFLOW_AUTH_CONFIG_PATH` (or `TETHER_AUTH_CONFIG_PATH`), section `[mlflow]`:
`default_permission`, `admin_username`, `admin_password`, `database_uri`,
`auth_cache_ttl_seconds`, `grant_default_workspace_access` (with workspaces on: users with no
role in the `default` workspace get the default permission there); and
`MLFLOW_AUTH_ADMIN_USERNAME` / `MLFLOW_AUTH_ADMIN_PASSWORD`, which win over the file when set
(even empty, as in MLflow). `TETHER_AUTH_ADMIN_*` and `TETHER_AUTH_DEFAULT_PERMISSION` win
over both. `MLFLOW_RBAC_SEED_DEFAULT_ROLES` (default on) seeds the `admin` and `user` roles
into each new workspace, as MLflow does. The user store lives in Tether's own database unless
the file names another (`database_uri`).

There is no default admin password: the first admin is created from configuration at the
first start, and with none configured Tether refuses to start (`BootstrapError`).
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tether.auth.entra import EntraConfig
from tether.auth.permissions import ALL
from tether.config import Settings

APP_NAME = "basic-auth"
DEFAULT_ADMIN_USERNAME = "admin"  # MLflow's basic_auth.ini names this one
MLFLOW_BASIC_AUTH_FUNCTION = "mlflow.server.auth:authenticate_request_basic_auth"


class ConfigError(ValueError):
    """A configuration that cannot work, with what to change."""


@dataclass(frozen=True)
class AuthConfig:
    default_permission: str = "READ"
    admin_username: str | None = DEFAULT_ADMIN_USERNAME
    admin_password: str | None = field(default=None, repr=False)
    database_uri: str | None = None
    cache_seconds: float = 60.0
    max_failures_per_user: int = 10
    max_failures_per_client: int = 50
    failure_window_seconds: float = 300.0
    entra: EntraConfig | None = None
    grant_default_workspace_access: bool = False
    seed_default_roles: bool = True


def enabled(settings: Settings) -> bool:
    return settings.app_name == APP_NAME


def load(settings: Settings, environ: Mapping[str, str] | None = None) -> AuthConfig:
    env = os.environ if environ is None else environ
    ini = _read_ini(settings, env)

    def pick(tether: str | None, mlflow_env: str, key: str) -> str | None:
        if tether is not None:
            return tether or None
        if mlflow_env in env:  # set, even empty, wins over the file (MLflow's rule)
            return env[mlflow_env] or None
        return ini.get(key) or None

    function = ini.get("authorization_function")
    if function and function != MLFLOW_BASIC_AUTH_FUNCTION:
        raise ConfigError(
            f"authorization_function = {function}: Tether does not run MLflow's pluggable "
            "authorization functions; it signs in with HTTP basic, access tokens and "
            "Microsoft Entra ID (TETHER_ENTRA_*). Remove the line to use those."
        )
    password = settings.auth_admin_password
    default = (settings.auth_default_permission or ini.get("default_permission") or "READ").upper()
    if default not in ALL or default == "DENY":
        raise ConfigError(
            f"default_permission {default!r} is not one of READ, USE, EDIT, MANAGE, NO_PERMISSIONS"
        )
    try:
        open_default = _boolean(ini.get("grant_default_workspace_access"), False)
        seed = _boolean(env.get("MLFLOW_RBAC_SEED_DEFAULT_ROLES"), True)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    cache = settings.auth_cache_seconds
    if cache is None and ini.get("auth_cache_ttl_seconds"):
        cache = float(ini["auth_cache_ttl_seconds"])
    return AuthConfig(
        default_permission=default,
        admin_username=pick(
            settings.auth_admin_username, "MLFLOW_AUTH_ADMIN_USERNAME", "admin_username"
        )
        or (None if "MLFLOW_AUTH_ADMIN_USERNAME" in env else DEFAULT_ADMIN_USERNAME),
        admin_password=pick(
            None if password is None else password.get_secret_value(),
            "MLFLOW_AUTH_ADMIN_PASSWORD",
            "admin_password",
        ),
        database_uri=ini.get("database_uri") or None,
        cache_seconds=60.0 if cache is None else cache,
        max_failures_per_user=settings.auth_max_failures_per_user,
        max_failures_per_client=settings.auth_max_failures_per_client,
        failure_window_seconds=settings.auth_failure_window_seconds,
        entra=entra_config(settings),
        grant_default_workspace_access=open_default,
        seed_default_roles=seed,
    )


_BOOLEANS = {"1": True, "yes": True, "true": True, "on": True}
_BOOLEANS.update({"0": False, "no": False, "false": False, "off": False})


def _boolean(value: str | None, fallback: bool) -> bool:
    """configparser's booleans (and MLflow's environment variables'), case-insensitive."""
    if value is None or not value.strip():
        return fallback
    found = _BOOLEANS.get(value.strip().lower())
    if found is None:
        raise ValueError(f"{value!r} is not a boolean (true/false, yes/no, on/off, 1/0)")
    return found


def _read_ini(settings: Settings, env: Mapping[str, str]) -> dict[str, str]:
    path = settings.auth_config_path or env.get("MLFLOW_AUTH_CONFIG_PATH")
    if not path:
        return {}
    if not Path(path).is_file():
        raise ConfigError(f"the auth configuration file {path} does not exist")
    parser = configparser.ConfigParser()
    parser.read(path)
    if not parser.has_section("mlflow"):
        raise ConfigError(f"the auth configuration file {path} has no [mlflow] section")
    return dict(parser["mlflow"])


def _list(value: str | None) -> tuple[str, ...]:
    return tuple(item.strip() for item in (value or "").split(",") if item.strip())


def entra_config(settings: Settings) -> EntraConfig | None:
    if not settings.entra_tenant_id:
        return None
    audiences = _list(settings.entra_audiences)
    if not audiences:
        raise ConfigError(
            "TETHER_ENTRA_TENANT_ID is set but TETHER_ENTRA_AUDIENCES is not: name the app "
            "registration's client id (and/or its api://... identifier URI)"
        )
    tenant = settings.entra_tenant_id
    authority = settings.entra_authority.rstrip("/")
    metadata = (
        settings.entra_metadata_url or f"{authority}/{tenant}/v2.0/.well-known/openid-configuration"
    )
    issuers = _list(settings.entra_issuers)
    if not settings.entra_metadata_url:
        issuers = (*issuers, f"https://sts.windows.net/{tenant}/")  # v1 access tokens
    mapping: dict[str, str] = {}
    for item in _list(settings.entra_default_permissions):
        claim, sep, permission = item.rpartition("=")
        permission = permission.strip().upper()
        if not sep or not claim.strip() or permission not in ("READ", "USE", "EDIT", "MANAGE"):
            raise ConfigError(
                f"TETHER_ENTRA_DEFAULT_PERMISSIONS: {item!r} is not <group id or app role>="
                "READ|USE|EDIT|MANAGE"
            )
        mapping[claim.strip()] = permission
    return EntraConfig(
        tenant_id=tenant,
        audiences=audiences,
        metadata_url=metadata,
        issuers=issuers,
        admin_groups=frozenset(_list(settings.entra_admin_groups)),
        admin_roles=frozenset(_list(settings.entra_admin_roles)),
        default_permissions=mapping,
        jwks_cache_seconds=settings.entra_jwks_cache_seconds,
        refresh_floor_seconds=settings.entra_jwks_refresh_floor_seconds,
    )
