"""Experiment rows: create (get-by-name first), tags, rename (reported), delete, restore.

`state`: {"name": the Azure name, "tags": tag keys present in Azure}.
"""

from __future__ import annotations

from typing import assert_never

from sqlalchemy import func, select

from tether.db.models import OutboxEntry, Run, SyncEntity
from tether.db.outbox.records import (
    ExperimentCreate,
    ExperimentDelete,
    ExperimentDeleteTag,
    ExperimentRecord,
    ExperimentRename,
    ExperimentRestore,
    ExperimentSetTag,
)
from tether.sync.azureml.errors import AmbiguousError, PermanentError
from tether.sync.azureml.mlflow_api import Unsupported
from tether.sync.handlers.base import Context, Row
from tether.sync.limits import TAGS_PER_EXPERIMENT, TagBudget, azure_experiment_name
from tether.sync.state import Key

_TAG_KEY_MAX = 250  # experiment tag keys (docs/azureml-protocol.md §4.2)


def apply(ctx: Context, row: Row[ExperimentRecord]) -> None:
    record = row.record
    if isinstance(record, ExperimentCreate):
        _create(ctx, record)
        return
    azure_id = ctx.work.azure_id
    if azure_id is None:
        raise PermanentError(f"experiment has no Azure id (no create record before {record.op!r})")
    match record:
        case ExperimentSetTag():
            _set_tags(ctx, azure_id, {record.key: record.value})
        case ExperimentDeleteTag():
            _delete_tag(ctx, azure_id, record.key)
        case ExperimentRename():
            ctx.report(
                "skipped",
                "rename",
                f"renamed locally to {record.name!r}; Azure ML cannot rename experiments, "
                f"the workspace keeps {ctx.work.state.get('name')!r}",
            )
        case ExperimentDelete() | ExperimentRestore():
            _set_lifecycle(ctx, azure_id, row.id, record)
        case _:
            assert_never(record)


def _tag_budget(ctx: Context) -> TagBudget:
    sent = set(ctx.work.state.get("tags", []))
    return TagBudget(sent, TAGS_PER_EXPERIMENT, max_key=_TAG_KEY_MAX)


def _save_tags(ctx: Context, budget: TagBudget) -> None:
    ctx.work.state["tags"] = sorted(budget.sent)


def _create(ctx: Context, record: ExperimentCreate) -> None:
    name = record.name
    budget = _tag_budget(ctx)
    tags = budget.admit(record.tags, ctx.reports)
    for salt in (None, ctx.work.key.entity_id):
        candidate = azure_experiment_name(name, salt=salt)
        azure_id, created = _get_or_create(ctx, candidate, tags)
        if azure_id is None:
            continue
        ctx.work.azure_id = azure_id
        ctx.work.state["name"] = candidate
        if candidate != name:
            ctx.report(
                "mapped",
                "name",
                f"named {candidate!r} in Azure ML (names there are 1-256 letters, digits, _ "
                "or -, starting with a letter or digit, and must not be taken by another "
                "experiment)",
            )
        if not created:
            _send_tags(ctx, azure_id, tags, budget)
        _save_tags(ctx, budget)
        return
    raise PermanentError(f"no usable Azure ML experiment name for {name!r}")


def _get_or_create(ctx: Context, name: str, tags: dict[str, str]) -> tuple[str | None, bool]:
    """(Azure id, created by us) for `name`; (None, False) when it belongs to someone else."""
    found = ctx.api.get_experiment_by_name(name)
    if found is None:
        try:
            return ctx.api.create_experiment(name, tags), True
        except AmbiguousError:
            found = ctx.api.get_experiment_by_name(name)
            if found is None:
                raise
        except PermanentError as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            found = ctx.api.get_experiment_by_name(name)
            if found is None:
                raise
    azure_id = str(found["experiment_id"])
    if found.get("lifecycle_stage", "active") != "active" or _mapped_elsewhere(ctx, azure_id):
        return None, False
    return azure_id, False


def _mapped_elsewhere(ctx: Context, azure_id: str) -> bool:
    """Another local experiment already syncs into this Azure experiment (e.g. after renames)."""
    with ctx.db.read() as session:
        other = session.execute(
            select(SyncEntity.entity_id).where(
                SyncEntity.entity_type == "experiment",
                SyncEntity.azure_id == azure_id,
                SyncEntity.entity_id != ctx.work.key.entity_id,
            )
        ).first()
    return other is not None


def _set_tags(ctx: Context, azure_id: str, tags: dict[str, str]) -> None:
    budget = _tag_budget(ctx)
    _send_tags(ctx, azure_id, budget.admit(tags, ctx.reports), budget)
    _save_tags(ctx, budget)


def _send_tags(ctx: Context, azure_id: str, tags: dict[str, str], budget: TagBudget) -> None:
    for key, value in tags.items():
        try:
            ctx.api.set_experiment_tag(azure_id, key, value)
        except Unsupported:
            budget.sent.discard(key)
            ctx.report("skipped", f"tag:{key}", "the workspace does not support experiment tags")


def _delete_tag(ctx: Context, azure_id: str, key: str) -> None:
    budget = _tag_budget(ctx)
    if key not in budget.sent:
        return  # never reached Azure (skipped or unsupported): nothing to delete
    try:
        ctx.api.delete_experiment_tag(azure_id, key)
    except Unsupported:
        ctx.report("skipped", f"delete_tag:{key}", "the workspace cannot delete experiment tags")
    except PermanentError as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
    budget.sent.discard(key)
    _save_tags(ctx, budget)


def _set_lifecycle(
    ctx: Context, azure_id: str, row_id: int, record: ExperimentDelete | ExperimentRestore
) -> None:
    delete = isinstance(record, ExperimentDelete)
    if delete:
        _wait_for_runs(ctx, row_id)
    try:
        if delete:
            ctx.api.delete_experiment(azure_id)
        else:
            ctx.api.restore_experiment(azure_id)
    except Unsupported:
        ctx.report("skipped", record.op, f"the workspace does not support experiments/{record.op}")
    except PermanentError:
        # A replay after a crash: MLflow refuses to delete a deleted experiment (or restore
        # an active one). Already in the wanted stage means done.
        wanted = "deleted" if delete else "active"
        if ctx.api.get_experiment(azure_id).get("lifecycle_stage") != wanted:
            raise


def _wait_for_runs(ctx: Context, row_id: int) -> None:
    """Run rows written before the delete would find a deleted experiment in Azure (MLflow
    deletes its runs with it): let them go first. Rows written after it wait for it instead
    (`runs.experiment_fence`)."""
    run_cursor = func.coalesce(SyncEntity.cursor, 0)
    with ctx.db.read() as session:
        waiting = session.execute(
            select(OutboxEntry.entity_id)
            .join(Run, Run.run_uuid == OutboxEntry.entity_id)
            .outerjoin(
                SyncEntity,
                (SyncEntity.entity_type == "run") & (SyncEntity.entity_id == OutboxEntry.entity_id),
            )
            .where(
                OutboxEntry.entity_type == "run",
                Run.experiment_id == int(ctx.work.key.entity_id),
                OutboxEntry.id < row_id,
                OutboxEntry.id > run_cursor,
            )
            .limit(1)
        ).first()
    if waiting is not None:
        ctx.wait_for(Key("run", waiting[0]))
