"""Uploading one of Tether's files into an Azure run's artifacts.

Exactly once: a file whose upload committed but whose outbox row was not (crash, lost
response) answers 409 on the next attempt (`If-None-Match: *`) and counts as done when the
blob has the file's size *and* MD5 (its `Content-MD5`, which every upload of ours records;
a blob without one, uploaded by someone else, is read through and hashed). A 403 from
storage fetches a new SAS once. Write SAS URLs are fetched ahead for the next pending files
in one `batch/metadata` and kept in memory for this claim only (never committed: they are
credentials).

Reported, not raised: a path Azure refuses, and a path already in the Azure run with other
content, even of equal size. That is a conflict, not a replay: the blob is neither
overwritten (run artifacts are write-once in Azure ML, and it may be another writer's file)
nor made a dead letter (retrying cannot change it, and it would stop the run's later files);
it is a `skipped` report `file:<path>` with both sizes and MD5s, shown by
`tether sync status --entity run_artifacts:<run>`. A file missing from Tether's store
raises `Missing`. A run no longer in Tether at all (hard-deleted: its workspace deleted with
mode=CASCADE, which removes its files too) raises `RunGone`, which the callers settle as
`skipped`, as a file deleted before its upload is: retrying cannot bring it back.

Azure's side: docs/azureml-protocol.md §5.2, §7.3.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select

from tether.db.models import Run
from tether.sync.azureml.blob import Exists, SasRejected
from tether.sync.azureml.errors import PermanentError, TransientError
from tether.sync.azureml.run_history import RunHistory
from tether.sync.handlers.base import Context
from tether.sync.state import Key

_SAS = "sas"


class Missing(TransientError):
    """The file is not in Tether's store: deleted since (the caller checks), or the worker
    reads another store than the server writes (then it stays failed, visibly)."""

    def __init__(self, store_path: str) -> None:
        super().__init__(
            f"{store_path!r} is not in Tether's artifact store; if it was not deleted, "
            "check that --artifacts-destination names the store the server writes to"
        )


class RunGone(PermanentError):
    """The run is no longer in Tether: its files went with it (settled as `skipped`)."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"run {run_id} is no longer in Tether (deleted with its workspace)")


def run_gone(ctx: Context, run_id: str) -> bool:
    with ctx.db.read() as session:
        return session.execute(select(Run.run_uuid).where(Run.run_uuid == run_id)).first() is None


def target(ctx: Context, run_id: str) -> tuple[str, str]:
    """(Azure experiment id, Azure run id) of the local run; `RunGone` when it was deleted
    from Tether (checked first: a gone run's files have nothing to wait for)."""
    with ctx.db.read() as session:
        experiment_id = session.execute(
            select(Run.experiment_id).where(Run.run_uuid == run_id)
        ).scalar()
    if experiment_id is None:
        raise RunGone(run_id)
    azure_run = ctx.require(Key("run", run_id))
    return ctx.require(Key("experiment", str(experiment_id))), azure_run


def upload(
    ctx: Context,
    target: tuple[str, str],
    store_path: str,
    path: str,
    ahead: Callable[[], list[str]],
) -> None:
    """Upload the store file `store_path` as `path` of the Azure run `target`; `ahead` names
    the paths (`path` first) whose SAS to fetch in the same `batch/metadata`."""
    refused = ""
    for attempt in range(2):
        opened = ctx.files.open(store_path)
        if opened is None:
            raise Missing(store_path)
        size, chunks = opened
        try:
            url = _sas(ctx, target, path, ahead, attempt > 0)
            if url is None:
                return  # refused by Azure: reported
            try:
                ctx.blobs.upload(url, size, chunks)
            except Exists as exists:
                _compare(ctx, target, url, path, size, exists.md5)
            return
        except SasRejected as exc:
            refused = str(exc)
        finally:
            chunks.close()
    raise TransientError(f"storage refused a fresh SAS for {path!r}: {refused}", status=403)


def _compare(
    ctx: Context, target: tuple[str, str], url: str, path: str, size: int, md5: str
) -> None:
    """409: done if the blob has our bytes (a replay), else reported (write-once in Azure)."""
    read_url: str | None = url
    there = ctx.blobs.properties(url)
    if there is None:  # the write SAS may not read: ask for a read SAS
        read_url = RunHistory(ctx.api.client, ctx.api.workspace).read_url(*target, path)
        there = ctx.blobs.properties(read_url) if read_url else None
    there_md5 = None
    if there is not None and there.size == size and read_url is not None:
        there_md5 = there.md5 or ctx.blobs.content_md5(read_url)
        if there_md5 == md5:
            return
    found = "unreadable" if there is None else f"{there.size} bytes, MD5 {there_md5 or '-'}"
    ctx.report(
        "skipped",
        f"file:{path}",
        f"the Azure run already has a different {path!r} ({found}; ours {size} bytes, "
        f"MD5 {md5}); run artifacts are write-once in Azure ML, the blob was left as it is",
    )


def _sas(
    ctx: Context, target: tuple[str, str], path: str, ahead: Callable[[], list[str]], fresh: bool
) -> str | None:
    """The write SAS of `path`: fetched ahead with the next pending files, or anew."""
    cached: dict[str, str] = ctx.cache.setdefault(f"{_SAS}:{target[1]}", {})
    if not fresh and path in cached:
        return cached.pop(path)
    paths = [path] if fresh else ahead()
    grant = RunHistory(ctx.api.client, ctx.api.workspace).batch_metadata(*target, paths)
    cached.update(grant.urls)
    if path in grant.errors:
        ctx.report("skipped", f"file:{path}", f"refused by Azure ML: {grant.errors[path]}")
        return None
    if path not in cached:
        raise TransientError(f"batch/metadata returned no upload URL for {path!r}")
    return cached.pop(path)
