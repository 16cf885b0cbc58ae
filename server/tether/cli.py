"""The `tether` command. `tether serve` takes `mlflow server`'s flags so scripts carry over."""

from __future__ import annotations

import logging
import os
import signal
import sys
import tempfile
from pathlib import Path
from types import FrameType
from typing import Any

import click

from tether import MLFLOW_VERSION, __version__
from tether.config import Settings
from tether.deploy import commands as deploy_commands
from tether.errors import MlflowError
from tether.observability import logs, prometheus_dir
from tether.sync import binding_commands
from tether.sync import commands as sync_commands
from tether.ui import commands as ui_commands


def _export(env: dict[str, Any]) -> None:
    """Hand options to worker processes through the environment Settings reads."""
    for key, value in env.items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        os.environ[f"TETHER_{key.upper()}"] = str(value)


def _static_prefix(_: click.Context, __: click.Parameter, value: str | None) -> str | None:
    """mlflow server's rules: starts with "/", does not end with one, no braces."""
    if value is None:
        return None
    if not value.startswith("/"):
        raise click.BadParameter("must begin with a '/'")
    if value.endswith("/"):
        raise click.BadParameter("should not end with a '/'")
    if "{" in value or "}" in value:
        raise click.BadParameter("must not contain '{' or '}'")
    return value


def _backend_option(func: Any) -> Any:
    return click.option(
        "--backend-store-uri",
        default=None,
        help="sqlite:///path or postgresql://user:pass@host:port/db "
        "(default: SQLite in the data dir). Env: TETHER_BACKEND_STORE_URI.",
    )(func)


@click.group()
@click.version_option(
    __version__,
    prog_name="tether",
    message=f"%(prog)s, version %(version)s (MLflow API {MLFLOW_VERSION})",
)
def main() -> None:
    """Tether: an MLflow-compatible tracking server tethered to Azure Machine Learning."""


