"""Model versions (docs/azureml-protocol.md §6, §7.3), entity id "<registered model id>/<version>".

Create, exactly once: the source is mapped to the Azure run's artifacts (`sources_for`), the
version is created with a `tether.source_version` tag, and `create_sent` is committed before
the request: after a lost response or a crash the versions of the model are searched for that
tag before anything is created again. The Azure version number is committed as soon as it is
known; the version is then polled with `model-versions/get` until READY, briefly: a version
still PENDING_REGISTRATION puts the entity back (re-checked on a later pass, lease released).

Then description, tags, stage transitions and delete follow. Versions whose source cannot be
registered in Azure ML (outside the run's artifacts) are reported skipped, with their later
rows.

`state`: {"name": Azure model name, "create_sent", "azure_version", "tags", "skipped"}.
"""

from __future__ import annotations

import json
import time
from typing import assert_never

from tether.clock import now_ms
from tether.db.outbox.records import (
    ModelVersionCreate,
    ModelVersionDelete,
    ModelVersionDeleteTag,
    ModelVersionRecord,
    ModelVersionSetTag,
    ModelVersionTransitionStage,
    ModelVersionUpdate,
)
from tether.sync import state as sync_state
from tether.sync.azureml.errors import AmbiguousError, PermanentError
from tether.sync.handlers.base import Context, Deferred, Row
from tether.sync.handlers.version_sources import azure_source
from tether.sync.limits import SOURCE_VERSION_TAG, TAGS_PER_MODEL, TagBudget, description
from tether.sync.state import Key

READY, PENDING = "READY", "PENDING_REGISTRATION"
POLLS = 6
POLL_S = 0.5
RECHECK_MS = 2_000


def apply(ctx: Context, row: Row[ModelVersionRecord]) -> None:
    record = row.record
    if isinstance(record, ModelVersionCreate):
        _create(ctx, record)
        return
    if ctx.work.state.get("skipped"):
        ctx.report("skipped", f"op:{record.op}", "the version itself is not in Azure ML")
        return
    version = ctx.work.azure_id
    name = ctx.work.state.get("name")
    if version is None or not name:
        raise PermanentError(f"model version has no Azure id (no create before {record.op!r})")
    match record:
        case ModelVersionUpdate():
            text = description(record.description or "", ctx.reports)
            ctx.api.update_model_version(name, version, text or "")
        case ModelVersionSetTag():
            _set_tags(ctx, name, version, {record.key: record.value})
        case ModelVersionDeleteTag():
            _delete_tag(ctx, name, version, record.key)
        case ModelVersionTransitionStage():
            ctx.api.transition_stage(name, version, record.stage, record.archive_existing_versions)
        case ModelVersionDelete():
            _delete(ctx, name, version)
        case _:
            assert_never(record)


def _create(ctx: Context, record: ModelVersionCreate) -> None:
    model_id, _, local_version = ctx.work.key.entity_id.partition("/")
    name = ctx.require(Key("registered_model", model_id))
    state = ctx.work.state
    state["name"] = name
    version = state.get("azure_version")
    if version is None:
        _after_previous(ctx, model_id, local_version)
        source = azure_source(ctx, record)
        if source is None:
            state["skipped"] = True
            return
        version = _create_once(ctx, name, source, record)
        state["azure_version"] = version
        state.pop("create_sent", None)
        ctx.checkpoint()  # the mapping before any further call
    _await_ready(ctx, name, version)
    ctx.work.azure_id = version
    if version != local_version:
        ctx.report("mapped", "version", f"version {version} in Azure ML")


def _after_previous(ctx: Context, model_id: str, local_version: str) -> None:
    """Azure numbers a model's versions in creation order: create them in Tether's order, so
    that the numbers match (lanes deliver versions concurrently). The previous version is
    waited for until it is in Azure, skipped or dead (then the numbers are reported)."""
    if not local_version.isdigit() or int(local_version) <= 1:
        return
    previous = Key("model_version", f"{model_id}/{int(local_version) - 1}")
    with ctx.db.read() as session:
        entity = sync_state.get(session, previous)
    if entity is None or entity.azure_id or entity.status == sync_state.DEAD:
        return
    known = json.loads(entity.state or "{}")
    if known.get("azure_version") or known.get("skipped"):
        return  # created (maybe still registering), or not for Azure at all
    ctx.wait_for(previous, entity)


def _create_once(ctx: Context, name: str, source: str, record: ModelVersionCreate) -> str:
    marker = ctx.work.key.entity_id
    if ctx.work.state.get("create_sent"):
        found = ctx.api.find_model_versions_by_tag(name, SOURCE_VERSION_TAG, marker)
        if found:
            return str(found[0]["version"])
    budget = TagBudget({SOURCE_VERSION_TAG}, TAGS_PER_MODEL)
    tags = {
        SOURCE_VERSION_TAG: marker,
        **budget.admit(record.tags, ctx.reports),
    }
    ctx.work.state["tags"] = sorted(budget.sent)
    ctx.work.state["create_sent"] = True
    ctx.checkpoint()  # from here on, a retry searches before creating
    run_id = source.split("/")[1]  # runs:/<azure run>/<path>
    text = description(record.description, ctx.reports)
    try:
        created = ctx.api.create_model_version(name, source, run_id, tags, text)
    except AmbiguousError:
        found = ctx.api.find_model_versions_by_tag(name, SOURCE_VERSION_TAG, marker)
        if not found:
            raise
        return str(found[0]["version"])
    return str(created["version"])


def _await_ready(ctx: Context, name: str, version: str) -> None:
    for attempt in range(POLLS):
        status = ctx.api.get_model_version(name, version).get("status", READY)
        if status == READY:
            return
        if status != PENDING:
            raise PermanentError(f"Azure ML answered {status} for {name} version {version}")
        if attempt + 1 < POLLS:
            time.sleep(POLL_S)
    raise Deferred(ctx.work.key, now_ms() + RECHECK_MS)  # not our lease's business to wait


def _budget(ctx: Context) -> TagBudget:
    return TagBudget(set(ctx.work.state.get("tags", [])), TAGS_PER_MODEL)


def _set_tags(ctx: Context, name: str, version: str, tags: dict[str, str]) -> None:
    budget = _budget(ctx)
    for key, value in budget.admit(tags, ctx.reports).items():
        ctx.api.set_model_version_tag(name, version, key, value)
    ctx.work.state["tags"] = sorted(budget.sent)


def _delete_tag(ctx: Context, name: str, version: str, key: str) -> None:
    budget = _budget(ctx)
    if key not in budget.sent or key == SOURCE_VERSION_TAG:
        return
    try:
        ctx.api.delete_model_version_tag(name, version, key)
    except PermanentError as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
    budget.sent.discard(key)
    ctx.work.state["tags"] = sorted(budget.sent)


def _delete(ctx: Context, name: str, version: str) -> None:
    try:
        ctx.api.delete_model_version(name, version)
    except PermanentError as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":  # a replayed row
            raise
