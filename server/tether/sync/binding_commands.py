"""`tether workspaces bind | unbind | list`: each MLflow workspace's Azure ML workspace, set in
the store a running server reads (it takes effect within seconds, no restart)."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from tether.errors import MlflowError
from tether.sync import bindings, destinations
from tether.sync.commands import (
    EXIT_ERROR,
    _database,
    _settings,
    artifacts_option,
    backend_option,
)
from tether.sync.schemas import WorkspaceBindingInfo


@click.group("workspaces")
def workspaces() -> None:
    """Bind MLflow workspaces to their own Azure ML workspaces (give the server's
    --backend-store-uri)."""


@workspaces.command("bind")
@click.argument("name")
@click.option("--azureml-workspace", required=True, help="Tracking URI (azureml://...) or ARM id.")
@click.option("--azureml-endpoint", default=None, help="Override the https base (private link).")
@click.option(
    "--artifacts-destination",
    default=None,
    help="The workspace's own artifact store (a local path, file:// or wasbs:// URI, reached "
    "with --credential): its files are written and read there, at the store's root. Files "
    "already elsewhere stay readable there until `tether workspaces move-artifacts`.",
)
@click.option(
    "--credential",
    default=None,
    help="A named identity: the server reads TETHER_AZURE_CREDENTIAL_<NAME>_* (no secret is "
    "stored). Default: the server's own identity.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Bind to a different Azure ML workspace than the one already delivered to: "
    "everything is delivered again to the new one.",
)
@backend_option
def bind(
    name: str,
    azureml_workspace: str,
    azureml_endpoint: str | None,
    artifacts_destination: str | None,
    credential: str | None,
    force: bool,
    **options: Any,
) -> None:
    """Sync workspace NAME into its own Azure ML workspace."""
    settings = _settings(**options)
    with _database(settings) as db:
        try:
            if artifacts_destination is not None:
                artifacts_destination = destinations.normalized(artifacts_destination)
                destinations.verify(settings, db, name, artifacts_destination, credential)
            with db.write() as session:
                row, fresh = bindings.bind(
                    session,
                    name,
                    azureml_workspace,
                    endpoint=azureml_endpoint,
                    artifacts_destination=artifacts_destination,
                    credential=credential,
                    force=force,
                )
                target = row.target
        except MlflowError as exc:
            click.echo(f"error: {exc.message}", err=True)
            sys.exit(EXIT_ERROR)
    click.echo(f"bound {name} to {target}")
    if fresh:
        click.echo(f"{name}: sync starts over: everything is delivered to {target}")


@workspaces.command("unbind")
@click.argument("name")
@backend_option
def unbind(name: str, **options: Any) -> None:
    """Keep workspace NAME in Tether only (its data and sync state stay)."""
    with _database(_settings(**options)) as db:
        try:
            with db.write() as session:
                bindings.unbind(session, name)
        except MlflowError as exc:
            click.echo(f"error: {exc.message}", err=True)
            sys.exit(EXIT_ERROR)
    click.echo(f"unbound {name}: kept in Tether only (its artifacts stay where they are)")


@workspaces.command("move-artifacts")
@click.argument("name")
@backend_option
@artifacts_option
def move_artifacts(name: str, **options: Any) -> None:
    """Move workspace NAME's files to its current artifacts location (its destination, else
    the server store) from where they were before: the server store before its first bind,
    destinations a rebind replaced. Each file is copied, its size checked, then the original
    deleted; run it again after an interruption. Give the server's --artifacts-destination
    and the environment of its credentials."""
    settings = _settings(**options)
    with _database(settings) as db:
        try:
            moved = destinations.move(settings, db, name)
        except MlflowError as exc:
            click.echo(f"error: {exc.message}", err=True)
            sys.exit(EXIT_ERROR)
    click.echo(
        f"{name}: moved {moved.copied} files ({moved.bytes} bytes); {moved.already_there} "
        "already at the destination (old copy removed)"
    )


@workspaces.command("list")
@click.option("--json", "as_json", is_flag=True, help="The JSON of the REST route.")
@click.option(
    "--azureml-workspace",
    default=None,
    help="The server's own (default's) Azure ML workspace, to show it (env "
    "TETHER_AZUREML_WORKSPACE).",
)
@backend_option
def list_command(as_json: bool, **options: Any) -> None:
    """Every workspace: its binding and its sync state (pending / failing / done, lag)."""
    settings = _settings(**options)
    with _database(settings) as db, db.read() as session:
        infos = bindings.describe_all(session, settings)
    if as_json:
        click.echo(json.dumps({"workspaces": infos}, indent=2, sort_keys=True))
        return
    for info in infos:
        click.echo(_line(info))


def _line(info: WorkspaceBindingInfo) -> str:
    sync = info["sync"]
    counts = sync["entities"]
    behind = counts["pending"] + counts["in_flight"]
    failing = counts["failed"] + counts["dead"]
    age = sync["oldest_pending_age_seconds"]
    if sync["binding"] != "local-only":
        where = f" {info['target']}"
    elif info["target"]:
        where = f" (delivered to {info['target']} before)"
    else:
        where = ""
    text = (
        f"{info['name']}: {sync['binding']}{where}: pending {behind}, failing {failing}, "
        f"done {counts['synced']}, lag {'-' if age is None else f'{age:.1f} s'}"
    )
    if sync["last_error"] and failing:
        text += f"\n  last error: {sync['last_error']}"
    return text
