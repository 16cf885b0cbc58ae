"""Deployments with authentication on: deploying, changing traffic and deleting need MANAGE on
the registered model, reading and predicting READ (issue 18), a listing shows only what the
caller may read. This server has no Azure ML workspace bound, so a request the gate lets
through is refused by the service (400 INVALID_STATE, nothing billable can start): the answer
tells which of the two spoke. The deployments themselves are tested in tests/sync.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support import TetherServer, unique_name
from support.auth import create_users, grant, http

USERS = ("alice", "bob", "carol", "dave")
PASSWORDS = {name: f"{name}-password-12" for name in USERS}
DEPLOY = "/api/2.0/tether/deployments"
V2 = "/api/2.0/mlflow"
V3 = "/api/3.0/mlflow"
GATE_LETS_THROUGH, DENIED = 400, 403


@pytest.fixture(scope="module")
def model(auth_server: TetherServer) -> Iterator[str]:
    """alice's registered model (she holds MANAGE), dave granted MANAGE, carol DENY; bob has
    the default READ."""
    url = auth_server.url
    create_users(url, PASSWORDS)
    name = unique_name("deployable")
    with http(url, "alice", PASSWORDS["alice"]) as alice:
        answer = alice.post(f"{V2}/registered-models/create", json={"name": name})
        assert answer.status_code == 200, answer.text
        for user, permission in (("dave", "MANAGE"), ("carol", "DENY")):
            grant(alice, user, "registered_model", name, permission)
    yield name


def _each(url: str, call: str, body: dict[str, object]) -> dict[str, int]:
    method, path = call.split(" ")
    got = {}
    for user in USERS:
        with http(url, user, PASSWORDS[user]) as client:
            if method == "GET":
                answer = client.get(path, params=body)
            else:
                answer = client.post(path, json=body)
            got[user] = answer.status_code
            if answer.status_code == GATE_LETS_THROUGH:
                assert answer.json()["error_code"] == "INVALID_STATE", answer.text
    return got


@pytest.mark.parametrize("uri", ["models:/{}/1", "models:/{}@champion"])
def test_deploying_needs_manage_on_the_model(
    auth_server: TetherServer, model: str, uri: str
) -> None:
    body = {"name": "ep-" + unique_name("d")[-8:].lower(), "model_uri": uri.format(model)}
    got = _each(auth_server.url, f"POST {DEPLOY}/create", body)
    assert got == {
        "alice": GATE_LETS_THROUGH,
        "bob": DENIED,
        "carol": DENIED,
        "dave": GATE_LETS_THROUGH,
    }


def test_a_deployment_that_does_not_exist_is_no_oracle(auth_server: TetherServer) -> None:
    for call in (
        f"GET {DEPLOY}/get",
        f"POST {DEPLOY}/predict",
        f"POST {DEPLOY}/delete",
        f"POST {DEPLOY}/update",
    ):
        got = _each(auth_server.url, call, {"name": "nothing-here", "inputs": {}})
        assert got == dict.fromkeys(USERS, DENIED), call
    got = _each(
        auth_server.url, f"POST {DEPLOY}/update-endpoint", {"endpoint": "none", "traffic": {}}
    )
    assert got == dict.fromkeys(USERS, DENIED)


def test_listing_needs_a_signed_in_caller(auth_server: TetherServer) -> None:
    with http(auth_server.url) as anonymous:
        assert anonymous.get(f"{DEPLOY}/list").status_code == 401
    got = _each(auth_server.url, f"GET {DEPLOY}/list", {})
    assert got == dict.fromkeys(USERS, 200)
