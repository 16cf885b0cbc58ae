"""Each MLflow workspace tethered to its own Azure ML workspace (issue 17, phase 2).

`tether serve --enable-workspaces --azureml-workspace A` delivers `default` into stand-in A;
`team-b` is bound to stand-in B with `tether workspaces bind` while the server runs (no
restart), with its own named credential. A workload in each workspace lands exactly once in
its own Azure workspace and its own Blob container, and never in the other's. Then B goes
down (its gateway answers 503 to everything): `default`'s new work still converges, exactly,
while team-b's waits (failing, never dead); once B is back, team-b converges with nothing
sent twice. Waits are on conditions (status polled with generous deadlines), never sleeps.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from observability.prom_scrape import scrape
from support import TetherServer
from sync.sync_fidelity import SOURCE_TAG, InnerMlflow
from sync.sync_servers import in_workspace, run_tether, start_two_workspaces, sync_status
from sync.sync_workload import Workload

if TYPE_CHECKING:
    from standin.identity import ManagedIdentityEndpoint
    from standin.workspace import AzuremlWorkspace
    from support import TetherServerStarter
    from support.azurite import Azurite

pytestmark = pytest.mark.timeout(600)
TEAM = "team-b"
BUSY = ("pending", "in_flight", "failed", "dead")


def _status(server: TetherServer, workspace: str) -> dict[str, Any]:
    body = sync_status(server)
    one: dict[str, Any] = body["workspaces"][workspace]
    return {**one, "outbox": body["outbox"]}


def _until(
    server: TetherServer, workspace: str, check: Callable[[dict[str, Any]], bool], what: str
) -> dict[str, Any]:
    deadline = time.monotonic() + 180
    while True:
        body = _status(server, workspace)
        if check(body):
            return body
        assert time.monotonic() < deadline, f"{what}: {json.dumps(body)}"
        time.sleep(0.2)


def _converged(body: dict[str, Any]) -> bool:
    scanned = body["outbox"]["scanned_to"] == body["outbox"]["last_id"]
    return scanned and not any(body["entities"][b] for b in BUSY) and body["entities"]["synced"]


def _source_runs(ws: AzuremlWorkspace) -> set[str]:
    """Every local run id the stand-in holds a copy of (its `tether.source_run_id` tags)."""
    inner = InnerMlflow(ws.mlflow_url)
    experiments = inner.post("experiments/search", {"max_results": 1000}).get("experiments", [])
    ids = [e["experiment_id"] for e in experiments]
    if not ids:
        return set()
    body = {"experiment_ids": ids, "max_results": 1000, "run_view_type": "ALL"}
    runs = inner.post("runs/search", body).get("runs", [])
    return {t["value"] for r in runs for t in r["data"].get("tags", []) if t["key"] == SOURCE_TAG}


def _blobs(azurite: Azurite, container: str) -> list[str]:
    from azure.storage.blob import BlobServiceClient

    with BlobServiceClient.from_connection_string(azurite.connection_string) as client:
        return [b.name for b in client.get_container_client(container).list_blobs()]


def _until_files_routed(server: TetherServer, azurite: Azurite, container: str) -> None:
    """Until the server routes team-b's files to its container (its route table is re-read
    every 2 s): a file put straight into the container reads through the proxy."""
    from azure.storage.blob import BlobServiceClient

    with BlobServiceClient.from_connection_string(azurite.connection_string) as client:
        client.get_container_client(container).upload_blob("probe/ready.txt", b"ready")
    deadline = time.monotonic() + 60
    with server.rest() as plain:
        rest = plain.in_workspace(TEAM)
        while True:
            got = rest.request("GET", "/api/2.0/mlflow-artifacts/artifacts/probe/ready.txt")
            if got.status == 200:
                break
            assert got.status == 404 and time.monotonic() < deadline, got.text
            time.sleep(0.2)
    with BlobServiceClient.from_connection_string(azurite.connection_string) as client:
        client.get_container_client(container).delete_blob("probe/ready.txt")


def test_each_workspace_syncs_into_its_own_azure_workspace_and_outages_stay_apart(
    start_tether_server: TetherServerStarter,
    azureml_workspace: AzuremlWorkspace,
    team_b_workspace: AzuremlWorkspace,
    azureml_identity: ManagedIdentityEndpoint,
    azurite: Azurite,
    tmp_path: Path,
) -> None:
    ws_a, ws_b = azureml_workspace, team_b_workspace
    # team-b's own artifact store: a container its named credential reaches (an account key
    # of its own; the server has no storage credential at all: its store is a directory).
    team_container = azurite.new_container("team-b")
    team_storage = {
        "TETHER_AZURE_CREDENTIAL_TEAMB_STORAGE_CONNECTION_STRING": azurite.connection_string
    }
    server = start_two_workspaces(
        start_tether_server, ws_a, ws_b, azureml_identity, tmp_path, env=team_storage
    )
    mark_a, mark_b = ws_a.mark(), ws_b.mark()
    with server.rest("/api/3.0/mlflow") as rest:
        created = rest.post("workspaces", {"name": TEAM})
    assert created.status == 201, created.text
    team = in_workspace(server, TEAM)

    # team-b's work before it is bound: kept local, and said so.
    work_a, work_b = Workload(), Workload()
    exp_a, exp_b = work_a.experiment(server), work_b.experiment(team)
    run_b = work_b.run(team, exp_b, points=300)
    local = _until(server, TEAM, lambda b: b["entities"]["pending"] >= 2, "team-b kept local")
    assert local["binding"] == "local-only" and local["azureml_workspace"] is None, local
    assert not local["entities"]["failed"] and not local["entities"]["dead"], local

    # Bound while the server runs, first with a credential the server's environment lacks:
    # that workspace says why it cannot connect (no secret is named), nothing else changes.
    wrong = run_tether(
        "workspaces",
        "bind",
        TEAM,
        "--azureml-workspace",
        ws_b.tracking_uri,
        "--credential",
        "NOPE",
        "--backend-store-uri",
        server.backend_uri,
    )
    assert wrong.returncode == 0, wrong.stderr
    deadline = time.monotonic() + 60
    while "TETHER_AZURE_CREDENTIAL_NOPE_CLIENT_ID" not in str(
        sync_status(server)["worker"]["workspaces"].get(TEAM, {}).get("connect_error")
    ):
        assert time.monotonic() < deadline, sync_status(server)["worker"]
        time.sleep(0.2)
    # Then with the right one: the same Azure workspace, so a plain rebind, no restart; and
    # team-b's files go to its own Blob container, reached with the same named credential.
    bound = run_tether(
        "workspaces",
        "bind",
        TEAM,
        "--azureml-workspace",
        ws_b.tracking_uri,
        "--credential",
        "TEAMB",
        "--artifacts-destination",
        azurite.wasbs(team_container),
        "--backend-store-uri",
        server.backend_uri,
        env=team_storage,
    )
    assert bound.returncode == 0, bound.stderr
    _until_files_routed(server, azurite, team_container)
    run_a = work_a.run(server, exp_a, points=400)
    work_a.files_of(server, run_a, 2)
    work_b.files_of(team, run_b, 2)
    work_b.model(team, run_b)
    _until(server, "default", _converged, "default synced")
    b_done = _until(server, TEAM, _converged, "team-b synced after its bind")
    assert (
        b_done["binding"] == "bound"
        and b_done["azureml_workspace"]
        == "/".join((ws_b.subscription, ws_b.resource_group, ws_b.workspace_name)).lower()
    )
    work_a.check(server.backend_uri, ws_a, mark_a)
    work_b.check(server.backend_uri, ws_b, mark_b)  # delivered from team-b's container
    # team-b's files are only in its container (at its root), default's only on the server.
    in_container = _blobs(azurite, team_container)
    for run_id, files in work_b.files.items():
        for path in files:
            assert f"{work_b.roots[run_id].split('/', 2)[2]}/{path}" in in_container
    assert not any(a in n for a in work_a.runs for n in in_container), in_container
    local = tmp_path / "artifacts"
    assert not [p for p in (local / "workspaces" / TEAM).rglob("*") if p.is_file()]
    assert all((local / work_a.roots[r] / p).is_file() for r, f in work_a.files.items() for p in f)
    # Each reached only its own Azure workspace.
    assert set(work_a.runs) <= _source_runs(ws_a) and not set(work_b.runs) & _source_runs(ws_a)
    assert set(work_b.runs) <= _source_runs(ws_b) and not set(work_a.runs) & _source_runs(ws_b)

    # team-b's Azure workspace down: default keeps converging, exactly.
    ws_b.faults(path=".*", action="status", status=503, times=None)
    work_b.log(team, run_b, 500)
    second_b = work_b.run(team, exp_b, points=200)
    work_a.log(server, run_a, 600)
    second_a = work_a.run(server, exp_a, points=300)
    work_a.files_of(server, second_a, 2)
    _until(
        server,
        TEAM,
        lambda b: b["entities"]["failed"] >= 1 and "503" in (b["last_error"] or ""),
        "team-b's outage is shown",
    )
    _until(server, "default", _converged, "default converges while team-b is down")
    down = _status(server, TEAM)
    assert down["entities"]["dead"] == 0 and any(down["entities"][b] for b in BUSY), down
    work_a.check(server.backend_uri, ws_a, mark_a)
    assert second_b not in _source_runs(ws_b)
    with server.rest() as rest:  # the sync page shows each workspace
        page = rest.get("/tether/")
    assert page.status == 200 and "By workspace" in page.text, page.text
    assert b_done["azureml_workspace"] in page.text and "ws-standin" in page.text
    workers = sync_status(server)["worker"]["workspaces"]
    assert set(workers) == {"default", TEAM} and all(w["connected"] for w in workers.values())
    assert workers["default"]["workspace"] != workers[TEAM]["workspace"]

    # Prometheus tells the workspaces apart: team-b's retries are its own.
    samples = scrape(server.url)
    assert samples.total("tether_azureml_retries_total", workspace=TEAM) >= 1
    for name in (TEAM, "default"):
        delivered = samples.total("tether_sync_points_delivered_total", workspace=name)
        assert delivered >= 300, (name, delivered)
    behind = sum(
        samples.get("tether_sync_workspace_entities", workspace=TEAM, status=b) for b in BUSY
    )
    assert behind >= 1 and samples.get("tether_sync_workspace_lag_seconds", workspace=TEAM) > 0

    # Back: team-b converges, nothing twice, still nothing in the other workspace.
    ws_b.clear_faults()
    _until(server, TEAM, _converged, "team-b converges once its workspace is back")
    work_b.check(server.backend_uri, ws_b, mark_b)
    work_a.check(server.backend_uri, ws_a, mark_a)
    assert not set(work_b.runs) & _source_runs(ws_a)
    assert not set(work_a.runs) & _source_runs(ws_b)

    # Unbound over REST while the server runs: team-b is kept local again, nothing lost.
    with server.rest() as rest:
        unbound = rest.request("DELETE", f"/api/2.0/tether/workspaces/{TEAM}/binding")
    assert unbound.status == 200, unbound.text
    deadline = time.monotonic() + 60
    while TEAM in sync_status(server)["worker"]["workspaces"]:
        assert time.monotonic() < deadline, "team-b's worker still runs after the unbind"
        time.sleep(0.2)
    third_b = work_b.run(team, exp_b, points=50)
    kept = _until(
        server,
        TEAM,
        lambda b: (
            b["binding"] == "local-only"
            and b["outbox"]["scanned_to"] == b["outbox"]["last_id"]
            and b["entities"]["pending"] >= 1
        ),
        "team-b kept local after its unbind",
    )
    assert not kept["entities"]["failed"] and not kept["entities"]["dead"], kept
    assert third_b not in _source_runs(ws_b)
