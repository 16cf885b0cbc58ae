"""Work of a workspace deleted with mode=CASCADE: its runs and their files are gone from
Tether, so their pending uploads are settled as `skipped` (as a file deleted before its
upload is), never retried into failures or dead letters that `tether sync status` would
count as failing, while the deletions CASCADE told the sync still reach Azure."""

from __future__ import annotations

import asyncio

import pytest

from sync.sync_fidelity import InnerMlflow
from sync.sync_tether import Tether
from tether.db import workspace_scope
from tether.sync import state, status
from tether.sync.state import Key
from tether.sync.worker import drain_exit_code

pytestmark = pytest.mark.timeout(120)
TEAM = "team-a"


def test_cascade_settles_the_deleted_runs_pending_uploads_as_skipped(tether: Tether) -> None:
    tether.services.workspaces.create(TEAM, None, None)
    with workspace_scope.entered(TEAM):
        experiment = tether.experiment()
        run_id = tether.run(experiment)
        tether.log(run_id, 5)
    assert drain_exit_code(tether.drain()) == 0  # the run is in Azure
    files = Key("run_artifacts", run_id)

    # Azure's storage registration fails while the files wait: they retry, failing.
    with workspace_scope.entered(TEAM):
        for path in ("model.txt", "plots/loss.csv"):
            tether.put_file(run_id, path, f"{path} bytes".encode())
    tether.ws.faults(path="batch/metadata$", action="status", status=503, times=None)
    try:
        tether.drain(timeout=3)
        assert tether.entity(files).status == state.FAILED, tether.detail(files)
        paths = tether.services.workspaces.delete(TEAM, "CASCADE")
        asyncio.run(tether.services.workspaces.remove_artifacts(paths))
    finally:
        tether.ws.clear_faults()

    counts = tether.drain()

    assert drain_exit_code(counts) == 0, (counts, tether.detail(files))
    detail = tether.detail(files)
    assert detail["status"] == state.SYNCED and detail["last_error"] is None, detail
    skipped = {r["subject"]: r["reason"] for r in detail["report"] if r["kind"] == "skipped"}
    assert set(skipped) == {"file:model.txt", "file:plots/loss.csv"}, detail
    assert all("deleted from Tether" in reason for reason in skipped.values()), skipped
    with tether.db.read() as session:
        summary = status.summary(session)
    assert not summary["entities"]["failed"] and not summary["entities"]["dead"], summary
    # The experiment's deletion (CASCADE told the sync) reached Azure.
    azure_experiment = tether.azure_id(Key("experiment", experiment))
    got = InnerMlflow(tether.ws.mlflow_url).get("experiments/get", experiment_id=azure_experiment)
    assert got["experiment"]["lifecycle_stage"] == "deleted", got
