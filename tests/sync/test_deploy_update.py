"""Updating a deployment in place with the stock CLI (`mlflow deployments update -t tether`,
issue 18) on the stand-in's online endpoints: a new model version answers afterwards; a new
instance count scales by PATCH; a broken version fails with the reason and leaves the previous
one serving; kill -9 mid-update resumes without a second PUT; a version deleted before Azure
got the deployment fails before anything is deployed and leaves nothing behind."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

import pytest

from support import unique_name
from sync.sync_deploy import CRASHY, deployment, mlflow, predictions, run, train, wait_state
from sync.sync_servers import SyncedServerStarter

if TYPE_CHECKING:
    from standin.workspace import AzuremlWorkspace

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.parametrize("backend_kind", ["sqlite"], indirect=True),
]


def _ready(server: Any, ws: AzuremlWorkspace, name: str, versions: int = 1) -> str:
    """A registered model with `versions` versions (the second one answering the opposite of
    the first) and deployment `name` of version 1, READY: the model's name."""
    model = unique_name("clf").replace("_", "-")
    for number in range(versions):
        train(server.url, model, flip=number == 1)
    created = mlflow("create", "--name", name, "-m", f"models:/{model}/1", url=server.url)
    assert created.returncode == 0, created.stderr
    return model


def _dep(ws: AzuremlWorkspace, name: str) -> dict[str, Any]:
    [endpoint] = ws.online()
    [found] = endpoint["deployments"]
    assert found["name"] == name
    return dict(found)


def test_update_to_a_new_version_then_scale(
    start_synced_server: SyncedServerStarter, azureml_workspace: AzuremlWorkspace
) -> None:
    ws = azureml_workspace
    server = start_synced_server()
    model = _ready(server, ws, "dep-upd", versions=2)
    before, local_v1 = predictions(server.url, "dep-upd", f"models:/{model}/1")
    assert before == local_v1
    mark = ws.mark()
    updated = mlflow("update", "--name", "dep-upd", "-m", f"models:/{model}/2", url=server.url)
    assert updated.returncode == 0, updated.stderr
    assert "Deployment dep-upd is updated (with flavor python_function)" in updated.stdout
    found = deployment(server, "dep-upd")
    assert (found["state"], found["model_uri"], found["model_version"]) == (
        "READY",
        f"models:/{model}/2",
        "2",
    )
    assert "error" not in found and "update" not in found, found
    after, local_v2 = predictions(server.url, "dep-upd", f"models:/{model}/2")
    assert after == local_v2 and after != before, (before, after)
    assert _dep(ws, "dep-upd")["model"].endswith(f"/models/{model}/versions/2")
    puts = ws.requests(mark, path="deployments/dep-upd$", method="PUT")
    assert [p["status"] for p in puts] == [200], "one PUT updated the existing deployment"

    mark = ws.mark()
    scaled = mlflow("update", "--name", "dep-upd", "-C", "instance_count=2", url=server.url)
    assert scaled.returncode == 0, scaled.stderr
    assert deployment(server, "dep-upd")["instance_count"] == 2
    assert _dep(ws, "dep-upd")["instance_count"] == 2
    patches = ws.requests(mark, path="deployments/dep-upd$", method="PATCH")
    assert [p["status"] for p in patches] == [202], "scaled by PATCH, a long-running op"
    assert ws.requests(mark, path="deployments/dep-upd$", method="PUT") == []
    assert predictions(server.url, "dep-upd", f"models:/{model}/2")[0] == local_v2

    mark = ws.mark()
    again = mlflow("update", "--name", "dep-upd", "-m", f"models:/{model}/2", url=server.url)
    assert again.returncode == 0, again.stderr  # what serves already: nothing sent
    nothing = mlflow("update", "--name", "dep-upd", url=server.url)
    assert nothing.returncode != 0 and "Nothing to update" in nothing.stderr, nothing.stderr
    retype = mlflow(
        "update", "--name", "dep-upd", "-C", "instance_type=Standard_F4s_v2", url=server.url
    )
    assert retype.returncode != 0 and "instance_type cannot change in place" in retype.stderr
    quota = mlflow("update", "--name", "dep-upd", "-C", "instance_count=9", url=server.url)
    assert quota.returncode != 0, quota.stdout
    assert "Not enough quota available" in quota.stderr, quota.stderr
    assert "previous deployment still serves" in quota.stderr
    assert _dep(ws, "dep-upd")["instance_count"] == 2
    assert ws.requests(mark, path="deployments/dep-upd$", method="PUT") == []
    assert mlflow("delete", "--name", "dep-upd", url=server.url).returncode == 0
    assert ws.online() == []


