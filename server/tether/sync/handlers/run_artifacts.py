"""A run's files (sync entity `run_artifacts`: the run's `artifact_put` / `artifact_delete`
outbox rows): registered with run history, bytes streamed to the SAS it returns.

The cursor moves after each file; the upload itself (exactly once, SAS fetched ahead for up
to 50 pending files, 409 and 403 handling) is `uploads`.

Not mirrored, and reported: deletes (Azure ML has no artifact delete), a file deleted before
it was uploaded (a later row deletes it), and what `uploads` reports (a path Azure refuses,
other content already at the path). A file missing without a later delete is a failure
(retried, shown in `tether sync status`): the worker may be reading the wrong store.

Azure's side: docs/azureml-protocol.md §5.2.
"""

from __future__ import annotations

import orjson
from sqlalchemy import select

from tether.db.models import OutboxEntry
from tether.sync.azureml.run_history import MAX_PATHS_PER_BATCH
from tether.sync.handlers import uploads
from tether.sync.handlers.base import Context, Row
from tether.sync.sources import rows_of


def run_relative(store_path: str) -> str:
    """`<exp>/<run>/artifacts/<rel>` -> `<rel>` (what the outbox's `artifact_*` rows carry)."""
    parts = store_path.split("/")
    return "/".join(parts[3:]) if len(parts) > 3 and parts[2] == "artifacts" else ""


def apply(ctx: Context, row: Row) -> None:
    run_id = ctx.work.key.entity_id
    store_path = str(row.payload.get("path") or "")
    path = run_relative(store_path)
    if row.op == "artifact_delete":
        ctx.report(
            "skipped",
            f"delete:{path or '(all)'}",
            "Azure ML cannot delete run artifacts through its API; the workspace keeps them",
        )
        return
    if not path:
        ctx.report("skipped", f"file:{store_path}", "not a path under the run's artifacts")
        return
    target = uploads.target(ctx, run_id)
    try:
        uploads.upload(ctx, target, store_path, path, lambda: _pending_paths(ctx, row, path))
    except uploads.Missing:
        if not _deleted_later(ctx, row, path):
            raise
        ctx.report("skipped", f"file:{path}", "deleted from Tether before it was uploaded")


def _deleted_later(ctx: Context, row: Row, path: str) -> bool:
    key = ctx.work.key
    with ctx.db.read() as session:
        deletes = session.scalars(
            select(OutboxEntry.payload).where(
                rows_of(key.entity_type, key.entity_id),
                OutboxEntry.id > row.id,
                OutboxEntry.op == "artifact_delete",
            )
        ).all()
    for payload in deletes:
        gone = run_relative(str(orjson.loads(payload).get("path") or ""))
        if not gone or gone == path or path.startswith(gone + "/"):
            return True
    return False


def _pending_paths(ctx: Context, row: Row, path: str) -> list[str]:
    """`path` and the files of the run's next rows that are still to be uploaded (not deleted
    by a later row), at most 50, without repeats."""
    key = ctx.work.key
    with ctx.db.read() as session:
        later = session.execute(
            select(OutboxEntry.op, OutboxEntry.payload)
            .where(rows_of(key.entity_type, key.entity_id), OutboxEntry.id > row.id)
            .order_by(OutboxEntry.id)
            .limit(4 * MAX_PATHS_PER_BATCH)
        ).all()
    paths = [path]
    for op, payload in later:
        other = run_relative(str(orjson.loads(payload).get("path") or ""))
        if op == "artifact_delete":
            paths = [p for p in paths if other and p != other and not p.startswith(other + "/")]
        elif other and other not in paths:
            paths.append(other)
    return paths[:MAX_PATHS_PER_BATCH] or [path]
