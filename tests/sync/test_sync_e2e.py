"""End to end, as a user runs it: `tether serve --azureml-workspace ...` with the sync worker in
the background, a training script on the stock MLflow client, the stand-in workspace as Azure;
then the faults only a real process can have (kill -9), the `tether sync` commands, and two
servers sharing one PostgreSQL database. Every scenario ends in the exact fidelity check.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from support import MlflowRest, unique_name
from sync.sync_fidelity import assert_fidelity, sent_points
from sync.sync_servers import run_tether, start_synced, sync_env, sync_status, wait_synced
from tether.db.engine import Database
from tether.sync.state import Key

if TYPE_CHECKING:
    from standin.identity import ManagedIdentityEndpoint
    from standin.workspace import AzuremlWorkspace
    from support import TetherServerStarter

pytestmark = pytest.mark.timeout(180)
sqlite_only = pytest.mark.parametrize("backend_kind", ["sqlite"], indirect=True)

TRAINING_SCRIPT = """
import sys, time
import mlflow
from mlflow.entities import Metric

mlflow.set_experiment(sys.argv[1])
with mlflow.start_run(run_name="train") as parent:
    mlflow.log_params({"lr": 0.01, "epochs": 2, "optimizer": "adam"})
    mlflow.set_tags({"stage": "dev", "team": "vision"})
    base = 1_700_000_000_000
    history = [Metric("loss", 1.0 / (i + 1), base + i, i) for i in range(700)]
    mlflow.MlflowClient().log_batch(parent.info.run_id, metrics=history)
    for epoch in range(2):
        with mlflow.start_run(run_name=f"epoch-{epoch}", nested=True):
            for step in range(30):
                mlflow.log_metrics({"acc": step / 30, "val_loss": 1 - step / 30}, step=step)
