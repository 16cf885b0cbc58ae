"""Deployments with `--enable-workspaces` (issue 18): a deployment belongs to the workspace it
was requested in. Another workspace neither lists, reads, calls, updates nor deletes it, a
model_uri resolves in the request's workspace, and a name stays taken across the server
(Azure ML endpoint names are unique per region).

A workspace deploys into the Azure ML workspace it is bound to, so the two teams are bound
(to an Azure workspace nobody serves, with a credential the environment lacks: nothing is
called in Azure, the driver holds the rows and the requests stay PENDING_SYNC). That is the
deployments API's scoping, which is what this tests; `default` is unbound here (no
--azureml-workspace), so a deployment requested in it is refused. The Azure side, each
workspace's deployments in its own Azure workspace, is tested in tests/sync/test_deploy_*.py.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI

from support import MlflowRest, free_port, unique_name
from sync.sync_deploy import mlflow, train
from tether.app import create_app
from tether.config import Settings

DEPLOY = "/api/2.0/tether/deployments"
HEADER = "X-MLFLOW-WORKSPACE"
UNSERVED = "subscriptions/00000000-0000-4000-8000-000000000000/resourceGroups/rg/workspaces/ws"


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    app: FastAPI = create_app(Settings(data_dir=tmp_path, enable_workspaces=True))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)


def test_a_deployment_is_seen_only_in_its_workspace(url: str) -> None:
    suffix = uuid.uuid4().hex[:6]
    team_a, team_b = f"team-a-{suffix}", f"team-b-{suffix}"
    with MlflowRest(url) as rest:
        for team in (team_a, team_b):
            made = rest.post("/api/3.0/mlflow/workspaces", {"name": team})
            assert made.status == 201, made.text
            binding = {"azureml_workspace": UNSERVED, "credential": "NOPE"}
            bound = rest.post(f"/api/2.0/tether/workspaces/{team}/binding", binding)
            assert bound.status == 200, bound.text
    model = unique_name("clf").replace("_", "-")
    train(url, model, workspace=team_a)
    train(url, model, workspace=team_b)  # the same name in the other workspace
    other = unique_name("only-a").replace("_", "-")
    train(url, other, workspace=team_a)

    a, b, default = (
        MlflowRest(url, headers={HEADER: team_a}),
        MlflowRest(url, headers={HEADER: team_b}),
        MlflowRest(url),
    )
    with a, b, default:
        created = a.post(f"{DEPLOY}/create", {"name": "dep-ws", "model_uri": f"models:/{model}/1"})
        assert created.status == 200, created.text
        assert created.json["deployment"]["workspace"] == team_a
        assert [d["name"] for d in a.get(f"{DEPLOY}/list").json["deployments"]] == ["dep-ws"]
        assert a.get(f"{DEPLOY}/get", {"name": "dep-ws"}).status == 200

        # `default` is bound to no Azure ML workspace here: it has nowhere to deploy to.
        train(url, model)
        unbound = default.post(
            f"{DEPLOY}/create", {"name": "dep-default", "model_uri": f"models:/{model}/1"}
        )
        assert unbound.status == 400, unbound.text
        assert unbound.json["error_code"] == "INVALID_STATE"
        message = unbound.json["message"]
        assert "Workspace 'default' is not bound to an Azure ML workspace" in message
        assert "--azureml-workspace" in message

        for outside in (b, default):
            assert outside.get(f"{DEPLOY}/list").json["deployments"] == []
            assert outside.get(f"{DEPLOY}/get", {"name": "dep-ws"}).status == 404
            for call, body in (
                ("predict", {"name": "dep-ws", "inputs": [[0.5, 1.0]]}),
                ("update", {"name": "dep-ws", "config": {"instance_count": "2"}}),
                ("delete", {"name": "dep-ws"}),
            ):
                answer = outside.post(f"{DEPLOY}/{call}", body)
                assert answer.status == 404, (call, answer.text)
                assert answer.json["message"] == "Deployment 'dep-ws' not found"
            moved = outside.post(
                f"{DEPLOY}/update-endpoint", {"endpoint": "dep-ws", "traffic": {"dep-ws": 100}}
            )
            assert moved.status == 404, moved.text

        # The name is the server's (Azure endpoint names are unique per region).
        taken = b.post(f"{DEPLOY}/create", {"name": "dep-ws", "model_uri": f"models:/{model}/1"})
        assert taken.status == 400, taken.text
        assert taken.json["error_code"] == "RESOURCE_ALREADY_EXISTS"
        assert "taken in another workspace" in taken.json["message"]
        # model_uri resolves in the request's workspace: team-b's own model, not team-a's.
        missing = b.post(f"{DEPLOY}/create", {"name": "dep-wb", "model_uri": f"models:/{other}/1"})
        assert missing.status == 404, missing.text
        assert f"Registered Model with name={other} not found" in missing.json["message"]
        own = b.post(f"{DEPLOY}/create", {"name": "dep-wb", "model_uri": f"models:/{model}/1"})
        assert own.status == 200, own.text
        assert [d["name"] for d in b.get(f"{DEPLOY}/list").json["deployments"]] == ["dep-wb"]
        assert [d["name"] for d in a.get(f"{DEPLOY}/list").json["deployments"]] == ["dep-ws"]
        assert b.post(f"{DEPLOY}/delete", {"name": "dep-wb"}).status == 200
        assert a.get(f"{DEPLOY}/get", {"name": "dep-ws"}).json["deployment"]["state"] != "DELETING"

    # The stock plugin sends the client's workspace (MLFLOW_WORKSPACE) with every call.
    seen = mlflow("get", "--name", "dep-ws", url=url, workspace=team_a)
    assert seen.returncode == 0 and team_a in seen.stdout, seen.stderr
    unseen = mlflow("get", "--name", "dep-ws", url=url, workspace=team_b)
    assert unseen.returncode != 0 and "Deployment 'dep-ws' not found" in unseen.stderr
    listed = mlflow("list", url=url, workspace=team_b)
    assert listed.returncode == 0 and "dep-ws" not in listed.stdout, listed.stdout
