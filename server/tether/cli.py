"""The `tether` command. `tether serve` takes `mlflow server`'s flags so scripts carry over."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from tether import __version__
from tether.config import Settings
from tether.errors import MlflowError
from tether.sync import commands as sync_commands


def _export(env: dict[str, Any]) -> None:
    """Hand options to worker processes through the environment Settings reads."""
    for key, value in env.items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        os.environ[f"TETHER_{key.upper()}"] = str(value)


def _backend_option(func: Any) -> Any:
    return click.option(
        "--backend-store-uri",
        default=None,
        help="sqlite:///path or postgresql://user:pass@host:port/db "
        "(default: SQLite in the data dir). Env: TETHER_BACKEND_STORE_URI.",
    )(func)


@click.group()
@click.version_option(__version__, prog_name="tether")
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
def serve(**options: Any) -> None:
    """Run the tracking server (migrating the database first)."""
    import uvicorn

    _export(options)
    settings = Settings()
    _upgrade_or_exit(settings)
    uvicorn.run(
        "tether.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level="info",
        access_log=False,
    )


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


main.add_command(sync_commands.sync)

if __name__ == "__main__":
    main()