print(parent.info.run_id)
"""


def _with_db(uri: str, check: Callable[[Database], None]) -> None:
    db = Database(uri)
    try:
        check(db)
    finally:
        db.dispose()


@sqlite_only
def test_training_script_lands_in_the_workspace(
    start_tether_server: TetherServerStarter,
    azureml_workspace: AzuremlWorkspace,
    azureml_identity: ManagedIdentityEndpoint,
) -> None:
    server = start_synced(start_tether_server, azureml_workspace, azureml_identity)
    experiment = unique_name("mnist")
    script = subprocess.run(
        [sys.executable, "-c", TRAINING_SCRIPT, experiment],
        capture_output=True,
        text=True,
        timeout=120,
        env={
            "MLFLOW_TRACKING_URI": server.url,
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "DO_NOT_TRACK": "true",
            "PATH": "/usr/bin:/bin",
        },
    )
    assert script.returncode == 0, script.stderr
    parent = script.stdout.strip().splitlines()[-1]

    body = wait_synced(server)

    assert body["worker"]["enabled"] and body["worker"]["connected"], body["worker"]
    _with_db(server.backend_uri, lambda db: assert_fidelity(db, azureml_workspace.mlflow_url))
    detail = sync_status(server, f"run:{parent}")
    assert detail["status"] == "synced" and detail["outbox_rows_behind"] == 0
    assert {r["subject"] for r in detail["report"]} == {"metrics"}  # 700 points: split
    text = run_tether("sync", "status", "--backend-store-uri", server.backend_uri)
    assert text.returncode == 0, text.stderr
    total = next(line for line in text.stdout.splitlines() if line.startswith("total"))
    assert total.split()[1:] == ["0", "0", str(body["entities"]["synced"]), "0", "0"]


@sqlite_only
def test_kill_9_mid_sync_then_restart_delivers_exactly_once(
    start_tether_server: TetherServerStarter,
    azureml_workspace: AzuremlWorkspace,
    azureml_identity: ManagedIdentityEndpoint,
) -> None:
    ws = azureml_workspace
    ws.faults(path="runs/log-batch$", action="delay", seconds=0.3, times=None)
    server = start_synced(start_tether_server, ws, azureml_identity)
    mark = ws.mark()
    with server.rest() as rest:
        exp = rest.post("experiments/create", {"name": unique_name()}).json["experiment_id"]
        run = rest.post("runs/create", {"experiment_id": exp}).json["run"]["info"]["run_id"]
        for first in range(0, 2000, 1000):
            metrics = [
                {"key": "loss", "value": i / 9, "timestamp": 1_700_000_000_000 + i, "step": i}
                for i in range(first, first + 1000)
            ]
            assert rest.post("runs/log-batch", {"run_id": run, "metrics": metrics}).status == 200
    deadline = time.monotonic() + 30
    while len(ws.requests(mark, path="runs/log-batch$")) < 3:  # the 3rd is in flight
        assert time.monotonic() < deadline, "sync did not start"
        time.sleep(0.05)
    server.process.proc.kill()  # kill -9: no shutdown, its lease stays behind
    server.process.proc.wait(10)
    server.stop()

    restarted = start_synced(start_tether_server, ws, azureml_identity, server.backend_uri)
    wait_synced(restarted)

    def check(db: Database) -> None:
        assert_fidelity(db, ws.mlflow_url, runs=[run])
        with db.read() as session:
            from tether.sync import state

            entity = state.get(session, Key("run", run))
            assert entity is not None and entity.azure_id
            azure_run = entity.azure_id
        sent = sent_points(ws.requests(mark, path="runs/log-batch$"), azure_run)
        assert sum(sent.values()) == 2000 and set(sent.values()) == {1}, "no point twice"

    _with_db(restarted.backend_uri, check)


@sqlite_only
def test_sync_commands_drain_report_and_retry(
    start_tether_server: TetherServerStarter,
    azureml_workspace: AzuremlWorkspace,
    azureml_identity: ManagedIdentityEndpoint,
) -> None:
    ws = azureml_workspace
    server = start_tether_server()  # sync off: the outbox just fills up
    with server.rest() as rest:
        assert rest.get("/api/2.0/tether/sync/status").json["worker"] == {"enabled": False}
        good = rest.post("experiments/create", {"name": unique_name()}).json["experiment_id"]
        run = rest.post("runs/create", {"experiment_id": good}).json["run"]["info"]["run_id"]
        rest.post("runs/log-param", {"run_id": run, "key": "k", "value": "v"})
    args = ["--backend-store-uri", server.backend_uri, "--azureml-workspace", ws.arm_id]
    env = sync_env(ws, azureml_identity)

    drained = run_tether("sync", "run", *args, env=env)
    assert drained.returncode == 0, drained.stdout + drained.stderr
    _with_db(server.backend_uri, lambda db: assert_fidelity(db, ws.mlflow_url, runs=[run]))

    with server.rest() as rest:
        bad = rest.post("experiments/create", {"name": unique_name()}).json["experiment_id"]
    refusal = {"error_code": "INVALID_PARAMETER_VALUE", "message": "no (injected)"}
    ws.faults(path="experiments/create$", action="status", status=400, body=refusal, times=None)
    assert run_tether("sync", "run", *args, env=env).returncode == 4  # dead letter
    shown = run_tether(
        "sync", "status", "--json", "--backend-store-uri", server.backend_uri, env=env
    )
    errors = json.loads(shown.stdout)["errors"]
    assert [(e["entity"], e["status"]) for e in errors] == [(f"experiment:{bad}", "dead")]
    assert "no (injected)" in errors[0]["last_error"]

    ws.clear_faults()
    retried = run_tether("sync", "retry", "--all-dead", "--backend-store-uri", server.backend_uri)
    assert retried.stdout.strip() == f"requeued experiment:{bad}"
    assert run_tether("sync", "run", *args, env=env).returncode == 0
    _with_db(server.backend_uri, lambda db: assert_fidelity(db, ws.mlflow_url, runs=[run]))


@pytest.mark.parametrize("backend_kind", ["postgres"], indirect=True)
def test_two_servers_on_one_postgres_share_the_work(
    start_tether_server: TetherServerStarter,
    azureml_workspace: AzuremlWorkspace,
    azureml_identity: ManagedIdentityEndpoint,
) -> None:
    ws = azureml_workspace
    first = start_synced(start_tether_server, ws, azureml_identity)
    second = start_synced(start_tether_server, ws, azureml_identity, first.backend_uri)
    mark = ws.mark()
    runs: list[str] = []
    for server in (first, second, first, second):
        rest: MlflowRest
        with server.rest() as rest:
            exp = rest.post("experiments/create", {"name": unique_name()}).json["experiment_id"]
            for _ in range(2):
                run = rest.post("runs/create", {"experiment_id": exp}).json["run"]["info"]
                metrics = [
                    {"key": "m", "value": i, "timestamp": 1_700_000_000_000 + i, "step": i}
                    for i in range(600)
                ]
                rest.post("runs/log-batch", {"run_id": run["run_id"], "metrics": metrics})
                runs.append(run["run_id"])
    wait_synced(first)

    def check(db: Database) -> None:
        assert_fidelity(db, ws.mlflow_url, runs=runs)
        from tether.sync import state

        with db.read() as session:
            azure_runs = [state.get(session, Key("run", r)) for r in runs]
        requests = ws.requests(mark, path="runs/log-batch$")
        for entity in azure_runs:
            assert entity is not None and entity.azure_id
            sent = sent_points(requests, entity.azure_id)
            assert sum(sent.values()) == 600 and set(sent.values()) == {1}

    _with_db(first.backend_uri, check)
