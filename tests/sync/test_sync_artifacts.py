"""Run artifacts into the stand-in workspace: run-history records, bytes through the SAS into
Azurite (read back with `.artifacts`), exactly once across replays, a refused SAS refetched."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import update

from sync.sync_fidelity import assert_fidelity
from sync.sync_tether import Tether
from tether.db.models import SyncEntity
from tether.sync.state import Key
from tether.sync.worker import drain_exit_code

if TYPE_CHECKING:
    pass

pytestmark = pytest.mark.timeout(120)

FILES = {
    "model.txt": b"weights v1\n",
    "plots/deep/loss.csv": b"step,loss\n"
    + b"".join(b"%d,%f\n" % (i, 1 / (i + 1)) for i in range(50)),
    "empty.txt": b"",
    "big.bin": os.urandom(9 * 1024 * 1024 + 123),  # three 4 MiB blocks
}


def _logged_run(tether: Tether) -> str:
    run_id = tether.run(tether.experiment())
    tether.log(run_id, 5)
    for path, data in FILES.items():
        tether.put_file(run_id, path, data)
    return run_id


def _assert_files(tether: Tether, run_id: str, files: dict[str, bytes]) -> None:
    azure_run = tether.azure_id(Key("run", run_id))
    store = tether.ws.artifacts
    assert sorted(store.run_files(azure_run)) == sorted(files)
    for path, data in files.items():
        assert store.read(azure_run, path) == data, path
    assert sorted(r["path"] for r in tether.ws.artifact_index(azure_run)) == sorted(files)


def test_run_files_land_once_with_equal_bytes(tether: Tether) -> None:
    run_id = _logged_run(tether)
    tether.put_file(run_id, "gone.txt", b"deleted before sync")
    tether.delete_file(run_id, "gone.txt")
    mark = tether.ws.mark()

    assert drain_exit_code(tether.drain()) == 0

    assert_fidelity(tether.db, tether.ws.mlflow_url, runs=[run_id])
    _assert_files(tether, run_id, FILES)
    # Paths are registered ahead, together: one batch/metadata for the run's four files
    # (not the one a later row deletes).
    batches = tether.ws.requests(mark, path="batch/metadata$")
    assert len(batches) == 1 and len(batches[0]["json"]["paths"]) == 4
    report = tether.detail(Key("run_artifacts", run_id))["report"]
    assert {(r["kind"], r["subject"]) for r in report} == {
        ("skipped", "file:gone.txt"),
        ("skipped", "delete:gone.txt"),
    }


def test_a_replay_after_a_lost_cursor_does_not_upload_again(tether: Tether) -> None:
    run_id = _logged_run(tether)
    assert drain_exit_code(tether.drain()) == 0
    # As after a kill -9 between the blob commit and the cursor commit: every row again.
    tether.rewind(Key("run_artifacts", run_id))
    tether.put_file(run_id, "model.txt", b"weights v2, longer\n")  # write-once in Azure

    assert drain_exit_code(tether.drain()) == 0

    _assert_files(tether, run_id, FILES)  # 409s compared equal: nothing written twice
    report = tether.detail(Key("run_artifacts", run_id))["report"]
    assert [(r["kind"], r["subject"]) for r in report] == [("skipped", "file:model.txt")]
    assert "write-once" in report[0]["reason"]


def test_an_expired_sas_is_fetched_again(tether: Tether) -> None:
    run_id = tether.run(tether.experiment())
    assert drain_exit_code(tether.drain()) == 0  # the run in Azure: the timeout below is the files'
    tether.put_file(run_id, "a.txt", b"a")
    tether.put_file(run_id, "b/c.txt", b"bc")
    tether.ws.quirks(sas_ttl_seconds=-60)  # every SAS handed out is already expired
    mark = tether.ws.mark()

    drain_exit_code(tether.drain(timeout=5))  # ends it: the 403s are retried within 0.4 s

    entity = tether.entity(Key("run_artifacts", run_id))
    assert entity.status == "failed" and "403" in (entity.last_error or "")
    batches = tether.ws.requests(mark, path="batch/metadata$")
    assert len(batches) >= 2 and batches[1]["json"]["paths"] == [{"path": "a.txt"}]

    tether.ws.reset()  # SAS lifetime back to hours
    with tether.db.write() as session:
        session.execute(update(SyncEntity).values(next_attempt_at=0))
    assert drain_exit_code(tether.drain()) == 0
    _assert_files(tether, run_id, {"a.txt": b"a", "b/c.txt": b"bc"})
