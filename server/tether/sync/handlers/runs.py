"""Run rows one at a time: create (exactly once), update, tag deletes, inputs, delete, restore.

The run's data rows (params, tags and metric points: `RunLogBatch`, `RunSetTag`) are delivered
together by `run_data`, which calls `apply` for every other row, in its place in the order:
such a row (a *barrier*) changes what the data before and after it means.

`state`: {"tags": tag keys present in Azure, "params": how many params were sent,
"create_sent": true while a runs/create may have reached Azure without its id being stored,
"data_through", "metrics_in_doubt": see `run_data`, "delivered": see `sync.delivery`}.
Budgets change `state` only when their request was acknowledged, so a replayed row decides
the same again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import assert_never

from sqlalchemy import select

from tether.db.models import Dataset, OutboxEntry, Run, SyncEntity
from tether.db.outbox.records import (
    ArtifactDelete,
    ArtifactPut,
    DatasetInput,
    ExperimentOp,
    RunCreate,
    RunDelete,
    RunDeleteTag,
    RunLogInputs,
    RunLogOutputs,
    RunRestore,
    RunUpdate,
    Tags,
)
from tether.sync import delivery
from tether.sync.azureml.errors import AmbiguousError, PermanentError
from tether.sync.azureml.mlflow_api import Unsupported
from tether.sync.handlers.base import Context, Row
from tether.sync.limits import PARENT_RUN_TAG, SOURCE_RUN_TAG, TAGS_PER_RUN, TagBudget
from tether.sync.state import Key

_LIFECYCLE_OPS = (ExperimentOp.DELETE.value, ExperimentOp.RESTORE.value)

# Every run record but the data ones (`run_data`): applied one at a time, in order.
Barrier = (
    RunCreate
    | RunUpdate
    | RunDelete
    | RunRestore
    | RunDeleteTag
    | RunLogInputs
    | RunLogOutputs
    | ArtifactPut
    | ArtifactDelete
)


def apply(ctx: Context, row: Row[Barrier]) -> None:
    record = row.record
    if isinstance(record, RunCreate):
        _create(ctx, record)
        return
    run_id = azure_run(ctx, record.op)
    match record:
        case RunDeleteTag():
            _delete_tag(ctx, run_id, record.key)
        case RunUpdate(status=None, end_time=None, run_name=None):
            pass  # nothing changed
        case RunUpdate():
            ctx.api.update_run(
                run_id, status=record.status, end_time=record.end_time, run_name=record.run_name
            )
        case RunLogInputs():
            _log_inputs(ctx, run_id, record.datasets)
            if record.models:
                model_links(ctx, "model inputs")
        case ArtifactPut() | ArtifactDelete():
            pass  # the run's files are their own sync entity (`run_artifacts`)
        case RunDelete() | RunRestore():
            send = ctx.api.delete_run if isinstance(record, RunDelete) else ctx.api.restore_run
            try:
                send(run_id)
            except Unsupported:
                op = record.op
                ctx.report("skipped", op, f"the workspace does not support runs/{op}")
        case RunLogOutputs():
            model_links(ctx, "model outputs")
        case _:
            assert_never(record)


def azure_run(ctx: Context, op: str) -> str:
    """The run's Azure id: every row after the create needs it."""
    run_id = ctx.work.azure_id
    if run_id is None:
        raise PermanentError(f"run has no Azure id (no create record before {op!r})")
    return run_id


def experiment_fence(ctx: Context) -> tuple[Key, int] | None:
    """The experiment's first delete or restore row not delivered yet, if any: the run's rows
    written after it wait for it (MLflow deletes and restores an experiment's runs with it, so
    e.g. a run deleted after its experiment was restored must be deleted after the restore)."""
    with ctx.db.read() as session:
        experiment_id = session.scalar(
            select(Run.experiment_id).where(Run.run_uuid == ctx.work.key.entity_id)
        )
        if experiment_id is None:
            return None
        key = Key("experiment", str(experiment_id))
        cursor = session.scalar(
            select(SyncEntity.cursor).where(
                SyncEntity.entity_type == key.entity_type, SyncEntity.entity_id == key.entity_id
            )
        )
        fence = session.scalar(
            select(OutboxEntry.id)
            .where(
                OutboxEntry.entity_type == key.entity_type,
                OutboxEntry.entity_id == key.entity_id,
                OutboxEntry.op.in_(_LIFECYCLE_OPS),
                OutboxEntry.id > (cursor or 0),
            )
            .order_by(OutboxEntry.id)
            .limit(1)
        )
    return None if fence is None else (key, int(fence))


