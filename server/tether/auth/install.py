"""Wire authentication into the app (called by the composition root, `tether.app`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from fastapi import FastAPI, Request

from tether.api.access import AuthenticationRequired
from tether.api.responses import JsonResponse
from tether.api.routing import Router
from tether.auth import endpoints
from tether.auth.config import AuthConfig, ConfigError, enabled, load
from tether.auth.credentials import Authenticator, CredentialCache, FailureLimiter
from tether.auth.endpoints import AuthState
from tether.auth.entra import EntraValidator
from tether.auth.gate import PermissionGate
from tether.auth.middleware import Authentication
from tether.auth.store import AuthStore, validate_password
from tether.config import Settings
from tether.db import migrate
from tether.db.engine import Database
from tether.errors import MlflowError

log = logging.getLogger("tether.auth")


class BootstrapError(RuntimeError):
    """Authentication cannot start as configured; the message says what to set."""


@dataclass
class Installed:
    config: AuthConfig
    store: AuthStore
    database: Database  # the user store's (Tether's own unless the ini names another)
    owns_database: bool

    def start(self, auto_migrate: bool) -> None:
        if self.owns_database and auto_migrate:
            migrate.upgrade(self.database)
        bootstrap_admin(self.config, self.store)

    def close(self) -> None:
        if self.owns_database:
            self.database.dispose()


def routers(settings: Settings) -> tuple[Router, ...]:
    return endpoints.ROUTERS if enabled(settings) else ()


def install(app: FastAPI, settings: Settings, db: Database) -> Installed | None:
    """Authentication on the app when `--app-name basic-auth`; None (and nothing changed)
    otherwise. Add the routers of `routers(settings)` to the app's before calling this."""
    if not enabled(settings):
        return None
    try:
        config = load(settings)
    except ConfigError as exc:
        raise BootstrapError(str(exc)) from None
    owns = (
        bool(config.database_uri) and config.database_uri != settings.resolved_backend_store_uri()
    )
    database = Database(config.database_uri) if owns and config.database_uri else db
    store = AuthStore(database)
    cache = CredentialCache(config.cache_seconds)
    limiter = FailureLimiter(
        config.max_failures_per_user,
        config.max_failures_per_client,
        config.failure_window_seconds,
    )
    entra = EntraValidator(config.entra, store) if config.entra is not None else None
    gate = PermissionGate(
        store,
        db,
        config.default_permission,
        workspaces=settings.enable_workspaces,
        grant_default_workspace_access=config.grant_default_workspace_access,
    )
    gate.seed_roles = config.seed_default_roles
    app.state.gate = gate
    app.state.auth = AuthState(store, gate, cache)
    app.add_middleware(Authentication, authenticator=Authenticator(store, cache, limiter, entra))

    @app.exception_handler(AuthenticationRequired)
    async def _challenge(_: Request, exc: AuthenticationRequired) -> JsonResponse:
        return JsonResponse(exc.to_body(), status_code=401, headers=exc.headers)

    return Installed(config, store, database, owns)


def bootstrap_admin(config: AuthConfig, store: AuthStore) -> None:
    """Create the configured admin at the first start (MLflow's `create_admin_user`)."""
    username = config.admin_username
    if not username:
        raise BootstrapError(
            "Authentication needs a username for the admin user, but none is configured. Set "
            "TETHER_AUTH_ADMIN_USERNAME (or MLFLOW_AUTH_ADMIN_USERNAME, or admin_username in "
            "the file MLFLOW_AUTH_CONFIG_PATH names) and start again."
        )
    if store.find_user(username) is not None:
        return
    if not config.admin_password:
        raise BootstrapError(
            f"Authentication needs a password to create the admin user '{username}', but none "
            "is configured: Tether has no default password. Set TETHER_AUTH_ADMIN_PASSWORD (or "
            "MLFLOW_AUTH_ADMIN_PASSWORD, or admin_password in the file MLFLOW_AUTH_CONFIG_PATH "
            "names) and start again; it is read only to create the admin, once."
        )
    try:
        validate_password(config.admin_password)
    except MlflowError as exc:
        raise BootstrapError(
            f"The configured password for the admin user '{username}' is invalid: {exc.message}"
        ) from None
    try:
        store.create_user(username, config.admin_password, is_admin=True)
        log.info("created the admin user %r", username)
    except MlflowError:
        if store.find_user(username) is None:  # not another worker's concurrent creation
            raise
