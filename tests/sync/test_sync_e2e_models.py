"""End to end with files and models: the stock MLflow 3 client logs artifacts and an sklearn
model registered by name to `tether serve` with sync on; the stand-in ends with the same
bytes, a registered model and a READY version whose source is the Azure run's artifacts.
Then kill -9 in the middle of the uploads, and a restart: every file once, bytes equal."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import pytest
from azure.core.exceptions import ResourceNotFoundError

from support import unique_name
from sync.sync_fidelity import InnerMlflow
from sync.sync_servers import SyncedServerStarter, sync_status, wait_synced

if TYPE_CHECKING:
    from standin.workspace import AzuremlWorkspace

pytestmark = pytest.mark.timeout(180)
sqlite_only = pytest.mark.parametrize("backend_kind", ["sqlite"], indirect=True)

TRAINING_SCRIPT = """
import os, sys
import mlflow
import numpy as np
from sklearn.linear_model import LogisticRegression

experiment, model_name, folder = sys.argv[1:4]
mlflow.set_experiment(experiment)
with mlflow.start_run(run_name="train") as run:
    mlflow.log_param("C", 1.0)
    mlflow.log_artifacts(folder)                      # a nested folder and a multi-MiB file
    X = np.array([[0.0], [1.0], [2.0], [3.0]]); y = np.array([0, 0, 1, 1])
    info = mlflow.sklearn.log_model(
        LogisticRegression().fit(X, y), name="model", registered_model_name=model_name
    )
