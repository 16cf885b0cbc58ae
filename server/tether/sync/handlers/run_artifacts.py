"""A run's files (sync entity `run_artifacts`: the run's `artifact_put` / `artifact_delete`
outbox rows): registered with run history, bytes streamed to the SAS it returns.

The cursor moves after each file; the upload itself (exactly once, SAS fetched ahead for up
to 50 pending files, 409 and 403 handling) is `uploads`.

Not mirrored, and reported: deletes (Azure ML has no artifact delete), a file deleted before
it was uploaded (a later row deletes it), a file of a run deleted from Tether before it was
uploaded (the run's workspace deleted with mode=CASCADE: run and files are gone, as for a
file deleted before its upload, so it is `skipped`, never a failure or a dead letter), and
what `uploads` reports (a path Azure refuses,
other content already at the path). A file missing without a later delete is a failure
(retried, shown in `tether sync status`): the worker may be reading the wrong store.

Azure's side: docs/azureml-protocol.md §5.2.
"""

from __future__ import annotations

from typing import assert_never

from sqlalchemy import select

from tether.db.models import OutboxEntry
from tether.db.outbox import DecodeError
from tether.db.outbox.reader import RUN_FILES
from tether.db.outbox.records import ArtifactDelete, ArtifactOp, ArtifactPut, ArtifactRecord
from tether.storage import paths
from tether.sync.azureml.run_history import MAX_PATHS_PER_BATCH
from tether.sync.handlers import uploads
from tether.sync.handlers.base import Context, Row
from tether.sync.sources import rows_of

_RUN_GONE = "the run was deleted from Tether (with its workspace) before the file was uploaded"


def run_relative(store_path: str) -> str:
    """`[workspaces/<name>/]<exp>/<run>/artifacts/<rel>` -> `<rel>` (what the outbox's
    `artifact_*` rows carry)."""
    parts = paths.owner_relative(store_path).split("/")
    return "/".join(parts[3:]) if len(parts) > 3 and parts[2] == "artifacts" else ""


def apply(ctx: Context, row: Row[ArtifactRecord]) -> None:
    record = row.record
    path = run_relative(record.path)
    match record:
        case ArtifactDelete():
            ctx.report(
                "skipped",
                f"delete:{path or '(all)'}",
                "Azure ML cannot delete run artifacts through its API; the workspace keeps them",
            )
        case ArtifactPut() if not path:
            ctx.report("skipped", f"file:{record.path}", "not a path under the run's artifacts")
        case ArtifactPut():
            _upload(ctx, row.id, record.path, path)
        case _:
            assert_never(record)


def _upload(ctx: Context, row_id: int, store_path: str, path: str) -> None:
    run_id = ctx.work.key.entity_id
    try:
        target = uploads.target(ctx, run_id)
        uploads.upload(ctx, target, store_path, path, lambda: _pending_paths(ctx, row_id, path))
    except uploads.RunGone:
        ctx.report("skipped", f"file:{path}", _RUN_GONE)
    except uploads.Missing:
        # The files of a run deleted meanwhile (CASCADE commits, then removes the files).
        if uploads.run_gone(ctx, run_id):
            ctx.report("skipped", f"file:{path}", _RUN_GONE)
        elif _deleted_later(ctx, row_id, path):
            ctx.report("skipped", f"file:{path}", "deleted from Tether before it was uploaded")
        else:
            raise


def _later(
    ctx: Context, row_id: int, *, deletes_only: bool = False, limit: int | None = None
) -> list[ArtifactRecord]:
    """The run's file records after `row_id` (at most `limit`), for looking ahead. A row that
    does not decode is left out: it becomes a dead letter when its turn comes."""
    key = ctx.work.key
    query = (
        select(OutboxEntry.op, OutboxEntry.payload)
        .where(rows_of(key.entity_type, key.entity_id), OutboxEntry.id > row_id)
        .order_by(OutboxEntry.id)
        .limit(limit)
    )
    if deletes_only:
        query = query.where(OutboxEntry.op == ArtifactOp.DELETE.value)
    with ctx.db.read() as session:
        rows = session.execute(query).all()
    records = []
    for op, payload in rows:
        try:
            records.append(RUN_FILES(key.entity_id, op, payload))
        except DecodeError:
            continue
    return records


def _deleted_later(ctx: Context, row_id: int, path: str) -> bool:
    for record in _later(ctx, row_id, deletes_only=True):
        gone = run_relative(record.path)
        if not gone or gone == path or path.startswith(gone + "/"):
            return True
    return False


def _pending_paths(ctx: Context, row_id: int, path: str) -> list[str]:
    """`path` and the files of the run's next rows that are still to be uploaded (not deleted
    by a later row), at most 50, without repeats."""
    paths = [path]
    for record in _later(ctx, row_id, limit=4 * MAX_PATHS_PER_BATCH):
        other = run_relative(record.path)
        if isinstance(record, ArtifactDelete):
            paths = [p for p in paths if other and p != other and not p.startswith(other + "/")]
        elif other and other not in paths:
            paths.append(other)
    return paths[:MAX_PATHS_PER_BATCH] or [path]
