"""kill -9 of `tether serve` while its worker registers a model version: the create request
reached Azure (and is applied there after the process died), its answer never made it into
Tether's store. The restarted server finds the version by its `tether.source_version` tag
instead of creating a second one; `tether sync status` shows the version as not synced until
then. Ends in the workload's exact fidelity check (one version per local version)."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import select

from sync.sync_servers import SyncedServerStarter, run_tether, sync_status, wait_synced
from sync.sync_workload import Workload
from tether.db.engine import Database
from tether.db.models import RegisteredModel

if TYPE_CHECKING:
    from standin.workspace import AzuremlWorkspace

pytestmark = pytest.mark.timeout(180)
sqlite_only = pytest.mark.parametrize("backend_kind", ["sqlite"], indirect=True)


def _model_id(uri: str, name: str) -> str:
    db = Database(uri)
    try:
        with db.read() as session:
            return str(session.scalars(select(RegisteredModel.id).filter_by(name=name)).one())
    finally:
        db.dispose()


@sqlite_only
def test_kill_9_during_model_registration_creates_no_second_version(
    start_synced_server: SyncedServerStarter, azureml_workspace: AzuremlWorkspace
) -> None:
    ws = azureml_workspace
    start = start_synced_server  # every server shares one artifact store

    ws.quirks(blob_via_front=True)  # every blob write is seen: each file written once
    # The create is held 10 s at Azure's door, then applied: the worker dies meanwhile (a
    # slow machine's kill still lands inside the delay).
    ws.faults(path="model-versions/create$", action="delay", seconds=10.0, times=1)
    server = start()
    mark = ws.mark()
    work = Workload()
    run = work.run(server, work.experiment(server), points=50)
    name = work.model(server, run)
    deadline = time.monotonic() + 60
    while not ws.requests(mark, path="model-versions/create$"):
        assert time.monotonic() < deadline, "the registration was never sent"
        time.sleep(0.05)
    server.process.proc.kill()  # kill -9: the answer to the create is never read
    server.process.proc.wait(10)
    server.stop()
    # Applied before the restart looks for it. (A create applied later than the dead worker's
    # lease, 60 s by default, could still be duplicated: nothing can fence Azure.)
    deadline = time.monotonic() + 60
    while ws.requests(mark, path="model-versions/create$")[0]["status"] is None:
        assert time.monotonic() < deadline, "the delayed create was not applied"
        time.sleep(0.05)
    assert ws.requests(mark, path="model-versions/create$")[0]["status"] == 200

    key = f"model_version:{_model_id(server.backend_uri, name)}/1"
    shown = run_tether(
        "sync", "status", "--json", "--entity", key, "--backend-store-uri", server.backend_uri
    )
    assert shown.returncode == 0, shown.stderr
    detail = json.loads(shown.stdout)
    assert detail["status"] != "synced" and detail["azure_id"] is None, detail
    assert detail["outbox_rows_behind"] >= 1, detail

    restarted = start(server.backend_uri)
    wait_synced(restarted)
    work.model(restarted, run, name)  # and the next version follows as version 2
    wait_synced(restarted)

    creates = ws.requests(mark, path="model-versions/create$")
    assert len(creates) == 2, "the restart found version 1 by its tag: no second create"
    assert ws.requests(mark, path="model-versions/search$"), "looked for its own version"
    detail = sync_status(restarted, key)
    assert detail["status"] == "synced" and detail["azure_id"] == "1", detail
    work.check(restarted.backend_uri, ws, mark)
