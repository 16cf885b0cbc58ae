"""Deployments with workspaces on (issue 18 item 6, issue 17 item 2): a deployment requested
in an MLflow workspace goes to the Azure ML workspace that workspace is bound to.

`tether serve --enable-workspaces --azureml-workspace A` with `team-b` bound to stand-in B
(its own named credential) while the server runs. ARM is one host for both stand-ins (the
`ArmRouter`, as management.azure.com routes by scope). A model registered and deployed in
team-b with the stock client (MLFLOW_WORKSPACE) gets its endpoint in B only, answers as the
local model does, and is deleted cleanly; A sees no online-endpoint request at all. A deploy
request in an unbound workspace is refused, and nothing is created anywhere. Unbound while it
serves, the deployment is left alone (a delete waits, saying why) until team-b is bound again.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from standin.arm_router import ArmRouter
from support import unique_name
from sync.sync_deploy import mlflow, predictions, train
from sync.sync_servers import sync_env

if TYPE_CHECKING:
    from standin.identity import ManagedIdentityEndpoint
    from standin.workspace import AzuremlWorkspace
    from support import TetherServerStarter

pytestmark = [
    pytest.mark.timeout(600),
    pytest.mark.parametrize("backend_kind", ["sqlite"], indirect=True),
]
TEAM, LOCAL = "team-b", "team-local"
DEPLOY = "/api/2.0/tether/deployments"


@pytest.fixture
def arm_router(
    azureml_workspace: AzuremlWorkspace, team_b_workspace: AzuremlWorkspace
) -> Iterator[ArmRouter]:
    router = ArmRouter(azureml_workspace, team_b_workspace)
    try:
        yield router
    finally:
        router.stop()


def test_a_workspace_deploys_into_its_bound_azure_workspace_only(
    start_tether_server: TetherServerStarter,
    azureml_workspace: AzuremlWorkspace,
    team_b_workspace: AzuremlWorkspace,
    azureml_identity: ManagedIdentityEndpoint,
    arm_router: ArmRouter,
    tmp_path: Path,
) -> None:
    ws_a, ws_b = azureml_workspace, team_b_workspace
    bundle = tmp_path / "cas.pem"  # the server trusts both stand-ins' CAs (each has its own)
    bundle.write_text(Path(ws_a.ca_bundle).read_text() + Path(ws_b.ca_file).read_text())
    env = {
        **sync_env(ws_a, azureml_identity),
        "SSL_CERT_FILE": str(bundle),
        "REQUESTS_CA_BUNDLE": str(bundle),
        "TETHER_AZUREML_ARM_ENDPOINT": arm_router.endpoint,
        "TETHER_AZURE_CREDENTIAL_TEAMB_CLIENT_ID": azureml_identity.client_id,
    }
    server = start_tether_server(
        extra_args=["--enable-workspaces", "--azureml-workspace", ws_a.arm_id],
        env=env,
        artifacts_destination=str(tmp_path / "artifacts"),
    )
    mark_a, mark_b = ws_a.mark(), ws_b.mark()
    with server.rest() as rest:
        for team in (TEAM, LOCAL):
            made = rest.post("/api/3.0/mlflow/workspaces", {"name": team})
            assert made.status == 201, made.text
        binding = {"azureml_workspace": ws_b.tracking_uri, "credential": "TEAMB"}
        bound = rest.post(f"/api/2.0/tether/workspaces/{TEAM}/binding", binding)
        assert bound.status == 200, bound.text

    # An unbound workspace has nowhere to deploy to: refused, nothing recorded or created.
    local_model = unique_name("clf").replace("_", "-")
    train(server.url, local_model, workspace=LOCAL)
    refused = mlflow(
        "create", "--name", "dep-local", "-m", f"models:/{local_model}/1",
        url=server.url, workspace=LOCAL,
    )  # fmt: skip
    assert refused.returncode != 0, refused.stdout
    assert f"Workspace '{LOCAL}' is not bound to an Azure ML workspace" in refused.stderr
    assert "tether workspaces bind" in refused.stderr
    with server.rest() as rest:
        listed = rest.in_workspace(LOCAL).get("/api/2.0/tether/deployments/list")
    assert listed.status == 200 and listed.json["deployments"] == [], listed.text

    # team-b's model, deployed from team-b: into B, never A.
    model = unique_name("clf").replace("_", "-")
    train(server.url, model, workspace=TEAM)
    name = f"dep-{os.urandom(4).hex()}"
    created = mlflow(
        "create", "--name", name, "-m", f"models:/{model}/1", url=server.url, workspace=TEAM
    )
    assert created.returncode == 0, created.stderr
    [endpoint] = ws_b.online()
    assert endpoint["name"] == name and endpoint["traffic"] == {name: 100}
    [deployment] = endpoint["deployments"]
    assert deployment["state"] == "Succeeded"
    # The Azure model version it serves is B's (an Azure id is valid only where it was synced).
    assert deployment["model"].lower().startswith(ws_b.scope.lower() + "/models/")
    assert deployment["model"].endswith(f"/models/{model}/versions/1")
    assert ws_a.online() == []
    assert ws_a.requests(mark_a, path="onlineEndpoints") == []

    remote, local = predictions(server.url, name, f"models:/{model}/1", workspace=TEAM)
    assert remote == local and len(local) == 3
    with server.rest() as rest:
        shown = rest.in_workspace(TEAM).get("/api/2.0/tether/deployments/get", {"name": name})
    assert shown.status == 200, shown.text
    assert shown.json["deployment"]["state"] == "READY"
    assert shown.json["deployment"]["workspace"] == TEAM
    unseen = mlflow("get", "--name", name, url=server.url)  # `default` does not see it
    assert unseen.returncode != 0 and "not found" in unseen.stderr

    # Unbound meanwhile, the deployment stays where it is: a delete waits, with the reason,
    # and touches nothing until the workspace is bound again (no restart either way).
    mark_b = ws_b.mark()
    with server.rest() as rest:
        assert rest.delete(f"/api/2.0/tether/workspaces/{TEAM}/binding").status == 200
        team = rest.in_workspace(TEAM)
        assert team.post(f"{DEPLOY}/delete", {"name": name}).status == 200
        deadline = time.monotonic() + 60
        while "is not bound to an Azure ML workspace" not in str(
            (held := team.get(f"{DEPLOY}/get", {"name": name}).json["deployment"]).get("error")
        ):
            assert time.monotonic() < deadline, held
            time.sleep(0.2)
        assert held["state"] == "DELETING", held
        assert [e["name"] for e in ws_b.online()] == [name]
        assert ws_b.requests(mark_b, path="onlineEndpoints") == []
        again = rest.post(f"/api/2.0/tether/workspaces/{TEAM}/binding", binding)
        assert again.status == 200, again.text
    deleted = mlflow("delete", "--name", name, url=server.url, workspace=TEAM)
    assert deleted.returncode == 0, deleted.stderr
    assert ws_b.online() == []
    assert ws_b.requests(mark_b, path=f"onlineEndpoints/{name}$", method="DELETE")
    assert ws_a.requests(mark_a, path="onlineEndpoints") == []
    assert not ws_b.requests(mark_b, path="onlineEndpoints/dep-local")
