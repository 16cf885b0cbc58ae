"""`tether deployments`: the deployments recorded in the store, read directly (like `tether
sync status`): state, model, instance type and count, age, last error."""

from __future__ import annotations

import json
from typing import Any

import click

from tether.clock import now_ms
from tether.config import Settings
from tether.db.engine import Database
from tether.deploy.service import DeployService
from tether.errors import MlflowError
from tether.storage.configured import artifact_backend


@click.command("deployments")
@click.option("--backend-store-uri", default=None, help="The store (env TETHER_BACKEND_STORE_URI).")
@click.option("--all", "show_all", is_flag=True, help="Also the deleted ones.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of a table.")
def deployments(backend_store_uri: str | None, show_all: bool, as_json: bool) -> None:
    given: dict[str, Any] = {"backend_store_uri": backend_store_uri} if backend_store_uri else {}
    settings = Settings(**given)
    try:
        db = Database(settings.resolved_backend_store_uri())
    except MlflowError as exc:
        raise click.UsageError(exc.message) from None
    try:
        rows = DeployService(db, artifact_backend(settings)).list(
            include_deleted=show_all, every_workspace=True
        )
    finally:
        db.dispose()
    if as_json:
        click.echo(json.dumps({"deployments": rows}, indent=2))
        return
    now = now_ms()
    click.echo(
        f"{'NAME':24} {'WORKSPACE':16} {'STATE':12} {'MODEL':32} {'INSTANCES':26} {'AGE':>8}  ERROR"
    )
    for d in rows:
        age = f"{(now - d['created_at']) / 60000:.0f}m"
        sizing = f"{d['instance_count']} x {d['instance_type']}"
        error = (d.get("error") or "").replace("\n", " ")[:80]
        click.echo(
            f"{d['name']:24} {d['workspace'][:16]:16} {d['state']:12} {d['model_uri'][:32]:32} "
            f"{sizing:26} {age:>8}  {error}"
        )
