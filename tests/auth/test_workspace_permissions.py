"""Workspace permissions with workspaces and authentication both on, against the real
`mlflow server --enable-workspaces --app-name basic-auth` (3.17): the same script, step by
step, must get the same answers from both. Both start empty, so the ids they hand out
(experiments, roles, grants) line up.

What the script covers, as the reference does it: a new workspace gets the seeded `admin`
(workspace MANAGE) and `user` (workspace USE) roles; a user with no role in a workspace sees
and creates nothing there (also in `default`); a workspace member (USE) creates experiments
and models, lists everything in the workspace but reads only what is theirs or granted; a
workspace admin (MANAGE) does everything inside their workspace and nothing outside; a
resource of another workspace is refused (403) to non-admins and missing (404) to admins; the
per-user grant API writes into the request's workspace; the same model name in two
workspaces is two resources (deleting one forgets only its grants); only admins create,
read, update and delete workspaces; deleting a workspace drops its roles.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import mlflow
import pytest
from mlflow.exceptions import MlflowException, RestException
from mlflow.server import get_app_client

from support import BackendUriFactory, TetherServer
from support.auth import (
    ADMIN,
    ADMIN_PASSWORD,
    ReferenceAuthServer,
    http,
    signed_in,
    tether_auth_server,
)

pytestmark = pytest.mark.usefixtures("clean_mlflow_client")

ENABLE = ["--enable-workspaces"]
PASSWORD = "member-password-1"
USERS = ("alice", "bob", "carol", "dave")
# Volatile or server-specific values: times, generated run names and ids, storage locations.
_DROP = frozenset(
    {
        "creation_time",
        "last_update_time",
        "creation_timestamp",
        "last_updated_timestamp",
        "start_time",
        "end_time",
        "run_uuid",
        "run_id",
        "run_name",
        "artifact_uri",
        "artifact_location",
        "model_id",
        "creation_timestamp_ms",
        "last_updated_timestamp_ms",
        "user_id",
        "tags",
        "experiment_id",
        "data",
        "inputs",
        "outputs",
    }
)


def _normal(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in sorted(value.items()) if k not in _DROP}
    if isinstance(value, list):
        return [_normal(v) for v in value]
    return value


def _ws(name: str) -> dict[str, str]:
    return {"X-MLFLOW-WORKSPACE": name}


class Script:
    """Runs steps against one server and records [(step, answer)]."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.out: list[tuple[str, Any]] = []
        self.clients = {ADMIN: http(url, ADMIN, ADMIN_PASSWORD), "anonymous": http(url)}
        self.clients.update({user: http(url, user, PASSWORD) for user in USERS})

    def __call__(self, name: str, user: str, method: str, path: str, **kw: Any) -> Any:
        response = self.clients[user].request(method, path, **kw)
        try:
            body = response.json() if response.content else None
        except ValueError:
            body = None
        if response.status_code in (401, 403):
            body = None  # mlflow server answers these as text, Tether with MLflow's JSON
        elif response.status_code >= 300:
            body = body.get("error_code") if isinstance(body, dict) else None
        self.out.append((name, {"status": response.status_code, "body": _normal(body)}))
        return body if response.status_code < 300 else None

    def client(self, name: str, user: str, workspace: str, call: Callable[[Any], Any]) -> Any:
        """A step through the installed `AuthServiceClient`, in `workspace` as the stock
        client works in one (`mlflow.set_workspace`: the X-MLFLOW-WORKSPACE header)."""
        password = ADMIN_PASSWORD if user == ADMIN else PASSWORD
        service = get_app_client("basic-auth", tracking_uri=self.url)
        mlflow.set_workspace(workspace)
        try:
            with signed_in(user, password):
                found = call(service)
        except MlflowException as exc:
            code = exc.error_code if isinstance(exc, RestException) else None
            if code is None and "error code 403" in str(exc):
                code = "PERMISSION_DENIED"
            self.out.append((name, {"error": code or f"unexpected: {exc}"}))
            return None
        finally:
            mlflow.set_workspace(None)
        self.out.append((name, {"ok": _normal(_jsonable(found))}))
        return found

    def close(self) -> None:
        for client in self.clients.values():
            client.close()