@main.command()
@click.option("--host", "-h", default=None, help="Interface to bind (default 127.0.0.1).")
@click.option("--port", "-p", type=int, default=None, help="Port to listen on (default 5000).")
@click.option("--workers", "-w", type=int, default=None, help="Worker processes (default 1).")
@_backend_option
@click.option(
    "--default-artifact-root",
    default=None,
    help="Artifact location for new experiments (default mlflow-artifacts: when serving).",
)
@click.option(
    "--artifacts-destination",
    default=None,
    help="Where proxied artifacts are stored (default: <data dir>/artifacts).",
)
@click.option(
    "--serve-artifacts/--no-serve-artifacts",
    default=None,
    help="Proxy artifact uploads and downloads (default on).",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder for the embedded default store and artifacts (default ./tether-data).",
)
@click.option(
    "--azureml-workspace",
    default=None,
    help="Sync into this Azure ML workspace: its azureml:// tracking URI or "
    "subscriptions/<sub>/resourceGroups/<rg>/workspaces/<ws> (sync is off without it).",
)
@click.option("--azureml-endpoint", default=None, help="Override the workspace's https base URL.")
@click.option(
    "--enable-workspaces",
    is_flag=True,
    default=None,
    help="MLflow 3.17's workspaces: experiments and models isolated per workspace, chosen by "
    "the X-MLFLOW-WORKSPACE header (mlflow.set_workspace). Env: TETHER_ENABLE_WORKSPACES.",
)
@click.option(
    "--workspace-store-uri",
    envvar="MLFLOW_WORKSPACE_STORE_URI",
    default=None,
    help="As mlflow server's: where workspaces are kept. Tether keeps them in the backend "
    "store, so this may only name the backend store (anything else is refused, saying why); "
    "ignored without --enable-workspaces. Env: TETHER_WORKSPACE_STORE_URI.",
)
@click.option(
    "--expose-prometheus",
    default=None,
    help="Serve Prometheus metrics at /metrics, keeping the workers' samples in this directory "
    "(created if missing; a previous run's sample files are removed at start). "
    "Env: TETHER_EXPOSE_PROMETHEUS.",
)
@click.option(
    "--ui-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="The MLflow UI's build directory (default: `tether ui install`'s copy, else an "
    "installed mlflow package of the pinned version). Env: TETHER_UI_DIR.",
)
@click.option(
    "--static-prefix",
    default=None,
    callback=_static_prefix,
    help="Serve everything under this path prefix (e.g. /mlflow), as mlflow server does. "
    "Env: TETHER_STATIC_PREFIX.",
)
@click.option(
    "--allowed-hosts",
    default=None,
    help="Comma-separated Host headers accepted (fnmatch patterns; * for any). Default: "
    "loopback and private addresses. Env: TETHER_ALLOWED_HOSTS.",
)
@click.option(
    "--cors-allowed-origins",
    default=None,
    help="Comma-separated origins allowed cross-origin, writes included (e.g. "
    "https://tether.example.com; * for any). Default: loopback only. "
    "Env: TETHER_CORS_ALLOWED_ORIGINS.",
)
@click.option(
    "--x-frame-options",
    default=None,
    help="X-Frame-Options header (default SAMEORIGIN; NONE to omit). Env: TETHER_X_FRAME_OPTIONS.",
)
@click.option(
    "--disable-security-middleware",
    is_flag=True,
    default=None,
    help="No Host check, CORS rules or security headers (testing only). "
    "Env: TETHER_DISABLE_SECURITY_MIDDLEWARE.",
)
@click.option(
    "--app-name",
    type=click.Choice(["basic-auth"]),
    default=None,
    help="basic-auth: users, permissions, access tokens and Entra ID sign-in (as mlflow "
    "server --app-name basic-auth). Off by default. Env: TETHER_APP_NAME.",
)
@click.option(
    "--log-format",
    type=click.Choice(logs.FORMATS),
    default=None,
    help="text (default) or json: one object per line. Env: TETHER_LOG_FORMAT.",
)
@click.option(
    "--log-level",
    type=click.Choice(logs.LEVELS, case_sensitive=False),
    default=None,
    help="Default info. Env: TETHER_LOG_LEVEL.",
)
def serve(**options: Any) -> None:
    """Run the tracking server (migrating the database first)."""
    import uvicorn

    _export(options)
    settings = Settings()
    log_level = settings.log_level.lower()
    logs.configure(settings.log_format, log_level)
    if settings.expose_prometheus:  # before any worker (or this process) loads the app
        prometheus_dir.prepare(settings.expose_prometheus)
    _upgrade_or_exit(settings)
    _check_authentication(settings)
    _check_workspace_store(settings)
    # uvicorn re-raises the SIGTERM it shut down gracefully on: make that a clean exit (0),
    # not a death by signal (143), as with --workers N.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    uvicorn.run(
        "tether.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        timeout_graceful_shutdown=settings.graceful_timeout,
        timeout_keep_alive=settings.timeout_keep_alive,
        log_config=logs.log_config(settings.log_format, log_level),
        log_level=log_level,
        access_log=False,  # Tether writes its own, with the request id (observability)
    )


_LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


def _check_authentication(settings: Settings) -> None:
    """With --app-name basic-auth: create the first admin from configuration now, or stop
    with what to set (before any worker starts). Without it: warn loudly when the server
    listens beyond loopback, where anyone who reaches the port can read and delete all."""
    from tether.auth import config as auth_config

    log = logging.getLogger("tether")
    if not auth_config.enabled(settings):
        if settings.host not in _LOOPBACK and not settings.host.startswith("127."):
            log.warning(
                "AUTHENTICATION IS OFF and Tether listens on %s: anyone who can reach port "
                "%d can read, change and delete every experiment, run, model and artifact. "
                "Turn it on with --app-name basic-auth (README: Authentication), or bind to "
                "127.0.0.1 behind an authenticating proxy.",
                settings.host,
                settings.port,
            )
        return
    from tether.auth.install import BootstrapError, bootstrap_admin
    from tether.auth.store import AuthStore
    from tether.db import migrate
    from tether.db.engine import Database

    try:
        config = auth_config.load(settings)
    except auth_config.ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    uri = config.database_uri or settings.resolved_backend_store_uri()
    database = Database(uri)
    try:
        if config.database_uri:
            migrate.upgrade(database)
        bootstrap_admin(config, AuthStore(database))
    except BootstrapError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    finally:
        database.dispose()
    log.info("authentication is on (basic-auth); default permission %s", config.default_permission)


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