mlflow.MlflowClient().transition_model_version_stage(model_name, "1", "Staging")
print(run.info.run_id, info.model_id)
"""


def _files(root: str) -> dict[str, bytes]:
    found = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                found[os.path.relpath(path, root).replace(os.sep, "/")] = f.read()
    return found


def _write(root: str, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)


def _script_env(url: str) -> dict[str, str]:
    return {
        "MLFLOW_TRACKING_URI": url,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
        "PATH": "/usr/bin:/bin",
    }


def _azure_run(detail: dict[str, Any]) -> str:
    azure_id = detail["azure_id"]
    assert isinstance(azure_id, str)
    return azure_id


@pytest.mark.parametrize("backend_kind", ["sqlite", "postgres"], indirect=True)
def test_training_with_artifacts_and_a_registered_model(
    start_synced_server: SyncedServerStarter,
    azureml_workspace: AzuremlWorkspace,
    tmp_path: Any,
    backend_kind: str,
) -> None:
    """On PostgreSQL a second server shares the store and drains with the first."""
    ws = azureml_workspace
    ws.quirks(blob_via_front=True)  # every blob write is seen by the stand-in
    files = {
        "config.json": b'{"lr": 0.01}',
        "plots/epochs/loss.csv": b"epoch,loss\n0,1.0\n1,0.5\n",
        "data/weights.bin": os.urandom(5 * 1024 * 1024 + 17),
    }
    _write(str(tmp_path / "out"), files)
    server = start_synced_server()
    servers = [server]
    if backend_kind == "postgres":  # a second server drains the same store alongside
        servers.append(start_synced_server(server.backend_uri))
    mark = ws.mark()
    name = unique_name("clf")
    script = subprocess.run(
        [sys.executable, "-c", TRAINING_SCRIPT, unique_name("e2e"), name, str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=150,
        env=_script_env(server.url),
    )
    assert script.returncode == 0, script.stderr
    run_id, model_id = script.stdout.strip().splitlines()[-1].split()

    wait_synced(server, timeout=90)

    azure_run = _azure_run(sync_status(server, f"run:{run_id}"))
    for path, data in files.items():
        assert ws.artifacts.read(azure_run, path) == data, path
    rehomed = [p for p in ws.artifacts.run_files(azure_run) if p.startswith("models/")]
    assert f"models/{model_id}/MLmodel" in rehomed
    inner = InnerMlflow(ws.mlflow_url)
    assert inner.get("registered-models/get", name=name)["registered_model"]["name"] == name
    versions = inner.get("model-versions/search", filter=f"name='{name}'")["model_versions"]
    assert len(versions) == 1
    assert versions[0]["status"] == "READY" and versions[0]["current_stage"] == "Staging"
    assert versions[0]["source"] == f"runs:/{azure_run}/models/{model_id}"
    creates = ws.requests(mark, path="model-versions/create$")
    assert [e["status"] for e in creates] == [200], "the version was created once"
    commits = ws.blob_commits(mark)
    for path in ws.artifacts.run_files(azure_run):  # the run's files and the re-homed model
        statuses = commits[f"ExperimentRun/dcid.{azure_run}/{path}"]
        assert statuses.count(201) == 1 and set(statuses) <= {201, 409}, (path, statuses)
    for other in servers:  # every process tells the same, shared truth
        body = sync_status(other)
        assert body["entities"]["synced"] == sum(body["entities"].values()), body
        assert body["worker"]["stats"]["dead_letters"] == 0, body


@sqlite_only
def test_kill_9_mid_upload_then_restart_uploads_every_file_once(
    start_synced_server: SyncedServerStarter, azureml_workspace: AzuremlWorkspace
) -> None:
    ws = azureml_workspace
    start = start_synced_server  # every server shares one artifact store
    files = {f"shard-{i:02d}/part.bin": os.urandom(2 * 1024 * 1024 + i) for i in range(16)}
    ws.quirks(blob_via_front=True)  # every blob write is seen by the stand-in

    server = start()
    mark = ws.mark()
    with server.rest() as rest:
        exp = rest.post("experiments/create", {"name": unique_name()}).json["experiment_id"]
        created = rest.post("runs/create", {"experiment_id": exp}).json["run"]["info"]
        root = created["artifact_uri"].split("mlflow-artifacts:/", 1)[1]
        for path, data in files.items():
            url = f"/api/2.0/mlflow-artifacts/artifacts/{root}/{path}"
            assert rest.request("PUT", url, content=data).status == 200
    deadline = time.monotonic() + 60
    azure_run, uploaded = "", 0
    while not uploaded:  # some files are in Azure, the others not yet
        assert time.monotonic() < deadline, "uploads did not start"
        batches = ws.requests(mark, path="batch/metadata$")
        if batches:
            found = re.search(r"/runs/([^/]+)/artifacts", batches[0]["path"])
            assert found is not None
            azure_run = found.group(1)
            try:
                uploaded = len(ws.artifacts.run_files(azure_run))
            except ResourceNotFoundError:  # no blob yet, not even the container
                uploaded = 0
        if not uploaded:
            time.sleep(0.05)  # the server and the stand-in need the (shared) CPU
    server.process.proc.kill()  # kill -9 mid-upload: no shutdown, its lease stays behind
    server.process.proc.wait(10)
    server.stop()
    assert uploaded < len(files), "killed too late to test anything"

    restarted = start(server.backend_uri)
    wait_synced(restarted)

    detail = sync_status(restarted, f"run_artifacts:{created['run_id']}")
    assert sorted(ws.artifacts.run_files(azure_run)) == sorted(files), json.dumps(detail)
    for path, data in files.items():
        got = ws.artifacts.read(azure_run, path)
        assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest(), path
    assert sorted(r["path"] for r in ws.artifact_index(azure_run)) == sorted(files)
    detail = sync_status(restarted, f"run_artifacts:{created['run_id']}")
    assert detail["report"] == [], "every file done, none refused as different"
    commits = ws.blob_commits(mark)
    for path in files:  # a replayed file met a 409 and compared equal: written once
        statuses = commits[f"ExperimentRun/dcid.{azure_run}/{path}"]
        assert statuses.count(201) == 1 and set(statuses) <= {201, 409}, (path, statuses)