def _jsonable(value: Any) -> Any:
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if hasattr(value, "to_json"):
        return value.to_json()
    if hasattr(value, "__dict__"):
        return {k.lstrip("_"): _jsonable(v) for k, v in vars(value).items()}
    return value


def _run(url: str) -> list[tuple[str, Any]]:
    s = Script(url)
    try:
        _script(s)
    finally:
        s.close()
    return s.out


def _script(s: Script) -> None:
    a = ADMIN
    exp_create = "/api/2.0/mlflow/experiments/create"
    exp_get = "/api/2.0/mlflow/experiments/get"
    exp_search = "/api/2.0/mlflow/experiments/search"
    models = "/api/2.0/mlflow/registered-models"
    wss = "/api/3.0/mlflow/workspaces"
    roles = "/api/3.0/mlflow/roles"
    grant = "/api/3.0/mlflow/users/permissions/grant"
    perm_get = "/api/3.0/mlflow/users/permissions/get"
    artifacts = "/api/2.0/mlflow-artifacts/artifacts"
    search = {"max_results": 10}

    s("create team-a", a, "POST", wss, json={"name": "team-a"})
    s("create team-b", a, "POST", wss, json={"name": "team-b"})
    for user in USERS:
        s(
            f"create {user}",
            a,
            "POST",
            "/api/2.0/mlflow/users/create",
            json={"username": user, "password": PASSWORD},
        )
    s("seeded roles", a, "GET", f"{roles}/list")
    ea = (
        s("admin: exp in team-a", a, "POST", exp_create, json={"name": "ea"}, headers=_ws("team-a"))
        or {}
    ).get("experiment_id")
    ed = (s("admin: exp in default", a, "POST", exp_create, json={"name": "ed"}) or {}).get(
        "experiment_id"
    )

    # The header is judged before the credentials, as on the reference.
    for user in ("anonymous", "dave"):
        for workspace in ("nope-ws", "Bad_Name", "team-a"):
            s(
                f"{user} in {workspace}",
                user,
                "POST",
                exp_search,
                json=search,
                headers=_ws(workspace),
            )

    # No role anywhere: nothing visible, nothing allowed, in default as elsewhere.
    s("no role: list workspaces", "alice", "GET", wss)
    s("no role: get team-a", "alice", "GET", f"{wss}/team-a")
    s("no role: get default", "alice", "GET", f"{wss}/default")
    s("no role: search team-a", "alice", "POST", exp_search, json=search, headers=_ws("team-a"))
    s("no role: search default", "alice", "POST", exp_search, json=search)
    s(
        "no role: get ea",
        "alice",
        "GET",
        exp_get,
        params={"experiment_id": ea},
        headers=_ws("team-a"),
    )
    s("no role: get ed", "alice", "GET", exp_get, params={"experiment_id": ed})
    s(
        "no role: create in team-a",
        "alice",
        "POST",
        exp_create,
        json={"name": "x1"},
        headers=_ws("team-a"),
    )
    s("no role: create in default", "alice", "POST", exp_create, json={"name": "x2"})
    s("no role: list users", "alice", "GET", "/api/2.0/mlflow/users/list")
    s("no role: create workspace", "alice", "POST", wss, json={"name": "mine"})
    s("no role: update workspace", "alice", "PATCH", f"{wss}/team-a", json={"description": "x"})
    s("no role: delete workspace", "alice", "DELETE", f"{wss}/team-a")
    s("no role: artifacts root", "dave", "GET", artifacts, params={"path": ""})

    # alice: a member (the seeded `user` role, id 2); bob: workspace admin (`admin`, id 1).
    s("assign alice user", a, "POST", f"{roles}/assign", json={"username": "alice", "role_id": 2})
    s("assign bob admin", a, "POST", f"{roles}/assign", json={"username": "bob", "role_id": 1})
    s("member: list workspaces", "alice", "GET", wss)
    s("member: get team-a", "alice", "GET", f"{wss}/team-a")
    s("member: search team-a", "alice", "POST", exp_search, json=search, headers=_ws("team-a"))
    s(
        "member: get ea",
        "alice",
        "GET",
        exp_get,
        params={"experiment_id": ea},
        headers=_ws("team-a"),
    )
    s(
        "member: get ea by name",
        "alice",
        "GET",
        "/api/2.0/mlflow/experiments/get-by-name",
        params={"experiment_name": "ea"},
        headers=_ws("team-a"),
    )
    s(
        "member: rename ea",
        "alice",
        "POST",
        "/api/2.0/mlflow/experiments/update",
        json={"experiment_id": ea, "new_name": "ea2"},
        headers=_ws("team-a"),
    )
    own = (
        s(
            "member: create in team-a",
            "alice",
            "POST",
            exp_create,
            json={"name": "al1"},
            headers=_ws("team-a"),
        )
        or {}
    ).get("experiment_id")
    s("member: create in default", "alice", "POST", exp_create, json={"name": "al2"})
    s("member: get ea from default", "alice", "GET", exp_get, params={"experiment_id": ea})
    s("member: own permissions", "alice", "GET", "/api/3.0/mlflow/users/current/permissions")
    s(
        "member: run in ea",
        "alice",
        "POST",
        "/api/2.0/mlflow/runs/create",
        json={"experiment_id": ea},
        headers=_ws("team-a"),
    )
    s(
        "member: run in own",
        "alice",
        "POST",
        "/api/2.0/mlflow/runs/create",
        json={"experiment_id": own},
        headers=_ws("team-a"),
    )
    s(
        "member: search runs of ea",
        "alice",
        "POST",
        "/api/2.0/mlflow/runs/search",
        json={"experiment_ids": [ea]},
        headers=_ws("team-a"),
    )
    s(
        "member: list users in team-a",
        "alice",
        "GET",
        "/api/2.0/mlflow/users/list",
        headers=_ws("team-a"),
    )
    s("member: list users in default", "alice", "GET", "/api/2.0/mlflow/users/list")
    s(
        "member: model in team-a",
        "alice",
        "POST",
        f"{models}/create",
        json={"name": "m1"},
        headers=_ws("team-a"),
    )
    s(
        "member: model in team-b",
        "alice",
        "POST",
        f"{models}/create",
        json={"name": "m1"},
        headers=_ws("team-b"),
    )

    # bob administers team-a, and nothing else.
    s("ws admin: get team-a", "bob", "GET", f"{wss}/team-a")
    s("ws admin: list workspaces", "bob", "GET", wss)
    s(
        "ws admin: get ea",
        "bob",
        "GET",
        exp_get,
        params={"experiment_id": ea},
        headers=_ws("team-a"),
    )
    s(
        "ws admin: get ea from team-b",
        "bob",
        "GET",
        exp_get,
        params={"experiment_id": ea},
        headers=_ws("team-b"),
    )
    s(
        "ws admin: get a missing one",
        "bob",
        "GET",
        exp_get,
        params={"experiment_id": "999"},
        headers=_ws("team-a"),
    )
    s(
        "admin: get ea from team-b",
        a,
        "GET",
        exp_get,
        params={"experiment_id": ea},
        headers=_ws("team-b"),
    )
    s(
        "ws admin: delete alice's",
        "bob",
        "POST",
        "/api/2.0/mlflow/experiments/delete",
        json={"experiment_id": own},
        headers=_ws("team-a"),
    )
    s(
        "ws admin: role in team-a",
        "bob",
        "POST",
        f"{roles}/create",
        json={"name": "r1", "workspace": "team-a"},
    )
    s(
        "ws admin: role in team-b",
        "bob",
        "POST",
        f"{roles}/create",
        json={"name": "r1", "workspace": "team-b"},
    )
    s(
        "admin: role in an unknown workspace",
        a,
        "POST",
        f"{roles}/create",
        json={"name": "r1", "workspace": "nope-ws"},
    )
    s(
        "ws admin: grant carol ea",
        "bob",
        "POST",
        grant,
        headers=_ws("team-a"),
        json={
            "username": "carol",
            "resource_type": "experiment",
            "resource_id": ea,
            "permission": "READ",
        },
    )
    s(
        "ws admin: grant carol every experiment",
        "bob",
        "POST",
        grant,
        headers=_ws("team-a"),
        json={
            "username": "carol",
            "resource_type": "experiment",
            "resource_id": "*",
            "permission": "READ",
        },
    )
    s(
        "ws admin: grant carol ed (default)",
        "bob",
        "POST",
        grant,
        json={
            "username": "carol",
            "resource_type": "experiment",
            "resource_id": ed,
            "permission": "READ",
        },
    )

    # carol holds only per-resource grants in team-a: she reads, but is no member.
    s("granted: permissions", "carol", "GET", "/api/3.0/mlflow/users/current/permissions")
    s("granted: list workspaces", "carol", "GET", wss)
    s(
        "granted: get ea",
        "carol",
        "GET",
        exp_get,
        params={"experiment_id": ea},
        headers=_ws("team-a"),
    )
    s("granted: search team-a", "carol", "POST", exp_search, json=search, headers=_ws("team-a"))
    s(
        "granted: create in team-a",
        "carol",
        "POST",
        exp_create,
        json={"name": "c1"},
        headers=_ws("team-a"),
    )
    for user in ("carol", "alice"):
        for resource in (ea, "*"):
            s(
                f"permission of {user} on {resource}",
                "bob",
                "GET",
                perm_get,
                params={"username": user, "resource_type": "experiment", "resource_id": resource},
                headers=_ws("team-a"),
            )
    s(
        "permission of alice on ea, asked in default",
        a,
        "GET",
        perm_get,
        params={"username": "alice", "resource_type": "experiment", "resource_id": ea},
    )

    # The same model name in two workspaces: two resources.
    s("member: search models", "alice", "GET", f"{models}/search", headers=_ws("team-a"))
    s(
        "member: get m1",
        "alice",
        "GET",
        f"{models}/get",
        params={"name": "m1"},
        headers=_ws("team-a"),
    )
    s(
        "admin: m1 in team-b",
        a,
        "POST",
        f"{models}/create",
        json={"name": "m1"},
        headers=_ws("team-b"),
    )
    s(
        "member: get team-b's m1",
        "alice",
        "GET",
        f"{models}/get",
        params={"name": "m1"},
        headers=_ws("team-b"),
    )
    s(
        "member: get a missing model",
        "alice",
        "GET",
        f"{models}/get",
        params={"name": "nope"},
        headers=_ws("team-a"),
    )
    s(
        "member: update own m1",
        "alice",
        "PATCH",
        f"{models}/update",
        json={"name": "m1", "description": "d"},
        headers=_ws("team-a"),
    )
    s(
        "member: delete own m1",
        "alice",
        "DELETE",
        f"{models}/delete",
        json={"name": "m1"},
        headers=_ws("team-a"),
    )
    s(
        "admin: m1 in team-a again",
        a,
        "POST",
        f"{models}/create",
        json={"name": "m1"},
        headers=_ws("team-a"),
    )
    s(
        "member: update the new m1",
        "alice",
        "PATCH",
        f"{models}/update",
        json={"name": "m1", "description": "d"},
        headers=_ws("team-a"),
    )
    s("roles after the model came and went", a, "GET", f"{roles}/list")

    # Logged models and model versions take their experiment's and model's permission.
    al3 = (
        s(
            "member: another experiment",
            "alice",
            "POST",
            exp_create,
            json={"name": "al3"},
            headers=_ws("team-a"),
        )
        or {}
    ).get("experiment_id")
    lm = (
        (
            s(
                "member: logged model",
                "alice",
                "POST",
                "/api/2.0/mlflow/logged-models",
                json={"experiment_id": al3, "name": "lm"},
                headers=_ws("team-a"),
            )
            or {}
        )
        .get("model", {})
        .get("info", {})
        .get("model_id")
    )
    for user in ("carol", "dave", "bob"):
        s(
            f"{user}: get the logged model",
            user,
            "GET",
            f"/api/2.0/mlflow/logged-models/{lm}",
            headers=_ws("team-a"),
        )
    s(
        "member: model m2",
        "alice",
        "POST",
        f"{models}/create",
        json={"name": "m2"},
        headers=_ws("team-a"),
    )
    s(
        "member: version of m2",
        "alice",
        "POST",
        "/api/2.0/mlflow/model-versions/create",
        json={"name": "m2", "source": "s3://bucket/m2"},
        headers=_ws("team-a"),
    )
    for user in ("carol", "bob"):
        s(
            f"{user}: get the version",
            user,
            "GET",
            "/api/2.0/mlflow/model-versions/get",
            params={"name": "m2", "version": "1"},
            headers=_ws("team-a"),
        )

    # An explicit DENY: no creating experiments, nothing listed.
    s(
        "admin: deny alice experiments",
        a,
        "POST",
        grant,
        headers=_ws("team-a"),
        json={
            "username": "alice",
            "resource_type": "experiment",
            "resource_id": "*",
            "permission": "DENY",
        },
    )
    s(
        "denied: create in team-a",
        "alice",
        "POST",
        exp_create,
        json={"name": "al4"},
        headers=_ws("team-a"),
    )
    s("denied: search team-a", "alice", "POST", exp_search, json=search, headers=_ws("team-a"))
    s(
        "denied: model in team-a",
        "alice",
        "POST",
        f"{models}/create",
        json={"name": "m3"},
        headers=_ws("team-a"),
    )
    s(
        "ws admin: creates a user",
        "bob",
        "POST",
        "/api/2.0/mlflow/users/create",
        json={"username": "erin", "password": PASSWORD},
    )
    s("ws admin: lists users", "bob", "GET", "/api/2.0/mlflow/users/list", headers=_ws("team-a"))

    # The artifact proxy: a workspace's paths are under workspaces/<name>/.
    s(
        "member: artifacts root",
        "alice",
        "GET",
        artifacts,
        params={"path": ""},
        headers=_ws("team-a"),
    )
    s(
        "member: ea's artifacts",
        "alice",
        "GET",
        artifacts,
        params={"path": f"workspaces/team-a/{ea}"},
        headers=_ws("team-a"),
    )
    s(
        "granted: ea's artifacts",
        "carol",
        "GET",
        artifacts,
        params={"path": f"workspaces/team-a/{ea}"},
        headers=_ws("team-a"),
    )

    # The same through the stock AuthServiceClient, working in team-b.
    role = s.client(
        "client: role in team-b",
        "bob",
        "team-b",
        lambda c: c.create_role(name="readers", workspace="team-b"),
    )
    role = s.client(
        "client: admin's role in team-b",
        a,
        "team-b",
        lambda c: c.create_role(name="readers", workspace="team-b"),
    )
    role_id = getattr(role, "id", 0)
    s.client(
        "client: workspace USE",
        a,
        "team-b",
        lambda c: c.add_role_permission(role_id, "workspace", "*", "USE"),
    )
    s.client(
        "client: workspace READ is refused",
        a,
        "team-b",
        lambda c: c.add_role_permission(role_id, "workspace", "*", "READ"),
    )
    s.client("client: assign dave", a, "team-b", lambda c: c.assign_role("dave", role_id))
    s.client("client: dave's roles", a, "team-b", lambda c: c.list_user_roles("dave"))
    s.client(
        "client: grant dave m1 (team-b's)",
        a,
        "team-b",
        lambda c: c.grant_user_permission("dave", "registered_model", "m1", "EDIT"),
    )
    for workspace in ("team-b", "team-a"):
        s.client(
            f"client: dave on m1 in {workspace}",
            a,
            workspace,
            lambda c: c.get_user_permission("dave", "registered_model", "m1"),
        )
    s("member of team-b: list workspaces", "dave", "GET", wss)
    s(
        "member of team-b: update its m1",
        "dave",
        "PATCH",
        f"{models}/update",
        json={"name": "m1", "description": "by dave"},
        headers=_ws("team-b"),
    )
    s(
        "member of team-b: update team-a's m1",
        "dave",
        "PATCH",
        f"{models}/update",
        json={"name": "m1", "description": "by dave"},
        headers=_ws("team-a"),
    )
    s.client("client: list team-b's roles", "dave", "team-b", lambda c: c.list_roles("team-b"))

    # Deleting a workspace drops its roles (and every grant in them).
    s("delete team-b", a, "DELETE", f"{wss}/team-b", params={"mode": "CASCADE"})
    s("roles after team-b is gone", a, "GET", f"{roles}/list")
    s("bob's roles", a, "GET", "/api/3.0/mlflow/users/roles/list", params={"username": "bob"})


