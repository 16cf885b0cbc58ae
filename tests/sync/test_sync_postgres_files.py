"""Two `tether serve` processes on one PostgreSQL database and one artifact store, both with
sync on, draining files and model versions together: runs with files and registered versions
logged through either server, each entity worked by one process at a time (leases, `FOR
UPDATE SKIP LOCKED`). Ends in the workload's exact fidelity check: every file's bytes once
with one artifact record per path, each version created once."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

import pytest

from sync.sync_servers import SyncedServerStarter, sync_status, wait_synced
from sync.sync_workload import Workload

if TYPE_CHECKING:
    from standin.workspace import AzuremlWorkspace

pytestmark = pytest.mark.timeout(180)


@pytest.mark.parametrize("backend_kind", ["postgres"], indirect=True)
def test_two_servers_on_one_postgres_drain_files_and_versions_once(
    start_synced_server: SyncedServerStarter, azureml_workspace: AzuremlWorkspace
) -> None:
    ws = azureml_workspace
    start = start_synced_server  # every server shares one artifact store

    ws.quirks(blob_via_front=True)  # every blob write is seen: each file written once
    # Slow uploads' SAS requests a little, so both workers are busy with files at once.
    ws.faults(path="batch/metadata$", action="delay", seconds=0.3, times=None)
    first = start()
    second = start(first.backend_uri)
    # Both workers connected before any work exists: each then finds entities to claim while
    # the other is busy with a slowed file (asserted below through rows_applied).
    deadline = time.monotonic() + 60
    while not all(sync_status(s)["worker"]["connected"] for s in (first, second)):
        assert time.monotonic() < deadline, [sync_status(s)["worker"] for s in (first, second)]
        time.sleep(0.2)
    mark = ws.mark()
    work = Workload()
    model = None
    for server in (first, second, first, second):
        exp = work.experiment(server)
        for _ in range(2):
            run = work.run(server, exp, points=300)
            work.files_of(server, run, 3, size=64 * 1024)
            work.put(server, run, "big.bin", os.urandom(5 * 1024 * 1024 + 3))  # block list
            model = work.model(server, run, model)  # one model, versions from both servers
    wait_synced(first, timeout=120)

    stats = [sync_status(s)["worker"]["stats"] for s in (first, second)]
    assert all(s["rows_applied"] > 0 for s in stats), stats  # both took part
    assert all(s["dead_letters"] == 0 for s in stats), stats
    work.check(first.backend_uri, ws, mark)
    for server in (first, second):  # both tell the same (shared) truth
        body = sync_status(server)
        assert body["entities"]["synced"] == sum(body["entities"].values()), body
