"""Binding a workspace to its own Azure ML workspace: `tether workspaces bind | unbind | list`
on a store (what a running server reads), the refusals, rebind and unbind semantics, and
the same over REST for admins only (`/api/2.0/tether/workspaces`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text

from support import TetherServer
from support.auth import ADMIN, ADMIN_PASSWORD, create_users, http, tether_auth_server
from sync.sync_servers import run_tether
from tether.db import migrate
from tether.db.engine import Database

A = "subscriptions/s-1/resourceGroups/rg-a/workspaces/ws-a"
A_URI = (
    "azureml://eastus.api.azureml.ms/mlflow/v1.0/subscriptions/S-1/resourceGroups/RG-A"
    "/providers/Microsoft.MachineLearningServices/workspaces/WS-A"
)
B = "subscriptions/s-2/resourceGroups/rg-b/workspaces/ws-b"
BASE = "/api/2.0/tether/workspaces"


@pytest.fixture
def store(backend_uri: str) -> Iterator[Database]:
    db = Database(backend_uri)
    migrate.upgrade(db)
    with db.write() as session:
        for name in ("team-a", "team-b"):
            session.execute(
                text("INSERT INTO workspaces (name) VALUES (:n) ON CONFLICT DO NOTHING"),
                {"n": name},
            )
        session.execute(text("DELETE FROM workspace_bindings"))
        session.execute(text("DELETE FROM sync_entities WHERE workspace LIKE 'team-%'"))
    try:
        yield db
    finally:
        db.dispose()


def _tether(backend_uri: str, *args: str) -> Any:
    return run_tether("workspaces", *args, "--backend-store-uri", backend_uri)


def _listing(backend_uri: str) -> dict[str, dict[str, Any]]:
    done = _tether(backend_uri, "list", "--json")
    assert done.returncode == 0, done.stderr
    return {w["name"]: w for w in json.loads(done.stdout)["workspaces"]}


def _delivered(db: Database, workspace: str, entity_id: str) -> None:
    """An entity of `workspace` with progress in Azure (as the worker leaves it)."""
    with db.write() as session:
        session.execute(
            text(
                "INSERT INTO sync_entities (entity_type, entity_id, azure_id, cursor, metric_hwm,"
                " status, attempts, next_attempt_at, updated_at, state, workspace)"
                " VALUES ('experiment', :i, 'azure-7', 12, 0, 'synced', 0, 0, 1, '{}', :w)"
            ),
            {"i": entity_id, "w": workspace},
        )


def _entity(db: Database, entity_id: str) -> tuple[Any, ...]:
    with db.read() as session:
        row = session.execute(
            text(
                "SELECT cursor, azure_id, status FROM sync_entities"
                " WHERE entity_type = 'experiment' AND entity_id = :i"
            ),
            {"i": entity_id},
        ).one()
    return tuple(row)


def test_bind_list_unbind_on_the_command_line(store: Database, backend_uri: str) -> None:
    before = _listing(backend_uri)
    assert before["team-a"]["sync"]["binding"] == "local-only"
    assert before["default"]["sync"]["binding"] == "local-only"  # no --azureml-workspace

    done = _tether(
        backend_uri, "bind", "team-a", "--azureml-workspace", A_URI, "--credential", "TEAMA"
    )
    assert done.returncode == 0, done.stderr
    assert "bound team-a to s-1/rg-a/ws-a" in done.stdout
    listed = _listing(backend_uri)["team-a"]
    assert listed["sync"]["binding"] == "bound" and listed["target"] == "s-1/rg-a/ws-a"
    assert listed["azureml_workspace"] == A_URI and listed["credential"] == "TEAMA"
    text_list = _tether(backend_uri, "list")
    assert "team-a: bound s-1/rg-a/ws-a" in text_list.stdout, text_list.stdout
    assert "team-b: local-only" in text_list.stdout

    # The server's own binding of `default` shows when given.
    shown = run_tether(
        "workspaces", "list", "--json", "--azureml-workspace", B, "--backend-store-uri", backend_uri
    )
    default = {w["name"]: w for w in json.loads(shown.stdout)["workspaces"]}["default"]
    assert default["sync"]["binding"] == "server" and default["target"] == "s-2/rg-b/ws-b"

    done = _tether(backend_uri, "unbind", "team-a")
    assert done.returncode == 0, done.stderr
    after = _listing(backend_uri)["team-a"]
    assert after["sync"]["binding"] == "local-only" and after["azureml_workspace"] is None
    assert after["target"] == "s-1/rg-a/ws-a"  # remembered: where it delivered
    again = _tether(backend_uri, "unbind", "team-a")
    assert again.returncode == 1 and "is not bound" in again.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["default", "--azureml-workspace", A], "bound by the server's --azureml-workspace"),
        (["nobody", "--azureml-workspace", A], "Workspace 'nobody' not found"),
        (["team-a", "--azureml-workspace", "https://example.com/ws"], "--azureml-workspace must"),
        (["team-a", "--azureml-workspace", A, "--credential", "no-dash"], "Invalid credential"),
        (["team-a", "--azureml-workspace", A, "--azureml-endpoint", "http://x"], "https://"),
    ],
)
def test_bind_refuses_bad_input_and_changes_nothing(
    store: Database, backend_uri: str, args: list[str], message: str
) -> None:
    done = _tether(backend_uri, "bind", *args)
    assert done.returncode == 1 and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert all(w["sync"]["binding"] == "local-only" for w in _listing(backend_uri).values())


def test_rebinding_never_resends_and_another_target_needs_force(
    store: Database, backend_uri: str
) -> None:
    assert _tether(backend_uri, "bind", "team-b", "--azureml-workspace", A).returncode == 0
    _delivered(store, "team-b", "901")
    # Same Azure workspace (another spelling, another endpoint): progress kept.
    same = _tether(
        backend_uri,
        "bind",
        "team-b",
        "--azureml-workspace",
        A_URI,
        "--azureml-endpoint",
        "https://private.example.com",
    )
    assert same.returncode == 0 and "starts over" not in same.stdout, same.stdout
    assert _entity(store, "901") == (12, "azure-7", "synced")
    # Unbind, bind again to the same one: still nothing re-sent.
    assert _tether(backend_uri, "unbind", "team-b").returncode == 0
    assert _entity(store, "901") == (12, "azure-7", "synced")
    assert _tether(backend_uri, "bind", "team-b", "--azureml-workspace", A).returncode == 0
    assert _entity(store, "901") == (12, "azure-7", "synced")
    # Another Azure workspace: refused, unless forced; forced, delivery starts over there.
    other = _tether(backend_uri, "bind", "team-b", "--azureml-workspace", B)
    assert other.returncode == 1 and "has delivered to Azure ML workspace s-1/rg-a/ws-a" in (
        other.stderr
    )
    assert _listing(backend_uri)["team-b"]["target"] == "s-1/rg-a/ws-a"
    assert _entity(store, "901") == (12, "azure-7", "synced")
    forced = _tether(backend_uri, "bind", "team-b", "--azureml-workspace", B, "--force")
    assert forced.returncode == 0 and "starts over" in forced.stdout, forced.stdout
    assert _entity(store, "901") == (0, None, "pending")
    assert _listing(backend_uri)["team-b"]["target"] == "s-2/rg-b/ws-b"


def test_a_workspace_that_never_delivered_binds_anywhere(store: Database, backend_uri: str) -> None:
    assert _tether(backend_uri, "bind", "team-a", "--azureml-workspace", A).returncode == 0
    moved = _tether(backend_uri, "bind", "team-a", "--azureml-workspace", B)
    assert moved.returncode == 0, moved.stderr
    assert _listing(backend_uri)["team-a"]["target"] == "s-2/rg-b/ws-b"


# REST, with authentication: admins only ----------------------------------------------------


@pytest.fixture(scope="module")
def auth_workspaces_server(backend_kind: str, make_backend_uri: Any) -> Iterator[TetherServer]:
    server = tether_auth_server(make_backend_uri(backend_kind), extra_args=["--enable-workspaces"])
    try:
        create_users(server.url, {"bob": "bob-password-12"})
        with http(server.url, ADMIN, ADMIN_PASSWORD) as admin:
            made = admin.post("/api/3.0/mlflow/workspaces", json={"name": "team-r"})
            assert made.status_code == 201, made.text
        yield server
    finally:
        server.stop()


def test_rest_bindings_are_for_admins(auth_workspaces_server: TetherServer) -> None:
    url = auth_workspaces_server.url
    calls = [
        ("GET", BASE, None),
        ("GET", f"{BASE}/team-r", None),
        ("PUT", f"{BASE}/team-r/binding", {"azureml_workspace": A}),
        ("POST", f"{BASE}/team-r/binding", {"azureml_workspace": A}),
        ("DELETE", f"{BASE}/team-r/binding", None),
    ]
    with http(url, "bob", "bob-password-12") as bob, http(url) as anonymous:
        for method, path, body in calls:
            assert bob.request(method, path, json=body).status_code == 403, (method, path)
            assert anonymous.request(method, path, json=body).status_code == 401, (method, path)
    with http(url, ADMIN, ADMIN_PASSWORD) as admin:
        listed = admin.get(BASE)
        assert listed.status_code == 200, listed.text
        names = {w["name"]: w for w in listed.json()["workspaces"]}
        assert names["team-r"]["sync"]["binding"] == "local-only"
        bound = admin.put(f"{BASE}/team-r/binding", json={"azureml_workspace": A})
        assert bound.status_code == 200, bound.text
        assert bound.json()["restarted"] is False
        assert bound.json()["workspace"]["sync"]["binding"] == "bound"
        got = admin.get(f"{BASE}/team-r").json()
        assert got["target"] == "s-1/rg-a/ws-a" and got["azureml_workspace"] == A
        status = admin.get("/api/2.0/tether/sync/status").json()
        assert status["workspaces"]["team-r"]["binding"] == "bound"
        bad = admin.put(f"{BASE}/team-r/binding", json={"azureml_workspace": "nope"})
        assert bad.status_code == 400 and bad.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        missing = admin.put(f"{BASE}/team-q/binding", json={"azureml_workspace": A})
        assert (
            missing.status_code == 404 and missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
        )
        no_body = admin.put(f"{BASE}/team-r/binding", json={})
        assert no_body.status_code == 400, no_body.text
        assert admin.get(f"{BASE}/team-q").status_code == 404
        unbound = admin.delete(f"{BASE}/team-r/binding")
        assert unbound.status_code == 200 and unbound.json()["sync"]["binding"] == "local-only"
        assert admin.delete(f"{BASE}/team-r/binding").status_code == 404