@pytest.fixture
def tether_workspaces_auth(
    backend_kind: str, make_backend_uri: BackendUriFactory
) -> Iterator[TetherServer]:
    server = tether_auth_server(make_backend_uri(backend_kind), extra_args=ENABLE)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def reference_workspaces_auth() -> Iterator[ReferenceAuthServer]:
    server = ReferenceAuthServer(extra_args=ENABLE)
    try:
        yield server
    finally:
        server.stop()


def test_workspace_permissions_match_mlflow(
    tether_workspaces_auth: TetherServer, reference_workspaces_auth: ReferenceAuthServer
) -> None:
    ours = _run(tether_workspaces_auth.url)
    theirs = _run(reference_workspaces_auth.url)
    assert [name for name, _ in ours] == [name for name, _ in theirs]
    mismatches = [
        f"{name}:\n    tether: {a}\n    mlflow: {b}"
        for (name, a), (_, b) in zip(ours, theirs, strict=True)
        if a != b
    ]
    assert not mismatches, "\n".join(mismatches)
    # The script reached what it is about (not refusals on both sides).
    answers = dict(ours)
    assert answers["member: create in team-a"]["status"] == 200
    assert answers["client: admin's role in team-b"].get("ok")
    assert answers["client: dave on m1 in team-b"]["ok"]["permission"] == "EDIT"
    assert answers["client: dave on m1 in team-a"]["ok"]["permission"] == "NO_PERMISSIONS"
    assert answers["member of team-b: update its m1"]["status"] == 200


