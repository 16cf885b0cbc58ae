"""MLflow 3 logged models (sync entity `logged_model`: the model's outbox rows, its files'
`artifact_*` rows included). Azure ML has none (docs/azureml-protocol.md §4.1), so once a
model is finalized READY its files are re-homed as artifacts of its source run, under
`models/<model id>/`, and the entity's Azure id becomes `runs:/<Azure run>/models/<model id>`:
the source a registered version of the model is created from. Files written after READY
follow one by one.

Kept in Tether only, and reported `skipped` on this entity: the model's params and tags,
deletes (the re-homed files stay in the run), and a model without a source run (nowhere to
re-home it).

`state`: {"run": source run id, "location": the model's artifact location, "ready": bool}.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import assert_never

from tether.db.outbox.records import (
    ArtifactDelete,
    ArtifactPut,
    LoggedModelCreate,
    LoggedModelDelete,
    LoggedModelDeleteTag,
    LoggedModelFinalize,
    LoggedModelLogParams,
    LoggedModelRecord,
    LoggedModelSetTags,
)
from tether.sync.handlers import uploads
from tether.sync.handlers.base import Context, Row

READY = "READY"
REHOME_DIR = "models"
_KEPT = "logged models do not exist in Azure ML; kept in Tether"


def rehomed_path(model_id: str, relative: str = "") -> str:
    return f"{REHOME_DIR}/{model_id}/{relative}".rstrip("/")


def apply(ctx: Context, row: Row[LoggedModelRecord]) -> None:
    record = row.record
    ready = bool(ctx.work.state.get("ready"))
    match record:
        case LoggedModelCreate():
            ctx.work.state = {
                "run": record.source_run_id or "",
                "location": record.artifact_location,
                "ready": False,
            }
            _skip_all(ctx, "param", record.params)
            _skip_all(ctx, "tag", record.tags)
        case LoggedModelFinalize():
            if record.status == READY:
                _rehome(ctx)
            # else: a failed model has nothing to show
        case ArtifactPut():
            if ready:
                _rehome(ctx, only=record.path)
            # else: files before READY go with the finalize
        case ArtifactDelete():
            if ready:
                ctx.report("skipped", "file delete", "re-homed files cannot be deleted in Azure ML")
        case LoggedModelSetTags():
            _skip_all(ctx, "tag", record.tags)
        case LoggedModelLogParams():
            _skip_all(ctx, "param", record.params)
        case LoggedModelDelete():
            ctx.report("skipped", "delete", "the model's re-homed files stay in the Azure run")
        case LoggedModelDeleteTag():
            pass  # its tags were never sent
        case _:
            assert_never(record)


def _skip_all(ctx: Context, kind: str, items: Mapping[str, str]) -> None:
    for key in items:
        ctx.report("skipped", f"{kind}:{key}", _KEPT)


def _rehome(ctx: Context, only: str | None = None) -> None:
    model_id = ctx.work.key.entity_id
    run_id = str(ctx.work.state.get("run") or "")
    if not run_id:
        ctx.report("skipped", "files", "the model has no source run to re-home its files into")
        return
    root = ctx.files.resolve(str(ctx.work.state.get("location") or ""))
    if root is None:
        ctx.report("skipped", "files", "the model's artifacts are not in Tether's store")
        return
    try:
        target = uploads.target(ctx, run_id)
    except uploads.RunGone:
        ctx.report("skipped", "files", "the source run was deleted from Tether (its workspace)")
        return
    files = [only] if only else ctx.files.walk(root)
    pairs = [(f, rehomed_path(model_id, f[len(root) :].lstrip("/"))) for f in files]
    pairs = [(f, p) for f, p in pairs if f.startswith(root + "/")]
    done = set(ctx.work.state.get("uploaded", []))
    for index, (store_path, path) in enumerate(pairs):
        if path in done:
            continue
        ahead: Callable[[], list[str]] = partial(list, [p for _, p in pairs[index : index + 50]])
        uploads.upload(ctx, target, store_path, path, ahead)
        done.add(path)
        ctx.work.state["uploaded"] = sorted(done)
        ctx.checkpoint()  # a retry of this row skips the files already there
    ctx.work.state.pop("uploaded", None)
    ctx.work.state["ready"] = True
    ctx.work.azure_id = f"runs:/{target[1]}/{rehomed_path(model_id)}"
    ctx.report(
        "mapped",
        "files",
        f"re-homed as artifacts of run {run_id} (Azure run {target[1]}) under "
        f"{rehomed_path(model_id)}/",
    )
