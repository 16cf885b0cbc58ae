"""A deleted bound workspace's binding outlives it until its sync work is drained (issue 17).

team-b is bound to its own stand-in Azure ML workspace, which goes down (its gateway answers
503 to everything) while a run's new points, a new run and a new experiment of team-b wait.
team-b is deleted with mode=CASCADE: its binding is kept, retiring (`deleted (draining)` in
`/api/2.0/tether/sync/status`, `tether workspaces list` and Prometheus), its worker keeps
running, and creating a workspace of that name is refused meanwhile. Once the stand-in is
back, everything left (the deletions CASCADE appended among it) is delivered, nothing twice;
then the binding row goes, the worker stops, the status no longer lists team-b and the name
can be created again. On SQLite and PostgreSQL. Waits are on conditions, never sleeps.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import select

from observability.prom_scrape import scrape
from support import TetherServer
from sync.sync_fidelity import InnerMlflow, sent_points
from sync.sync_servers import in_workspace, run_tether, start_two_workspaces, sync_status
from sync.sync_workload import Workload
from tether.db.engine import Database
from tether.db.models import SyncEntity, WorkspaceBinding
from tether.sync import state, status
from tether.sync.state import Key

if TYPE_CHECKING:
    from standin.identity import ManagedIdentityEndpoint
    from standin.workspace import AzuremlWorkspace
    from support import TetherServerStarter

pytestmark = pytest.mark.timeout(600)
TEAM = "team-b"
DRAINING = "deleted (draining)"


def _until(server: TetherServer, check: Callable[[], Any], what: str, seconds: float = 240) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        got = check()
        if got:
            return got
        assert time.monotonic() < deadline, f"{what}: {json.dumps(sync_status(server))}"
        time.sleep(0.2)


def _team(server: TetherServer) -> dict[str, Any] | None:
    one: dict[str, Any] | None = sync_status(server)["workspaces"].get(TEAM)
    return one


def _entities(db: Database) -> dict[Key, SyncEntity]:
    with db.read() as session:
        rows = session.scalars(select(SyncEntity).where(SyncEntity.workspace == TEAM)).all()
        return {Key(r.entity_type, r.entity_id): r for r in rows}


def test_deleted_bound_workspace_drains_then_its_binding_goes(
    backend_uri: str,
    start_tether_server: TetherServerStarter,
    azureml_workspace: AzuremlWorkspace,
    team_b_workspace: AzuremlWorkspace,
    azureml_identity: ManagedIdentityEndpoint,
    tmp_path: Path,
) -> None:
    ws_a, ws_b = azureml_workspace, team_b_workspace
    # Discovery's safe cursor passes the deletion's rows this long after them: the drain
    # waits for it (a short lookback keeps the test short; the rule is the same).
    server = start_two_workspaces(
        start_tether_server,
        ws_a,
        ws_b,
        azureml_identity,
        tmp_path,
        backend_uri,
        env={"TETHER_SYNC_LOOKBACK_SECONDS": "1"},
    )
    with server.rest("/api/3.0/mlflow") as rest:
        assert rest.post("workspaces", {"name": TEAM}).status == 201
    bound = run_tether(
        "workspaces",
        "bind",
        TEAM,
        "--azureml-workspace",
        ws_b.tracking_uri,
        "--credential",
        "TEAMB",
        "--backend-store-uri",
        server.backend_uri,
    )
    assert bound.returncode == 0, bound.stderr
    team = in_workspace(server, TEAM)
    work = Workload()
    experiment = work.experiment(team)
    run = work.run(team, experiment, points=200)

    def converged() -> bool:
        one = _team(server)
        busy = one is None or any(one["entities"][b] for b in ("pending", "in_flight", "failed"))
        return not busy and bool(one and one["entities"]["synced"] >= 2)

    _until(server, converged, "team-b synced while bound")
    mark = ws_b.mark()

    # team-b's Azure workspace down while more of team-b waits: new points of the delivered
    # run, a new run, a new experiment (never delivered).
    ws_b.faults(path=".*", action="status", status=503, times=None)
    work.log(team, run, 300)
    late_experiment = work.experiment(team)
    late_run = work.run(team, late_experiment, points=100)

    def failing() -> bool:
        one = _team(server)
        body = sync_status(server)
        scanned = body["outbox"]["scanned_to"] == body["outbox"]["last_id"]
        return bool(scanned and one and one["entities"]["failed"] >= 1)

    _until(server, failing, "team-b's outage is shown")
    with server.rest("/api/3.0/mlflow") as rest:
        deleted = rest.request("DELETE", f"/api/3.0/mlflow/workspaces/{TEAM}?mode=CASCADE")
    assert deleted.status == 204, deleted.text

    # Draining: shown as such everywhere, its worker still runs, the name is not free.
    draining = _team(server)
    assert draining is not None and draining["binding"] == DRAINING, draining
    assert any(draining["entities"][b] for b in ("pending", "in_flight", "failed")), draining
    listed = run_tether("workspaces", "list", "--backend-store-uri", server.backend_uri)
    assert listed.returncode == 0 and f"{TEAM}: {DRAINING}" in listed.stdout, listed.stdout
    samples = scrape(server.url)
    assert samples.get("tether_sync_workspace_draining", workspace=TEAM) == 1
    assert samples.get("tether_sync_workspace_draining", workspace="default") == 0
    assert TEAM in sync_status(server)["worker"]["workspaces"]
    with server.rest("/api/3.0/mlflow") as rest:
        again = rest.post("workspaces", {"name": TEAM})
    assert again.status == 400 and again.json["error_code"] == "INVALID_STATE", again.text
    assert "pending" in again.json["message"] and TEAM in again.json["message"], again.text

    # Back: everything left is delivered, then the binding goes.
    ws_b.clear_faults()
    _until(server, lambda: _team(server) is None, "team-b drained and gone from the status")
    db = Database(server.backend_uri)
    try:
        with db.read() as session:
            assert session.get(WorkspaceBinding, TEAM) is None
        entities = _entities(db)
        assert all(e.status == state.SYNCED for e in entities.values()), entities
        azure_experiments = [
            entities[Key("experiment", e)].azure_id for e in (experiment, late_experiment)
        ]
        azure_runs = {r: entities[Key("run", r)].azure_id for r in (run, late_run)}
        with db.read() as session:
            late = status.entity_detail(session, Key("run", late_run))
    finally:
        db.dispose()
    inner = InnerMlflow(ws_b.mlflow_url)
    for azure_id in azure_experiments:
        assert azure_id, entities
        got = inner.get("experiments/get", experiment_id=azure_id)
        assert got["experiment"]["lifecycle_stage"] == "deleted", got
    # Work of a run deleted from Tether before it was delivered is settled as skipped (its
    # experiment's deletion went to Azure ML), never dead; nothing was sent twice.
    assert late is not None and late["status"] == state.SYNCED, late
    skipped = [r for r in late["report"] if r["kind"] == "skipped"]
    assert skipped and "deleted from Tether" in skipped[0]["reason"], late
    batches = ws_b.requests(mark, path="runs/log-batch$")
    for run_id, azure_run in azure_runs.items():
        if azure_run:
            sent = sent_points(batches, azure_run)
            assert set(sent.values()) <= {1}, (run_id, "twice", sent)
    _until(
        server,
        lambda: TEAM not in sync_status(server)["worker"]["workspaces"],
        "team-b's worker stops once drained",
        60,
    )
    gone = ("tether_sync_workspace_draining", frozenset({("workspace", TEAM)}))
    assert gone not in scrape(server.url).values
    # The name is free again: a new, unbound workspace (binding it is an explicit act).
    with server.rest("/api/3.0/mlflow") as rest:
        assert rest.post("workspaces", {"name": TEAM}).status == 201
    fresh = _team(server)
    assert fresh is not None and fresh["binding"] == "local-only", fresh