OPEN_DEFAULT = "grant_default_workspace_access = true"


def _open_default_script(s: Script) -> None:
    """`grant_default_workspace_access`: a user with no role gets the default permission in
    `default` (and sees it listed), and still nothing elsewhere."""
    a = ADMIN
    exp_create = "/api/2.0/mlflow/experiments/create"
    exp_get = "/api/2.0/mlflow/experiments/get"
    s("create team-a", a, "POST", "/api/3.0/mlflow/workspaces", json={"name": "team-a"})
    s(
        "create alice",
        a,
        "POST",
        "/api/2.0/mlflow/users/create",
        json={"username": "alice", "password": PASSWORD},
    )
    ed = (s("admin: exp in default", a, "POST", exp_create, json={"name": "ed"}) or {}).get(
        "experiment_id"
    )
    ea = (
        s("admin: exp in team-a", a, "POST", exp_create, json={"name": "ea"}, headers=_ws("team-a"))
        or {}
    ).get("experiment_id")
    s("list workspaces", "alice", "GET", "/api/3.0/mlflow/workspaces")
    s("get ed", "alice", "GET", exp_get, params={"experiment_id": ed})
    s(
        "rename ed",
        "alice",
        "POST",
        "/api/2.0/mlflow/experiments/update",
        json={"experiment_id": ed, "new_name": "ed2"},
    )
    s(
        "search default",
        "alice",
        "POST",
        "/api/2.0/mlflow/experiments/search",
        json={"max_results": 10},
    )
    s("create in default (READ cannot)", "alice", "POST", exp_create, json={"name": "x"})
    s("get ea", "alice", "GET", exp_get, params={"experiment_id": ea}, headers=_ws("team-a"))
    s(
        "artifacts root of default",
        "alice",
        "GET",
        "/api/2.0/mlflow-artifacts/artifacts",
        params={"path": ""},
    )
    s("list users in default", "alice", "GET", "/api/2.0/mlflow/users/list")


