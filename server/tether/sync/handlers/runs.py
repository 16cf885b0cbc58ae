"""Run rows: create (exactly once), update, tags, params and metrics, inputs, delete, restore.

`state`: {"tags": tag keys present in Azure, "params": how many params were sent,
"create_sent": true while a runs/create may have reached Azure without its id being stored,
"metrics_in_doubt": see `metrics`}.
Budgets change `state` only when the row is done, so a replayed row decides the same again.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from tether.db.models import Dataset, Run
from tether.sync.azureml.errors import AmbiguousError, PermanentError
from tether.sync.azureml.mlflow_api import Unsupported
from tether.sync.handlers import metrics
from tether.sync.handlers.base import Context, Row
from tether.sync.limits import (
    METRICS_PER_BATCH,
    PARAMS_PER_BATCH,
    PARENT_RUN_TAG,
    SOURCE_RUN_TAG,
    TAGS_PER_BATCH,
    TAGS_PER_RUN,
    TagBudget,
    admit_params,
    chunks,
)
from tether.sync.sources import ARTIFACT_OPS
from tether.sync.state import Key


def apply(ctx: Context, row: Row) -> None:
    if row.op == "create":
        _create(ctx, row.payload)
        return
    run_id = ctx.work.azure_id
    if run_id is None:
        raise PermanentError(f"run has no Azure id (no create record before {row.op!r})")
    payload = row.payload
    if row.op == "log_batch":
        _log_batch(ctx, run_id, row)
    elif row.op == "set_tag":
        _set_tags(ctx, run_id, {payload["key"]: payload["value"]})
    elif row.op == "delete_tag":
        _delete_tag(ctx, run_id, payload["key"])
    elif row.op == "update" and payload:
        ctx.api.update_run(
            run_id,
            status=payload.get("status"),
            end_time=payload.get("end_time"),
            run_name=payload.get("run_name"),
        )
    elif row.op == "log_inputs":
        _log_inputs(ctx, run_id, payload.get("datasets") or [])
        if payload.get("models"):
            _model_links(ctx, "model inputs")
    elif row.op == "update":
        pass  # nothing changed
    elif row.op in ARTIFACT_OPS:
        pass  # the run's files are their own sync entity (`run_artifacts`)
    elif row.op in ("delete", "restore"):
        try:
            (ctx.api.delete_run if row.op == "delete" else ctx.api.restore_run)(run_id)
        except Unsupported:
            ctx.report("skipped", row.op, f"the workspace does not support runs/{row.op}")
    elif row.op == "log_outputs":
        _model_links(ctx, "model outputs")
    else:
        ctx.report("skipped", f"op:{row.op}", f"not mirrored to Azure ML (outbox {row.id})")


def _model_links(ctx: Context, subject: str) -> None:
    """Links between a run and MLflow 3 logged models: Azure ML has no logged models (their
    files are re-homed into the source run, see `logged_models`), so the links stay here."""
    ctx.report(
        "skipped",
        subject,
        "links to MLflow 3 logged models are not mirrored: Azure ML has no logged models "
        "(their files are re-homed under models/<model id>/ of the source run)",
    )


# Creation --------------------------------------------------------------------------------


def _create(ctx: Context, payload: dict[str, Any]) -> None:
    local_id = ctx.work.key.entity_id
    experiment = ctx.require(Key("experiment", str(payload["experiment_id"])))
    tags = _map_parent(ctx, dict(payload.get("tags") or {}))
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
                start_time=payload.get("start_time"),
                run_name=payload.get("name"),
                user_id=payload.get("user_id"),
                tags=admitted,
            )
        except AmbiguousError:
            azure_id = _find(ctx, experiment)
            if azure_id is None:
                raise
    ctx.work.azure_id = azure_id
    ctx.work.state = {"tags": sorted(budget.sent), "params": 0}


def _find(ctx: Context, experiment: str) -> str | None:
    """The Azure run an earlier, unacknowledged create made, found by its source tag."""
    found = ctx.api.find_runs_by_tag(experiment, SOURCE_RUN_TAG, ctx.work.key.entity_id)
    return found[0] if found else None


def _map_parent(ctx: Context, tags: dict[str, str]) -> dict[str, str]:
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


# Tags, params, metrics ---------------------------------------------------------------------


def _budget(ctx: Context) -> TagBudget:
    return TagBudget(set(ctx.work.state.get("tags", [])), TAGS_PER_RUN)


def _set_tags(ctx: Context, run_id: str, tags: dict[str, str]) -> None:
    budget = _budget(ctx)
    admitted = budget.admit(_map_parent(ctx, tags), ctx.reports)
    for key, value in admitted.items():
        ctx.api.set_run_tag(run_id, key, value)
    ctx.work.state["tags"] = sorted(budget.sent)


def _delete_tag(ctx: Context, run_id: str, key: str) -> None:
    budget = _budget(ctx)
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


def _log_batch(ctx: Context, run_id: str, row: Row) -> None:
    payload = row.payload
    budget = _budget(ctx)
    tags = budget.admit(_map_parent(ctx, dict(payload.get("tags") or {})), ctx.reports)
    params, sent_params = admit_params(
        dict(payload.get("params") or {}), int(ctx.work.state.get("params", 0)), ctx.reports
    )
    param_chunks = chunks(params, PARAMS_PER_BATCH)
    tag_chunks = chunks(tags, TAGS_PER_BATCH)
    for i in range(max(len(param_chunks), len(tag_chunks))):
        ctx.api.log_batch(
            run_id,
            params=param_chunks[i] if i < len(param_chunks) else None,
            tags=tag_chunks[i] if i < len(tag_chunks) else None,
        )
    ranges = [(int(lo), int(hi)) for lo, hi in payload.get("metric_ids") or []]
    if ranges:
        sent = metrics.send(ctx, run_id, ranges)
        if sent > METRICS_PER_BATCH:
            ctx.report(
                "split",
                "metrics",
                f"outbox {row.id}: {sent} metric points sent in requests of at most "
                f"{METRICS_PER_BATCH} (Azure ML's per-request limit)",
            )
    if payload.get("model_metric_ids"):
        _model_links(ctx, "logged-model metrics")  # the points themselves are run metrics
    ctx.work.state["tags"] = sorted(budget.sent)
    ctx.work.state["params"] = sent_params


# Inputs ------------------------------------------------------------------------------------


def _log_inputs(ctx: Context, run_id: str, logged: list[dict[str, Any]]) -> None:
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
        dataset = rows.get((item["name"], item["digest"]))
        if dataset is None:
            ctx.report("skipped", f"input:{item['name']}", "dataset no longer in Tether")
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
        tags = [{"key": k, "value": v} for k, v in (item.get("tags") or {}).items()]
        datasets.append({"dataset": fields, "tags": tags})
    if not datasets:
        return
    try:
        ctx.api.log_inputs(run_id, datasets)
    except Unsupported:
        ctx.report("skipped", "inputs", "the workspace does not support runs/log-inputs")
