"""`tether sync run | status | retry`: drain once, look, and re-queue dead letters."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
from sqlalchemy.exc import DBAPIError

from tether.config import Settings
from tether.db.engine import Database
from tether.db.models.workspaces import DEFAULT_WORKSPACE
from tether.errors import MlflowError
from tether.sync import bindings, retiring, state, status
from tether.sync.azureml.errors import SyncError
from tether.sync.schemas import EntityDetail, Lag, SyncSummary
from tether.sync.state import Key

EXIT_OK, EXIT_ERROR, EXIT_RETRY_LATER, EXIT_DEAD = 0, 1, 3, 4


def _settings(**options: Any) -> Settings:
    given = {k: v for k, v in options.items() if v is not None}
    return Settings(**given)


@contextmanager
def _database(settings: Settings) -> Iterator[Database]:
    try:
        db = Database(settings.resolved_backend_store_uri())
    except MlflowError as exc:
        raise click.UsageError(exc.message) from None
    try:
        yield db
    finally:
        db.dispose()


def _key(_: click.Context, __: click.Parameter, values: tuple[str, ...]) -> list[Key]:
    try:
        return [Key.parse(v) for v in values]
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


backend_option = click.option(
    "--backend-store-uri", default=None, help="The store (env TETHER_BACKEND_STORE_URI)."
)
artifacts_option = click.option(
    "--artifacts-destination",
    default=None,
    help="Tether's artifact store, read to upload files (env TETHER_ARTIFACTS_DESTINATION).",
)


@click.group("sync")
def sync() -> None:
    """Azure ML sync: drain the outbox once, show progress, re-queue dead letters."""


@sync.command("run")
@backend_option
@artifacts_option
@click.option("--azureml-workspace", default=None, help="Env TETHER_AZUREML_WORKSPACE.")
@click.option("--azureml-endpoint", default=None, help="Env TETHER_AZUREML_ENDPOINT.")
@click.option("--timeout", type=float, default=None, help="Stop after this many seconds.")
def run(timeout: float | None, **options: Any) -> None:
    """Sync until nothing is due: `default` into --azureml-workspace, every bound workspace
    into its own (`tether workspaces bind`), each with its own lanes, at the same time.
    Exit 0: all synced; 3: failures in backoff remain (run again later); 4: dead letters (see
    `tether sync status`, then `tether sync retry`); 1: a workspace was unreachable."""
    from tether.db import migrate
    from tether.sync import bindings
    from tether.sync.destinations import artifact_store
    from tether.sync.runtime import connect, worker_config
    from tether.sync.worker import SyncWorker, drain_exit_code

    settings = _settings(**options)
    with _database(settings) as db:
        migrate.upgrade(db)
        with db.read() as session:
            targets = bindings.active_targets(session, settings)
        if not targets:
            raise click.UsageError(
                "no workspace: pass --azureml-workspace or TETHER_AZUREML_WORKSPACE, or bind "
                "one (tether workspaces bind)"
            )
        results: dict[str, dict[str, int] | str] = {}

        def drain(target: bindings.Target) -> None:
            try:
                api = connect(settings, target=target)
            except (SyncError, MlflowError) as exc:
                results[target.workspace] = f"cannot reach the workspace: {exc}"
                return
            worker = SyncWorker(
                db,
                api,
                worker_config(settings),
                artifacts=artifact_store(settings, db),
                workspace=target.workspace,
            )
            try:
                results[target.workspace] = worker.drain(timeout_s=timeout)
            finally:
                worker.close()

        threads = [threading.Thread(target=drain, args=(t,)) for t in targets.values()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with db.write() as session:  # a deleted workspace's binding, once its work is drained
            retiring.remove_drained(session)
    codes = []
    for name, result in sorted(results.items()):
        prefix = "" if len(results) == 1 and name == DEFAULT_WORKSPACE else f"{name}: "
        if isinstance(result, str):
            click.echo(f"error: {prefix}{result}", err=True)
            codes.append(EXIT_ERROR)
            continue
        click.echo(prefix + " ".join(f"{k}={v}" for k, v in result.items()))
        codes.append(drain_exit_code(result))
    # The worst: unreachable (1) before dead letters (4) before retry later (3).
    for code in (EXIT_ERROR, EXIT_DEAD, EXIT_RETRY_LATER):
        if code in codes:
            sys.exit(code)
    sys.exit(EXIT_OK)


@sync.command("status")
@backend_option
@click.option(
    "--azureml-workspace",
    default=None,
    help="The server's own Azure ML workspace, to show `default` as bound (env "
    "TETHER_AZUREML_WORKSPACE).",
)
@click.option("--json", "as_json", is_flag=True, help="The JSON of the HTTP status route.")
@click.option("--entity", default=None, help="One entity in detail: TYPE:ID, e.g. run:<id>.")
def status_command(as_json: bool, entity: str | None, **options: Any) -> None:
    """Pending / in flight / synced / failed / dead, oldest pending age, last errors."""
    settings = _settings(**options)
    try:
        key = Key.parse(entity) if entity else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--entity") from None
    with _database(settings) as db, db.read() as session:
        try:
            detail = status.entity_detail(session, key) if key else None
            summary = None if key else status.summary(session)
            if summary is not None:
                summary["workspaces"] = status.by_workspace(
                    session, bindings.kinds(session, settings)
                )
        except DBAPIError as exc:  # e.g. a store from before sync existed
            click.echo(
                f"error: cannot read the sync state ({exc.orig}); run `tether db upgrade`", err=True
            )
            sys.exit(EXIT_ERROR)
    if detail is not None:
        click.echo(
            json.dumps(detail, indent=2, sort_keys=True) if as_json else _entity_text(detail)
        )
    elif summary is not None:
        click.echo(
            json.dumps(summary, indent=2, sort_keys=True) if as_json else _summary_text(summary)
        )
    else:
        click.echo(f"no sync state for {entity}", err=True)
        sys.exit(EXIT_ERROR)


@sync.command("retry")
@backend_option
@click.option("--entity", "entities", multiple=True, callback=_key, help="TYPE:ID (repeatable).")
@click.option("--all-dead", is_flag=True, help="Every dead entity.")
def retry(entities: list[Key], all_dead: bool, **options: Any) -> None:
    """Put dead entities (and what waits on them) back in the queue."""
    if bool(entities) == all_dead:
        raise click.UsageError("give --entity TYPE:ID (one or more) or --all-dead")
    with _database(_settings(**options)) as db, db.write() as session:
        requeued = state.requeue(session, None if all_dead else entities)
    for key in requeued:
        click.echo(f"requeued {key}")
    if not requeued:
        click.echo("nothing to requeue (no such dead entity)")


# Text rendering ----------------------------------------------------------------------------


def _summary_text(body: SyncSummary) -> str:
    header = ["entity type", *[b.replace("_", " ") for b in status.BUCKETS]]
    rows = [[t, *[str(c[b]) for b in status.BUCKETS]] for t, c in sorted(body["by_type"].items())]
    rows.append(["total", *[str(body["entities"][b]) for b in status.BUCKETS]])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(
            cell.rjust(w) if i else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in [header, *rows]
    ]
    age = body["oldest_pending_age_seconds"]
    lines.append(f"oldest pending: {'-' if age is None else f'{age:.1f} s'}")
    if body["waiting_on_dependency"]:
        lines.append(f"waiting on a dependency: {body['waiting_on_dependency']}")
    outbox = body["outbox"]
    lines.append(f"outbox: last id {outbox['last_id']}, scanned to {outbox['scanned_to']}")
    if outbox.get("not_scanned"):
        lines.append(
            f"not yet discovered: {outbox['not_scanned']} outbox row(s), oldest "
            f"{outbox['oldest_not_scanned_age_seconds']:.1f} s (no sync worker has scanned them)"
        )
    later = body["not_synced_by_this_version"]
    if later["outbox_rows_by_entity_type"] or later["deferred_ops"]:
        kinds = ", ".join(
            f"{k} {v}" for k, v in sorted(later["outbox_rows_by_entity_type"].items())
        )
        lines.append(
            f"not synced by this version: outbox rows {kinds or '-'}; "
            f"deferred ops in run reports: {later['deferred_ops']}"
        )
    kept = body["kept_in_tether"]
    if kept["traces"]:
        lines.append(f"kept in Tether (Azure ML does not accept them): {kept['traces']} trace(s)")
    lines.extend(_lag_lines(body["lag"]))
    lines.extend(_workspace_lines(body))
    for error in body["errors"]:
        if error["status"] == "failed":
            when = f"{error['attempts']} attempt(s), next in {error['next_attempt_in_seconds']} s"
        else:
            when = f"waits for {error['waiting_on']}" if error["waiting_on"] else "retry by command"
        lines.append(f"{error['entity']}: {error['status']} ({when}): {error['last_error']}")
    return "\n".join(lines)


def _workspace_lines(body: SyncSummary) -> list[str]:
    each = body.get("workspaces") or {}
    if not each or list(each) == [DEFAULT_WORKSPACE]:
        return []  # one workspace: the totals above are its
    lines = ["workspaces:"]
    for name, one in each.items():
        counts = one["entities"]
        age = one["oldest_pending_age_seconds"]
        where = f" {one['azureml_workspace']}" if one["azureml_workspace"] else ""
        lines.append(
            f"  {name} ({one['binding']}{where}): pending {counts['pending']}, in flight "
            f"{counts['in_flight']}, failed {counts['failed']}, dead {counts['dead']}, synced "
            f"{counts['synced']}, oldest pending {'-' if age is None else f'{age:.1f} s'}"
        )
    return lines


def _lag_lines(lag: Lag) -> list[str]:
    lines = [
        f"delivered (last {lag['window_seconds']} s): {lag['points_per_second']:.1f} points/s, "
        f"{lag['requests_per_second']:.1f} requests/s"
    ]
    if lag["runs"]:
        lines.append("runs (lag: age of the oldest write not yet in Azure ML):")
    for run in lag["runs"]:
        age = "-" if run["lag_seconds"] is None else f"{run['lag_seconds']:.1f} s"
        behind = (
            f", {run['outbox_rows_behind']} row(s) behind" if "outbox_rows_behind" in run else ""
        )
        lines.append(
            f"  run {run['run']}: lag {age}, {run['status'].replace('_', ' ')}{behind}, "
            f"{run['points_per_second']:.1f} points/s, {run['requests_per_second']:.1f} requests/s"
        )
    return lines


def _entity_text(body: EntityDetail) -> str:
    lines = [f"{field}: {value}" for field, value in body.items() if field != "report"]
    for item in body["report"]:
        lines.append(f"report {item['kind']} {item['subject']}: {item['reason']}")
    return "\n".join(lines)