@main.group()
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
@_backend_option
def db_upgrade(backend_store_uri: str | None) -> None:
    """Apply all pending migrations."""
    _export({"backend_store_uri": backend_store_uri})
    _upgrade_or_exit(Settings())
    click.echo("database is up to date")


def _check_workspace_store(settings: Settings) -> None:
    from tether.workspaces import store_uri

    try:
        warning = store_uri.check(
            settings.workspace_store_uri,
            settings.resolved_backend_store_uri(),
            settings.enable_workspaces,
        )
    except store_uri.WorkspaceStoreError as exc:
        raise SystemExit(f"tether: {exc}") from None
    if warning:
        click.echo(warning, err=True)


def _upgrade_or_exit(settings: Settings) -> None:
    from tether.db import migrate
    from tether.db.engine import Database

    try:
        database = Database(settings.resolved_backend_store_uri())
    except MlflowError as exc:
        raise click.UsageError(exc.message) from None
    try:
        migrate.upgrade(database)
    except Exception as exc:  # the operator needs the reason, not a traceback
        click.echo(f"error: cannot migrate the database: {exc}", err=True)
        sys.exit(1)
    finally:
        database.dispose()


@main.command("openapi")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the document to this file (default: standard output).",
)
def openapi_command(output: str | None) -> None:
    """Print the OpenAPI document of the HTTP API (committed as openapi/openapi.json)."""
    text = openapi_document()
    if output is None:
        click.echo(text, nl=False)
    else:
        with open(output, "w", encoding="utf-8") as file:
            file.write(text)


def openapi_document() -> str:
    """The document of an app built on default settings, whatever TETHER_* variables are set
    (the same document everywhere), in a throwaway data directory (no store is touched)."""
    from tether.api import openapi
    from tether.app import create_app

    with tempfile.TemporaryDirectory(prefix="tether-openapi-") as tmp:
        settings = Settings.model_construct(data_dir=Path(tmp), auto_migrate=False)
        return openapi.render(openapi.build(create_app(settings)))


@main.group("auth")
def auth_group() -> None:
    """User store maintenance (authentication: README "Authentication")."""


@auth_group.command("set-password")
@_backend_option
@click.argument("username")
@click.password_option(
    "--password", prompt="New password", help="Prompted for (hidden) when not given."
)
def auth_set_password(backend_store_uri: str | None, username: str, password: str) -> None:
    """Set USERNAME's password, or create USERNAME as an admin if there is no such user:
    the way back in when every admin password is lost. Reads the same configuration as
    `tether serve --app-name basic-auth` (its user store's database)."""
    from tether.auth import config as auth_config
    from tether.auth.store import AuthStore
    from tether.db import migrate
    from tether.db.engine import Database

    _export({"backend_store_uri": backend_store_uri})
    settings = Settings()
    try:
        config = auth_config.load(settings)
    except auth_config.ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    database = Database(config.database_uri or settings.resolved_backend_store_uri())
    try:
        migrate.upgrade(database)
        store = AuthStore(database)
        if store.find_user(username) is None:
            store.create_user(username, password, is_admin=True)
            click.echo(f"created admin user {username}")
        else:
            store.update_password(username, password)
            click.echo(f"password of {username} changed")
    except MlflowError as exc:
        raise click.UsageError(exc.message) from None
    finally:
        database.dispose()


main.add_command(sync_commands.sync)
main.add_command(binding_commands.workspaces)
main.add_command(deploy_commands.deployments)
main.add_command(ui_commands.ui)

if __name__ == "__main__":
    main()