def test_grant_default_workspace_access_matches_mlflow(
    backend_kind: str, make_backend_uri: BackendUriFactory, tmp_path: Any
) -> None:
    if backend_kind != "sqlite":
        pytest.skip("the configuration, not the store, is under test: SQLite is enough")
    ini = tmp_path / "auth.ini"
    ini.write_text(f"[mlflow]\ndefault_permission = READ\n{OPEN_DEFAULT}\n")
    tether = tether_auth_server(
        make_backend_uri(backend_kind), extra_args=ENABLE, env={"MLFLOW_AUTH_CONFIG_PATH": str(ini)}
    )
    reference = ReferenceAuthServer(extra_args=ENABLE, ini_lines=[OPEN_DEFAULT])
    try:
        ours, theirs = Script(tether.url), Script(reference.url)
        for script in (ours, theirs):
            try:
                _open_default_script(script)
            finally:
                script.close()
    finally:
        tether.stop()
        reference.stop()
    mismatches = [
        f"{name}:\n    tether: {a}\n    mlflow: {b}"
        for (name, a), (_, b) in zip(ours.out, theirs.out, strict=True)
        if a != b
    ]
    assert not mismatches, "\n".join(mismatches)
    # The option took effect (reads in default are allowed, not refused on both sides).
    assert dict(ours.out)["get ed"]["status"] == 200
    assert dict(ours.out)["get ea"]["status"] == 403