def test_a_broken_version_fails_and_the_previous_one_serves_on(
    start_synced_server: SyncedServerStarter, azureml_workspace: AzuremlWorkspace
) -> None:
    ws = azureml_workspace
    server = start_synced_server()
    model = _ready(server, ws, "dep-keep")
    before, local_v1 = predictions(server.url, "dep-keep", f"models:/{model}/1")
    assert before == local_v1
    done = run([sys.executable, "-c", CRASHY, model], server.url)  # version 2 crashes
    assert done.returncode == 0, done.stderr
    failed = mlflow("update", "--name", "dep-keep", "-m", f"models:/{model}/2", url=server.url)
    assert failed.returncode != 0
    assert "User container has crashed" in failed.stderr, failed.stderr
    assert "cannot load the weights" in failed.stderr, "the deployment's logs are shown"
    assert f"previous deployment still serves (models:/{model}/1" in failed.stderr
    found = deployment(server, "dep-keep")
    assert (found["state"], found["model_uri"]) == ("READY", f"models:/{model}/1"), found
    assert "User container has crashed" in found["error"]
    assert predictions(server.url, "dep-keep", f"models:/{model}/1")[0] == local_v1
    assert ws.online()[0]["traffic"] == {"dep-keep": 100}
    # A later scale puts the model that serves back into Azure's spec (not the broken one).
    mark = ws.mark()
    scaled = mlflow("update", "--name", "dep-keep", "-C", "instance_count=2", url=server.url)
    assert scaled.returncode == 0, scaled.stderr
    assert _dep(ws, "dep-keep")["model"].endswith(f"/models/{model}/versions/1")
    assert _dep(ws, "dep-keep")["state"] == "Succeeded"
    assert len(ws.requests(mark, path="deployments/dep-keep$", method="PUT")) == 1
    assert "error" not in deployment(server, "dep-keep")


def test_kill_9_mid_update_resumes_without_a_second_put(
    start_synced_server: SyncedServerStarter, azureml_workspace: AzuremlWorkspace
) -> None:
    ws = azureml_workspace
    server = start_synced_server()
    model = _ready(server, ws, "dep-kup", versions=2)
    ws.quirks(deployment_provisioning_seconds=6.0)
    mark = ws.mark()
    with server.rest() as rest:
        body = {"name": "dep-kup", "model_uri": f"models:/{model}/2"}
        answer = rest.post("/api/2.0/tether/deployments/update", body)
    assert answer.status == 200, answer.text
    assert answer.json["deployment"]["update"]["model_uri"] == f"models:/{model}/2"
    assert answer.json["deployment"]["model_uri"] == f"models:/{model}/1", "v1 serves meanwhile"
    deadline = time.monotonic() + 120
    while not ws.requests(mark, path="deployments/dep-kup$", method="PUT"):
        assert time.monotonic() < deadline, "the update was never sent"
        time.sleep(0.1)
    server.process.proc.kill()  # kill -9 while Azure rolls the update out
    server.process.proc.wait(10)
    server.stop()
    restarted = start_synced_server(server.backend_uri)
    found = wait_state(restarted, "dep-kup", {"READY", "FAILED"})
    assert (found["state"], found["model_uri"]) == ("READY", f"models:/{model}/2"), found
    puts = ws.requests(mark, path="deployments/dep-kup$", method="PUT")
    assert len(puts) == 1, "followed to the end, never sent again"
    remote, local_v2 = predictions(restarted.url, "dep-kup", f"models:/{model}/2")
    assert remote == local_v2


def test_version_deleted_before_azure_got_the_deployment_leaves_nothing(
    start_synced_server: SyncedServerStarter, azureml_workspace: AzuremlWorkspace
) -> None:
    ws = azureml_workspace
    ws.quirks(endpoint_provisioning_seconds=5.0)
    server = start_synced_server()
    model = unique_name("clf").replace("_", "-")
    train(server.url, model)
    mark = ws.mark()
    with server.rest() as rest:
        body = {"name": "dep-gone", "model_uri": f"models:/{model}/1"}
        assert rest.post("/api/2.0/tether/deployments/create", body).status == 200
    deadline = time.monotonic() + 120
    while not ws.requests(mark, path="onlineEndpoints/dep-gone$", method="PUT"):
        assert time.monotonic() < deadline, "the endpoint was never requested"
        time.sleep(0.1)
    with server.rest() as rest:  # while Azure provisions the endpoint
        gone = rest.delete("model-versions/delete", {"name": model, "version": "1"})
    assert gone.status == 200, gone.text
    found = wait_state(server, "dep-gone", {"READY", "FAILED"}, timeout=60)
    assert found["state"] == "FAILED", found
    assert f"model version models:/{model}/1 was deleted" in found["error"], found
    assert ws.online() == [], "the endpoint made for it is removed"
    assert ws.requests(mark, path="deployments/dep-gone$", method="PUT") == []
