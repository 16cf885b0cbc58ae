"""Updating a live deployment with authentication on (issue 18's access rule): it needs
MANAGE on the registered model the deployment serves, and on the model it is to serve. A
user with READ or EDIT gets 403 PERMISSION_DENIED and nothing changes (the deployment, its
pending update, Azure: no PUT or PATCH is sent); a user with MANAGE updates it."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from support import TetherServerStarter, unique_name
from support.auth import ADMIN, ADMIN_PASSWORD, create_users, grant, http
from sync.sync_deploy import train
from sync.sync_servers import sync_env

if TYPE_CHECKING:
    from standin.identity import ManagedIdentityEndpoint
    from standin.workspace import AzuremlWorkspace

pytestmark = [
    pytest.mark.timeout(400),
    pytest.mark.parametrize("backend_kind", ["sqlite"], indirect=True),
]
USERS = ("alice", "bob", "erin", "dave")
PASSWORDS = {name: f"{name}-password-12" for name in USERS}
DEPLOY = "/api/2.0/tether/deployments"


def _get(client: httpx.Client, name: str) -> dict[str, Any]:
    answer = client.get(f"{DEPLOY}/get", params={"name": name})
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()["deployment"]
    return found


def _until_settled(client: httpx.Client, name: str) -> dict[str, Any]:
    deadline = time.monotonic() + 240
    while True:
        found = _get(client, name)
        if found["state"] in ("READY", "FAILED") and "update" not in found:
            return found
        assert time.monotonic() < deadline, found
        time.sleep(0.3)


def test_updating_a_live_deployment_needs_manage(
    start_tether_server: TetherServerStarter,
    azureml_workspace: AzuremlWorkspace,
    azureml_identity: ManagedIdentityEndpoint,
    tmp_path: Any,
) -> None:
    ws = azureml_workspace
    server = start_tether_server(
        extra_args=["--azureml-workspace", ws.arm_id, "--app-name", "basic-auth"],
        env={**sync_env(ws, azureml_identity), "TETHER_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD},
        artifacts_destination=str(tmp_path / "artifacts"),
    )
    create_users(server.url, PASSWORDS)
    alice_auth = ("alice", PASSWORDS["alice"])
    model = unique_name("clf").replace("_", "-")
    other = unique_name("other").replace("_", "-")
    train(server.url, model, auth=alice_auth)  # alice registers it: she holds MANAGE
    train(server.url, model, flip=True, auth=alice_auth)
    train(server.url, other, auth=(ADMIN, ADMIN_PASSWORD))  # dave may only READ this one
    name = "dep-auth"
    with http(server.url, *alice_auth) as alice:
        for user, permission in (("erin", "EDIT"), ("dave", "MANAGE")):
            grant(alice, user, "registered_model", model, permission)
        created = alice.post(
            f"{DEPLOY}/create", json={"name": name, "model_uri": f"models:/{model}/1"}
        )
        assert created.status_code == 200, created.text
        before = _until_settled(alice, name)
        assert (before["state"], before["model_version"]) == ("READY", "1"), before
        mark = ws.mark()

        refused = [
            ("bob", {"name": name, "model_uri": f"models:/{model}/2"}),  # READ (the default)
            ("erin", {"name": name, "model_uri": f"models:/{model}/2"}),  # EDIT
            ("erin", {"name": name, "config": {"instance_count": "2"}}),
            ("dave", {"name": name, "model_uri": f"models:/{other}/1"}),  # not on the new one
        ]
        for user, body in refused:
            with http(server.url, user, PASSWORDS[user]) as client:
                answer = client.post(f"{DEPLOY}/update", json=body)
            assert answer.status_code == 403, (user, body, answer.text)
            assert answer.json()["error_code"] == "PERMISSION_DENIED", answer.text
        unchanged = _get(alice, name)
        assert unchanged == before, (before, unchanged)
        assert not [r for r in ws.requests(mark) if r["method"] in ("PUT", "PATCH")]

        with http(server.url, "dave", PASSWORDS["dave"]) as dave:
            answer = dave.post(
                f"{DEPLOY}/update", json={"name": name, "model_uri": f"models:/{model}/2"}
            )
        assert answer.status_code == 200, answer.text
        after = _until_settled(alice, name)
    assert (after["state"], after["model_version"]) == ("READY", "2"), after
    puts = ws.requests(mark, path=f"deployments/{name}$", method="PUT")
    assert [p["status"] for p in puts] == [200], "one PUT updated the existing deployment"
