"""Deploying with the stock MLflow 3 client and CLI (`-t tether`) to the stand-in's online
endpoints (issue 18): train, register, deploy, predict equals the local pyfunc's predict,
delete leaves nothing; a refused model changes nothing; kill -9 mid-provisioning resumes."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from support import unique_name
from sync.sync_deploy import CLIENT, CRASHY, GOOD_PIP, mlflow, run, train, wait_state
from sync.sync_servers import SyncedServerStarter, run_tether

if TYPE_CHECKING:
    from standin.workspace import AzuremlWorkspace

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.parametrize("backend_kind", ["sqlite"], indirect=True),
]


def _create_until_azure_provisions(server: Any, ws: AzuremlWorkspace, name: str) -> int:
    """Register a model, ask for its deployment `name`, and return once the stand-in got the
    deployment's PUT (Azure is provisioning it): the stand-in's request mark from before."""
    model = unique_name("clf").replace("_", "-")
    train(server.url, model)
    mark = ws.mark()
    with server.rest() as rest:
        body = {"name": name, "model_uri": f"models:/{model}/1"}
        assert rest.post("/api/2.0/tether/deployments/create", body).status == 200
    deadline = time.monotonic() + 120
    while not ws.requests(mark, path=f"deployments/{name}$", method="PUT"):
        assert time.monotonic() < deadline, "the deployment was never requested"
        time.sleep(0.1)
    return mark


def _until_deleted(server: Any, name: str) -> None:
    """Wait until `name` is gone (404), DELETING meanwhile and nothing else."""
    deadline = time.monotonic() + 120
    while True:
        with server.rest() as rest:
            response = rest.get("/api/2.0/tether/deployments/get", {"name": name})
        if response.status == 404:
            return
        assert response.json["deployment"]["state"] == "DELETING", response.json
        assert time.monotonic() < deadline, response.json
        time.sleep(0.2)


def test_cli_deploy_predict_delete(
    start_synced_server: SyncedServerStarter, azureml_workspace: AzuremlWorkspace, tmp_path: Path
) -> None:
    ws = azureml_workspace
    server = start_synced_server()
    model = unique_name("clf").replace("_", "-")
    train(server.url, model)
    name = f"dep-{os.urandom(4).hex()}"
    created = mlflow(
        "create",
        "--name",
        name,
        "-m",
        f"models:/{model}/1",
        "-C",
        "instance_count=1",
        url=server.url,
    )
    assert created.returncode == 0, created.stderr
    [endpoint] = ws.online()
    assert endpoint["name"] == name and endpoint["traffic"] == {name: 100}
    assert endpoint["tags"]["tether.managed"] == "true"
    [deployment] = endpoint["deployments"]
    assert deployment["state"] == "Succeeded" and deployment["instance_type"] == "Standard_DS3_v2"
    assert deployment["model"].endswith(f"/models/{model}/versions/1")

    got = run([sys.executable, "-c", CLIENT, name, f"models:/{model}/1", "predict"], server.url)
    assert got.returncode == 0, got.stderr
    answer = json.loads(got.stdout.strip().splitlines()[-1])
    assert answer["remote"] == answer["local"] and len(answer["local"]) == 3

    rows = tmp_path / "rows.json"
    rows.write_text(json.dumps({"0": [0.5, 2.5, 3.0], "1": [1.0, 0.0, 1.0]}))
    cli = mlflow("predict", "--name", name, "--input-path", str(rows), url=server.url)
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout.strip().splitlines()[-1])["predictions"] == answer["local"]
    with server.rest() as rest:  # the sync page lists it
        page = rest.get("/tether/")
    assert page.status == 200 and f"{name} (endpoint {name})" in page.text
    assert "READY" in page.text and "1 x Standard_DS3_v2" in page.text
    listed = mlflow("list", url=server.url)
    assert listed.returncode == 0 and name in listed.stdout, listed.stderr
    deleted = mlflow("delete", "--name", name, url=server.url)
    assert deleted.returncode == 0, deleted.stderr
    assert ws.online() == []
    missing = mlflow("get", "--name", name, url=server.url)
    assert missing.returncode != 0 and "not found" in missing.stderr
    # Deletion is idempotent (MLflow's BaseDeploymentClient contract): a retried delete passes.
    again = mlflow("delete", "--name", name, url=server.url)
    assert again.returncode == 0, again.stderr


@pytest.mark.parametrize(
    ("pip", "config", "expect"),
    [
        ("mlflow<3,scikit-learn", [], "azureml-ai-monitoring"),
        ("mlflow==3.17.2,scikit-learn,azureml-ai-monitoring", [], "MLflow 3.x"),
        (GOOD_PIP, ["-C", "instance_type=Standard_Nope"], "Unknown instance_type"),
    ],
)
def test_refused_before_anything_exists(
    start_synced_server: SyncedServerStarter,
    azureml_workspace: AzuremlWorkspace,
    pip: str,
    config: list[str],
    expect: str,
) -> None:
    server = start_synced_server()
    model = unique_name("clf").replace("_", "-")
    train(server.url, model, pip)
    mark = azureml_workspace.mark()
    refused = mlflow(
        "create", "--name", "dep-refused", "-m", f"models:/{model}/1", *config, url=server.url
    )
    assert refused.returncode != 0 and expect in refused.stderr, refused.stderr
    assert azureml_workspace.requests(mark, path="onlineEndpoints") == []
    bad_name = mlflow("create", "--name", "1-bad", "-m", f"models:/{model}/1", url=server.url)
    assert bad_name.returncode != 0 and "Invalid deployment name" in bad_name.stderr


def test_quota_failure_cleans_up_and_reports(
    start_synced_server: SyncedServerStarter, azureml_workspace: AzuremlWorkspace
) -> None:
    ws = azureml_workspace
    ws.quirks(vcpu_quota=6)
    server = start_synced_server()
    model = unique_name("clf").replace("_", "-")
    train(server.url, model)
    failed = mlflow("create", "--name", "dep-quota", "-m", f"models:/{model}/1", url=server.url)
    assert failed.returncode != 0
    assert "Not enough quota available for Standard_DS3_v2" in failed.stderr, failed.stderr
    assert ws.online() == [], "the endpoint made for it is removed"


def test_kill_9_mid_provisioning_resumes_without_a_second_create(
    start_synced_server: SyncedServerStarter, azureml_workspace: AzuremlWorkspace
) -> None:
    ws = azureml_workspace
    ws.quirks(deployment_provisioning_seconds=6.0)
    server = start_synced_server()
    mark = _create_until_azure_provisions(server, ws, "dep-kill")
    server.process.proc.kill()  # kill -9 while Azure provisions
    server.process.proc.wait(10)
    server.stop()
    restarted = start_synced_server(server.backend_uri)
    deadline = time.monotonic() + 120
    while True:
        with restarted.rest() as rest:
            found: dict[str, Any] = rest.get(
                "/api/2.0/tether/deployments/get", {"name": "dep-kill"}
            ).json
        if found["deployment"]["state"] in ("READY", "FAILED"):
            break
        assert time.monotonic() < deadline, found
        time.sleep(0.2)
    assert found["deployment"]["state"] == "READY", found
    puts = [e for e in ws.requests(mark, method="PUT") if "onlineEndpoints" in e["path"]]
    assert len([e for e in puts if e["path"].endswith("/deployments/dep-kill")]) == 1
    assert (
        len([e for e in puts if e["path"].endswith("/onlineEndpoints/dep-kill")]) == 2
    )  # create + traffic


def test_throttling_outage_lost_response_and_token_expiry_end_with_one_of_each(
    start_synced_server: SyncedServerStarter, azureml_workspace: AzuremlWorkspace
) -> None:
    ws = azureml_workspace
    server = start_synced_server()
    model = unique_name("clf").replace("_", "-")
    train(server.url, model)
    mark = ws.mark()
    ws.faults(
        {
            "path": "onlineEndpoints/dep-storm$",
            "method": "PUT",
            "action": "status",
            "status": 429,
            "retry_after": "1",
            "times": 6,
        },
        {"path": "mfeOperationsStatus", "action": "status", "status": 503, "times": 6},
        {"path": "deployments/dep-storm$", "method": "PUT", "action": "lost_response", "times": 1},
        # The token expires mid-poll: refused once whenever it was issued (a fresh one passes).
        {
            "path": "mfeOperationsStatus",
            "action": "reject_tokens",
            "issued_before": time.time() + 3600,
            "times": 1,
        },
    )
    with server.rest() as rest:
        body = {"name": "dep-storm", "model_uri": f"models:/{model}/1"}
        assert rest.post("/api/2.0/tether/deployments/create", body).status == 200
    found = wait_state(server, "dep-storm", {"READY", "FAILED"})
    assert found["state"] == "READY", found
    [endpoint] = ws.online()
    assert [d["name"] for d in endpoint["deployments"]] == ["dep-storm"]
    puts = ws.requests(mark, path="deployments/dep-storm$", method="PUT")
    assert puts[0]["status"] == 201, "created once; a resend met the running op"
    assert all(p["status"] in (201, 409) for p in puts), puts
    assert sum(p["status"] == 201 for p in puts) == 1
    assert len([f for f in ws.fault_rules() if f["hits"]]) == 4, ws.fault_rules()


def test_second_deployment_by_alias_with_a_traffic_split(
    start_synced_server: SyncedServerStarter, azureml_workspace: AzuremlWorkspace
) -> None:
    ws = azureml_workspace
    server = start_synced_server()
    model = unique_name("clf").replace("_", "-")
    train(server.url, model)
    train(server.url, model)  # version 2
    with server.rest() as rest:
        alias = {"name": model, "alias": "champion", "version": "2"}
        assert rest.post("registered-models/alias", alias).status == 200
    first = mlflow("create", "--name", "dep-blue", "-m", f"models:/{model}/1", url=server.url)
    assert first.returncode == 0, first.stderr
    second = mlflow(
        "create",
        "--name",
        "dep-green",
        "-m",
        f"models:/{model}@champion",
        "--endpoint",
        "dep-blue",
        url=server.url,
    )
    assert second.returncode == 0, second.stderr
    [endpoint] = ws.online()
    assert endpoint["traffic"] == {"dep-blue": 100}, "a joining deployment starts at 0 %"
    models = {d["name"]: d["model"] for d in endpoint["deployments"]}
    assert models["dep-green"].endswith(f"/models/{model}/versions/2")
    split = mlflow(
        "update-endpoint",
        "--endpoint",
        "dep-blue",
        "-C",
        'traffic={"dep-blue": 40, "dep-green": 60}',
        url=server.url,
    )
    assert split.returncode == 0, split.stderr
    assert ws.online()[0]["traffic"] == {"dep-blue": 40, "dep-green": 60}
    busy = mlflow("delete", "--name", "dep-blue", url=server.url)
    assert busy.returncode != 0 and "still has deployment" in busy.stderr
    moved = mlflow(
        "update-endpoint",
        "--endpoint",
        "dep-blue",
        "-C",
        'traffic={"dep-blue": 100}',
        url=server.url,
    )
    assert moved.returncode == 0, moved.stderr
    for name in ("dep-green", "dep-blue"):
        gone = mlflow("delete", "--name", name, url=server.url)
        assert gone.returncode == 0, gone.stderr
    assert ws.online() == []


def test_name_taken_and_container_crash_fail_with_the_reason_and_leave_nothing(
    start_synced_server: SyncedServerStarter, azureml_workspace: AzuremlWorkspace
) -> None:
    ws = azureml_workspace
    ws.quirks(endpoint_names_taken=["dep-taken"])
    server = start_synced_server()
    model = unique_name("clf").replace("_", "-")
    train(server.url, model)
    taken = mlflow("create", "--name", "dep-taken", "-m", f"models:/{model}/1", url=server.url)
    assert taken.returncode != 0 and "already an endpoint with this name" in taken.stderr
    assert ws.online() == []
    # A crash Tether cannot foresee: the model's own loading code fails in the container.
    crashy = unique_name("crashy").replace("_", "-")
    done = run([sys.executable, "-c", CRASHY, crashy], server.url)
    assert done.returncode == 0, done.stderr
    crash = mlflow("create", "--name", "dep-crash", "-m", f"models:/{crashy}/1", url=server.url)
    assert crash.returncode != 0
    assert "User container has crashed" in crash.stderr, crash.stderr
    assert "cannot load the weights" in crash.stderr, "the deployment's logs are shown"
    assert ws.online() == [], "the endpoint made for it is removed"
    kept = mlflow(
        "create",
        "--name",
        "dep-crash2",
        "-m",
        f"models:/{crashy}/1",
        "-C",
        "keep_failed=true",
        url=server.url,
    )
    assert kept.returncode != 0
    [endpoint] = ws.online()
    assert endpoint["name"] == "dep-crash2" and endpoint["deployments"][0]["state"] == "Failed"
    assert mlflow("delete", "--name", "dep-crash2", url=server.url).returncode == 0
    assert ws.online() == []


def test_kill_9_mid_deletion_resumes_and_deletes_once(
    start_synced_server: SyncedServerStarter, azureml_workspace: AzuremlWorkspace
) -> None:
    ws = azureml_workspace
    server = start_synced_server()
    model = unique_name("clf").replace("_", "-")
    train(server.url, model)
    with server.rest() as rest:
        body = {"name": "dep-del", "model_uri": f"models:/{model}/1"}
        assert rest.post("/api/2.0/tether/deployments/create", body).status == 200
    assert wait_state(server, "dep-del", {"READY", "FAILED"})["state"] == "READY"
    ws.quirks(delete_seconds=6.0)
    mark = ws.mark()
    with server.rest() as rest:
        assert rest.post("/api/2.0/tether/deployments/delete", {"name": "dep-del"}).status == 200
    deadline = time.monotonic() + 60
    while not ws.requests(mark, path="onlineEndpoints/dep-del$", method="DELETE"):
        assert time.monotonic() < deadline, "the endpoint was never deleted"
        time.sleep(0.1)
    server.process.proc.kill()  # kill -9 while Azure deletes
    server.process.proc.wait(10)
    server.stop()
    assert [e["state"] for e in ws.online()] == ["Deleting"]
    restarted = start_synced_server(server.backend_uri)
    _until_deleted(restarted, "dep-del")
    assert ws.online() == []
    deletes = ws.requests(mark, path="onlineEndpoints/dep-del$", method="DELETE")
    assert [d["status"] for d in deletes] == [202], "deleted once, then followed to the end"
    listed = run_tether(
        "deployments", "--all", "--json", "--backend-store-uri", restarted.backend_uri
    )
    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)["deployments"]
    assert (row["name"], row["state"]) == ("dep-del", "DELETED")


def test_delete_while_creating_wins(
    start_synced_server: SyncedServerStarter, azureml_workspace: AzuremlWorkspace
) -> None:
    """A delete asked for while the driver is inside a create step is not overwritten by
    that step: the deployment ends deleted and the stand-in empty."""
    ws = azureml_workspace
    ws.quirks(deployment_provisioning_seconds=4.0)
    server = start_synced_server()
    _create_until_azure_provisions(server, ws, "dep-race")
    with server.rest() as rest:
        assert rest.post("/api/2.0/tether/deployments/delete", {"name": "dep-race"}).status == 200
    _until_deleted(server, "dep-race")
    assert ws.online() == []