def model_links(ctx: Context, subject: str) -> None:
    """Links between a run and MLflow 3 logged models: Azure ML has no logged models (their
    files are re-homed into the source run, see `logged_models`), so the links stay here."""
    ctx.report(
        "skipped",
        subject,
        "links to MLflow 3 logged models are not mirrored: Azure ML has no logged models "
        "(their files are re-homed under models/<model id>/ of the source run)",
    )


# Creation --------------------------------------------------------------------------------


def _create(ctx: Context, record: RunCreate) -> None:
    local_id = ctx.work.key.entity_id
    experiment = ctx.require(Key("experiment", record.experiment_id))
    tags = map_parent(ctx, record.tags)
    ordered = {SOURCE_RUN_TAG: local_id}  # the source tag first: it is never over budget
    ordered.update({k: v for k, v in tags.items() if k.startswith("mlflow.")})
    ordered.update(tags)
    ordered[SOURCE_RUN_TAG] = local_id
    budget = TagBudget(set(), TAGS_PER_RUN)
    admitted = budget.admit(ordered, ctx.reports)
    azure_id = _find(ctx, experiment) if ctx.work.state.get("create_sent") else None
    if azure_id is None:
        ctx.work.state["create_sent"] = True
        ctx.checkpoint()  # from here on, a retry (or a restart) searches before creating
        try:
            azure_id = ctx.api.create_run(
                experiment,
                start_time=record.start_time,
                run_name=record.name,
                user_id=record.user_id,
                tags=admitted,
            )
        except AmbiguousError:
            azure_id = _find(ctx, experiment)
            if azure_id is None:
                raise
    ctx.work.azure_id = azure_id
    kept = {k: v for k, v in ctx.work.state.items() if k == delivery.KEY}
    ctx.work.state = {"tags": sorted(budget.sent), "params": 0, **kept}


def _find(ctx: Context, experiment: str) -> str | None:
    """The Azure run an earlier, unacknowledged create made, found by its source tag."""
    found = ctx.api.find_runs_by_tag(experiment, SOURCE_RUN_TAG, ctx.work.key.entity_id)
    return found[0] if found else None


def map_parent(ctx: Context, tags: Tags) -> Tags:
    """`mlflow.parentRunId` names a local run: point it at that run's Azure id."""
    parent = tags.get(PARENT_RUN_TAG)
    if not parent:
        return tags
    with ctx.db.read() as session:
        exists = session.get(Run, parent) is not None
    if not exists or parent == ctx.work.key.entity_id:
        ctx.report("skipped", f"tag:{PARENT_RUN_TAG}", f"parent run {parent!r} is not in Tether")
        return {k: v for k, v in tags.items() if k != PARENT_RUN_TAG}
    return {**tags, PARENT_RUN_TAG: ctx.require(Key("run", parent))}


# Tags ---------------------------------------------------------------------


def tag_budget(ctx: Context) -> TagBudget:
    return TagBudget(set(ctx.work.state.get("tags", [])), TAGS_PER_RUN)


def _delete_tag(ctx: Context, run_id: str, key: str) -> None:
    budget = tag_budget(ctx)
    if key not in budget.sent:
        return  # never reached Azure (it was over budget): nothing to delete
    try:
        ctx.api.delete_run_tag(run_id, key)
    except Unsupported:
        ctx.report("skipped", f"delete_tag:{key}", "the workspace cannot delete run tags")
    except PermanentError as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":  # already gone: a replayed row
            raise
    budget.sent.discard(key)
    ctx.work.state["tags"] = sorted(budget.sent)


# Inputs ------------------------------------------------------------------------------------


def _log_inputs(ctx: Context, run_id: str, logged: Sequence[DatasetInput]) -> None:
    """The outbox names datasets by (name, digest); their fields come from the store."""
    with ctx.db.read() as session:
        run = session.get(Run, ctx.work.key.entity_id)
        rows = {
            (d.name, d.digest): d
            for d in session.scalars(
                select(Dataset).where(Dataset.experiment_id == (run.experiment_id if run else -1))
            )
        }
    datasets = []
    for item in logged:
        dataset = rows.get((item.name, item.digest))
        if dataset is None:
            ctx.report("skipped", f"input:{item.name}", "dataset no longer in Tether")
            continue
        fields = {
            "name": dataset.name,
            "digest": dataset.digest,
            "source_type": dataset.source_type,
            "source": dataset.source,
        }
        if dataset.schema is not None:
            fields["schema"] = dataset.schema
        if dataset.profile is not None:
            fields["profile"] = dataset.profile
        tags = [{"key": k, "value": v} for k, v in item.tags.items()]
        datasets.append({"dataset": fields, "tags": tags})
    if not datasets:
        return
    try:
        ctx.api.log_inputs(run_id, datasets)
    except Unsupported:
        ctx.report("skipped", "inputs", "the workspace does not support runs/log-inputs")
