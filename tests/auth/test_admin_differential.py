"""User, permission and role administration through the installed `AuthServiceClient`
(`mlflow.server.get_app_client("basic-auth")`) and raw HTTP, against Tether and the real
`mlflow server --app-name basic-auth`: the same script, step by step, must get the same
answers (values, or MLflow's error codes) from both.

Both servers start empty, so the ids they hand out (users, roles, grants) line up too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from mlflow.exceptions import MlflowException, RestException
from mlflow.server import get_app_client

from support import TetherServer
from support.auth import (
    ADMIN,
    ADMIN_PASSWORD,
    ReferenceAuthServer,
    http,
    signed_in,
    tether_auth_server,
)

pytestmark = pytest.mark.usefixtures("clean_mlflow_client")

ALICE, ALICE_PW = "alice", "alice-password-1"
BOB, BOB_PW = "bob", "bob-password-12"


def _error(exc: MlflowException) -> str:
    if isinstance(exc, RestException):
        return exc.error_code
    # mlflow server answers some refusals as text ("Permission denied"): the status decides.
    for status, code in (("401", "UNAUTHENTICATED"), ("403", "PERMISSION_DENIED")):
        if f"error code {status}" in str(exc):
            return code
    return f"unexpected: {exc}"


def _jsonable(value: Any) -> Any:
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if hasattr(value, "to_json"):
        return value.to_json()
    return value


def _run(url: str) -> list[tuple[str, Any]]:
    """The script, against one server: [(step, answer)]."""
    client = get_app_client("basic-auth", tracking_uri=url)
    out: list[tuple[str, Any]] = []

    def step(name: str, user: tuple[str, str] | None, call: Callable[[], Any]) -> None:
        with signed_in(*user) if user else signed_in():
            try:
                out.append((name, {"ok": _jsonable(call())}))
            except MlflowException as exc:
                out.append((name, {"error": _error(exc)}))

    def raw(name: str, user: tuple[str, str] | None, method: str, path: str, **kw: Any) -> None:
        with http(url, *(user or (None, None))) as client_:
            response = client_.request(method, path, **kw)
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code in (401, 403):
            body = None  # mlflow server answers these as text, Tether with MLflow's JSON
        elif response.status_code != 200:
            body = body.get("error_code") if isinstance(body, dict) else None
        out.append((name, {"status": response.status_code, "body": body}))

    admin = (ADMIN, ADMIN_PASSWORD)
    alice = (ALICE, ALICE_PW)
    step("create alice", admin, lambda: client.create_user(ALICE, ALICE_PW))
    step("create bob", admin, lambda: client.create_user(BOB, BOB_PW))
    step("create alice again", admin, lambda: client.create_user(ALICE, ALICE_PW))
    step("short password", admin, lambda: client.create_user("carol", "short"))
    step("get alice", admin, lambda: client.get_user(ALICE))
    step("get unknown", admin, lambda: client.get_user("nobody"))
    step("alice gets herself", alice, lambda: client.get_user(ALICE))
    step("alice gets bob", alice, lambda: client.get_user(BOB))
    step("alice creates a user", alice, lambda: client.create_user("dave", "dave-password-1"))
    step("alice makes bob admin", alice, lambda: client.update_user_admin(BOB, True))
    step("alice deletes bob", alice, lambda: client.delete_user(BOB))
    step("wrong password", (ALICE, "not-her-password"), lambda: client.get_user(ALICE))
    step("no credentials", None, lambda: client.get_user(ALICE))

    # Passwords: admins change anyone's; a user changes their own with the current one.
    step("admin sets alice's", admin, lambda: client.update_user_password(ALICE, "alice-second-pw"))
    alice = (ALICE, "alice-second-pw")
    step("own, no current", alice, lambda: client.update_user_password(ALICE, "alice-third-pw"))
    step(
        "own, wrong current",
        alice,
        lambda: client.update_user_password(ALICE, "alice-third-pw", current_password="nope"),
    )
    step(
        "own, same again",
        alice,
        lambda: client.update_user_password(
            ALICE, "alice-second-pw", current_password="alice-second-pw"
        ),
    )
    step(
        "own, right",
        alice,
        lambda: client.update_user_password(
            ALICE, "alice-third-pw", current_password="alice-second-pw"
        ),
    )
    step("old password", (ALICE, "alice-second-pw"), lambda: client.get_user(ALICE))
    alice = (ALICE, "alice-third-pw")
    step("new password", alice, lambda: client.get_user(ALICE))
    step("alice sets bob's", alice, lambda: client.update_user_password(BOB, "bob-taken-over"))

    # Per-user grants.
    grant = client.grant_user_permission
    step("grant READ", admin, lambda: grant(ALICE, "experiment", "0", "READ"))
    step("grant twice", admin, lambda: grant(ALICE, "experiment", "0", "EDIT"))
    step("grant bad level", admin, lambda: grant(ALICE, "experiment", "1", "OWNER"))
    step("grant NO_PERMISSIONS", admin, lambda: grant(ALICE, "experiment", "1", "NO_PERMISSIONS"))
    step("grant workspace", admin, lambda: grant(ALICE, "workspace", "*", "USE"))
    step("grant unknown user", admin, lambda: grant("nobody", "experiment", "0", "READ"))
    step("grant DENY model", admin, lambda: grant(ALICE, "registered_model", "m1", "DENY"))
    step("grant MANAGE model", admin, lambda: grant(ALICE, "registered_model", "m2", "MANAGE"))
    step("alice grants on m2", alice, lambda: grant(BOB, "registered_model", "m2", "EDIT"))
    step("alice grants on m1", alice, lambda: grant(BOB, "registered_model", "m1", "EDIT"))
    step("alice grants on exp 0", alice, lambda: grant(BOB, "experiment", "0", "EDIT"))
    step("alice grants wildcard", alice, lambda: grant(BOB, "experiment", "*", "EDIT"))
    get = client.get_user_permission
    step("get exp 0", admin, lambda: get(ALICE, "experiment", "0"))
    step("get exp default", admin, lambda: get(ALICE, "experiment", "12345"))
    step("get m1 (DENY)", admin, lambda: get(ALICE, "registered_model", "m1"))
    step("get m2 (MANAGE)", admin, lambda: get(ALICE, "registered_model", "m2"))
    step("bob's m2", admin, lambda: get(BOB, "registered_model", "m2"))
    step("alice asks own", alice, lambda: get(ALICE, "registered_model", "m2"))
    step("alice asks bob's", alice, lambda: get(BOB, "registered_model", "m2"))
    step("get workspace", admin, lambda: get(ALICE, "workspace", "*"))
    step("get bad type", admin, lambda: get(ALICE, "notatype", "1"))
    step("get unknown user", admin, lambda: get("nobody", "experiment", "0"))
    revoke = client.revoke_user_permission
    step("revoke", admin, lambda: revoke(ALICE, "experiment", "0"))
    step("revoke again", admin, lambda: revoke(ALICE, "experiment", "0"))
    step("revoke by alice", alice, lambda: revoke(BOB, "registered_model", "m2"))
    raw("current", alice, "GET", "/api/2.0/mlflow/users/current")
    raw("current permissions", alice, "GET", "/api/3.0/mlflow/users/current/permissions")
    raw(
        "list permissions",
        admin,
        "GET",
        "/api/3.0/mlflow/users/permissions/list",
        params={"username": BOB},
    )
    raw(
        "alice lists bob's",
        alice,
        "GET",
        "/api/3.0/mlflow/users/permissions/list",
        params={"username": BOB},
    )
    raw("ajax current", admin, "GET", "/ajax-api/2.0/mlflow/users/current")

    # Roles.
    step("create role", admin, lambda: client.create_role("default", "readers", "read all"))
    role = out[-1][1].get("ok", {}).get("id", -1)
    step("create role again", admin, lambda: client.create_role("default", "readers"))
    step("reserved name", admin, lambda: client.create_role("default", "__user_9__"))
    step("alice creates role", alice, lambda: client.create_role("default", "writers"))
    step("role perm", admin, lambda: client.add_role_permission(role, "experiment", "*", "READ"))
    perm = out[-1][1].get("ok", {}).get("id", -1)
    step(
        "role perm again",
        admin,
        lambda: client.add_role_permission(role, "experiment", "*", "EDIT"),
    )
    step(
        "role workspace USE",
        admin,
        lambda: client.add_role_permission(role, "workspace", "*", "USE"),
    )
    step(
        "role workspace READ",
        admin,
        lambda: client.add_role_permission(role, "workspace", "*", "READ"),
    )
    step(
        "role workspace id",
        admin,
        lambda: client.add_role_permission(role, "workspace", "x", "USE"),
    )
    step("role unknown", admin, lambda: client.add_role_permission(999, "experiment", "*", "READ"))
    step("get role", admin, lambda: client.get_role(role))
    step("list role perms", admin, lambda: client.list_role_permissions(role))
    step("update role perm", admin, lambda: client.update_role_permission(perm, "EDIT"))
    step("update role perm bad", admin, lambda: client.update_role_permission(perm, "OWNER"))
    step("assign", admin, lambda: client.assign_role(ALICE, role))
    step("assign again", admin, lambda: client.assign_role(ALICE, role))
    step("alice's roles", admin, lambda: client.list_user_roles(ALICE))
    step("alice lists her roles", alice, lambda: client.list_user_roles(ALICE))
    step("role users", admin, lambda: client.list_role_users(role))
    step("list roles", admin, lambda: client.list_roles("default"))
    step("list all roles", admin, lambda: client.list_all_roles())
    step("alice lists roles", alice, lambda: client.list_roles("default"))
    step("alice lists all", alice, lambda: client.list_all_roles())
    step("alice gets role", alice, lambda: client.get_role(role))
    step("now exp 5 for alice", admin, lambda: get(ALICE, "experiment", "5"))
    step("update role", admin, lambda: client.update_role(role, name="editors"))
    step("update role nothing", admin, lambda: client.update_role(role))
    step("unassign", admin, lambda: client.unassign_role(ALICE, role))
    step("unassign again", admin, lambda: client.unassign_role(ALICE, role))
    step("remove role perm", admin, lambda: client.remove_role_permission(perm))
    step("delete role", admin, lambda: client.delete_role(role))
    step("get deleted role", admin, lambda: client.get_role(role))

    # Admin flag and deletion.
    step("make bob admin", admin, lambda: client.update_user_admin(BOB, True))
    step("bob is admin", admin, lambda: client.get_user(BOB))
    step("admin deletes self", admin, lambda: client.delete_user(ADMIN))
    raw("list users", admin, "GET", "/api/2.0/mlflow/users/list")
    step("delete bob", admin, lambda: client.delete_user(BOB))
    step("bob is gone", admin, lambda: client.get_user(BOB))
    step("bob cannot sign in", (BOB, BOB_PW), lambda: client.get_user(BOB))
    step("delete bob again", admin, lambda: client.delete_user(BOB))
    return out


@pytest.fixture(scope="module")
def fresh_tether(make_backend_uri: Any) -> Any:
    server = tether_auth_server(make_backend_uri("sqlite"))
    try:
        yield server
    finally:
        server.stop()


def test_admin_api_matches_mlflow(
    fresh_tether: TetherServer, reference_auth_server: ReferenceAuthServer
) -> None:
    ours = _run(fresh_tether.url)
    theirs = _run(reference_auth_server.url)
    assert [name for name, _ in ours] == [name for name, _ in theirs]
    mismatches = [
        f"{name}:\n    tether: {a}\n    mlflow: {b}"
        for (name, a), (_, b) in zip(ours, theirs, strict=True)
        if a != b
    ]
    assert not mismatches, "\n".join(mismatches)
