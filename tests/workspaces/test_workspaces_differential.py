"""MLflow 3.17's workspaces, Tether against the reference `mlflow server`, request by request:
the workspace API with and without `--enable-workspaces`, the X-MLFLOW-WORKSPACE header on
every family of routes, and everyday tracking and registry calls inside a workspace.

Deliberate deviations asserted here:
- a taken workspace name: both answer 400 RESOURCE_ALREADY_EXISTS, MLflow appending its
  IntegrityError's SQL text to the message;
- a delete refused by RESTRICT or SET_DEFAULT: same INVALID_STATE code and message, but 400
  on Tether (its rule for INVALID_STATE, tether.errors) where MLflow answers 500.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from compat.diff import Outcome, Pair, assert_error
from support import MlflowRest, ReferenceServer, TetherServer, unique_name

WS = "/api/3.0/mlflow/workspaces"
HEADER = "X-MLFLOW-WORKSPACE"


def ws_name() -> str:
    return f"ws-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def pair(
    reference_workspaces_server: ReferenceServer, tether_workspaces_server: TetherServer
) -> Iterator[Pair]:
    with reference_workspaces_server.rest() as ref, tether_workspaces_server.rest() as tet:
        yield Pair(ref, tet)


def in_workspace(pair: Pair, workspace: str) -> Pair:
    """The same servers, every request sent in `workspace`; ids registered by either pair
    are known to both (their normalisers share the id symbols)."""
    team = Pair(pair.rest["ref"].in_workspace(workspace), pair.rest["tet"].in_workspace(workspace))
    team.sides, team.norm = pair.sides, pair.norm
    return team


def created(pair: Pair, **body: Any) -> str:
    name = body.setdefault("name", ws_name())
    out = pair.send("POST", WS, body)
    assert out.ref.status == out.tet.status == 201, (out.ref.text, out.tet.text)
    assert out.ref_body == out.tet_body
    return str(name)


# --------------------------------------------------------------------------- workspace API


def test_create_get_update_list(pair: Pair) -> None:
    name = ws_name()
    out = pair.send("POST", WS, {"name": name, "description": "team A"})
    assert (out.ref.status, out.tet.status) == (201, 201)
    assert out.tet_body == out.ref_body == {"workspace": {"name": name, "description": "team A"}}
    rooted = created(pair, default_artifact_root="s3://bucket/prefix")
    assert pair.same("GET", f"{WS}/{rooted}", status=200) == {
        "workspace": {"name": rooted, "default_artifact_root": "s3://bucket/prefix"}
    }
    pair.same("GET", f"{WS}/{name}", status=200)
    pair.same("GET", f"{WS}/default", status=200)
    body = pair.same("PATCH", f"{WS}/{name}", {"description": "changed"}, status=200)
    assert body == {"workspace": {"name": name, "description": "changed"}}
    pair.same("PATCH", f"{WS}/{rooted}", {"default_artifact_root": ""}, status=200)
    # The reference server outlives each Tether server (other tests' workspaces are listed
    # there too): the listings agree on the workspaces of this test.
    out = pair.send("GET", WS)
    assert out.ref.status == out.tet.status == 200
    for body in (out.ref_body, out.tet_body):
        names = [w["name"] for w in body["workspaces"]]
        assert names == sorted(names)
        assert body["workspaces"][0] == {
            "name": "default",
            "description": "Default workspace for legacy resources",
        }
    mine = [
        [w for w in body["workspaces"] if w["name"] in (name, rooted)]
        for body in (out.ref_body, out.tet_body)
    ]
    assert mine[0] == mine[1] and len(mine[0]) == 2


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": 5},
        {"name": "default"},
        {"name": "a"},
        {"name": "x" * 64},
        {"name": "Team_A"},
        {"name": "-lead"},
        {"name": "api"},
        {"name": "static-files"},
        {"name": "ok-name", "default_artifact_root": "relative/path"},
        {"name": "ok-name", "default_artifact_root": "s3://b/p#frag"},
        {"name": "ok-name", "default_artifact_root": "runs:/abc/x"},
        {"name": "ok-name", "description": 3},
    ],
)
def test_create_refused(pair: Pair, body: dict[str, Any]) -> None:
    pair.same_error("POST", WS, body)


def test_taken_name(pair: Pair) -> None:
    name = created(pair)
    out = pair.send("POST", WS, {"name": name})
    assert_error(out, 400, "RESOURCE_ALREADY_EXISTS", message=False)
    assert out.tet_body["message"] == f"Workspace '{name}' already exists."
    assert out.ref_body["message"].startswith(f"Workspace '{name}' already exists.")


def test_get_update_delete_errors(pair: Pair) -> None:
    missing = ws_name()
    for method in ("GET", "DELETE"):
        pair.same_error(method, f"{WS}/{missing}", status=404, code="RESOURCE_DOES_NOT_EXIST")
        pair.same_error(method, f"{WS}/Bad_Name")
    pair.same_error(
        "PATCH", f"{WS}/{missing}", {"description": "x"}, status=404, code="RESOURCE_DOES_NOT_EXIST"
    )
    name = created(pair)
    pair.same_error("PATCH", f"{WS}/{name}", {})
    pair.same_error("PATCH", f"{WS}/{name}", {"default_artifact_root": "relative"})
    pair.same_error("DELETE", f"{WS}/default")
    pair.same_error("DELETE", f"{WS}/{name}?mode=SOMETIMES")


def _refused_state(out: Outcome) -> None:
    assert (out.ref.status, out.tet.status) == (500, 400)
    assert out.ref.error_code == out.tet.error_code == "INVALID_STATE"
    assert out.ref_body["message"] == out.tet_body["message"]


def test_delete_modes(pair: Pair) -> None:
    # RESTRICT (the default) refuses while the workspace holds anything.
    name = created(pair)
    team = in_workspace(pair, name)
    shared = unique_name("shared")
    team_exp = team.experiment(shared)
    _refused_state(pair.send("DELETE", f"{WS}/{name}"))
    _refused_state(pair.send("DELETE", f"{WS}/{name}?mode=RESTRICT"))
    # SET_DEFAULT refuses when a name is taken in default, listing the conflicts.
    pair.experiment(shared)
    out = team.send("POST", "registered-models/create", {"name": unique_name("rm")})
    assert out.ref.status == out.tet.status == 200
    _refused_state(pair.send("DELETE", f"{WS}/{name}?mode=SET_DEFAULT"))
    pair.same("GET", f"{WS}/{name}", status=200)
    # Without conflicts, SET_DEFAULT moves everything to default, ids unchanged.
    moved = created(pair)
    movers = in_workspace(pair, moved)
    exp = movers.experiment()
    run = movers.run(exp)
    out = pair.send("DELETE", f"{WS}/{moved}?mode=SET_DEFAULT")
    assert (out.ref.status, out.tet.status) == (204, 204) and out.ref.text == out.tet.text == ""
    body = pair.same("GET", "experiments/get", {"experiment_id": exp}, status=200)
    assert body["experiment"]["workspace"] == "default"
    pair.same("GET", "runs/get", {"run_id": run}, status=200)
    pair.same_error("GET", f"{WS}/{moved}", status=404, code="RESOURCE_DOES_NOT_EXIST")
    # CASCADE deletes the workspace's experiments (with their runs) and models.
    out = pair.send("DELETE", f"{WS}/{name}?mode=CASCADE")
    assert (out.ref.status, out.tet.status) == (204, 204)
    assert pair.same("GET", "experiments/get-by-name", {"experiment_name": shared}, status=200)
    pair.same_error(
        "GET",
        "experiments/get",
        {"experiment_id": team_exp},
        status=404,
        code="RESOURCE_DOES_NOT_EXIST",
    )
    # The workspace is gone: its header is now refused.
    gone = in_workspace(pair, name)
    gone.same_error(
        "GET",
        "experiments/search",
        {"max_results": 5},
        status=404,
        code="RESOURCE_DOES_NOT_EXIST",
    )


# ------------------------------------------------------------------------------- the header


ROUTE_FAMILIES = [
    ("GET", "experiments/search", {"max_results": 5}),
    ("GET", "experiments/get", {"experiment_id": "0"}),
    ("POST", "runs/search", {"experiment_ids": ["0"]}),
    ("GET", "registered-models/search", {}),
    ("GET", "model-versions/search", {}),
    ("POST", "logged-models/search", {"experiment_ids": ["0"]}),
    ("GET", "/api/2.0/mlflow-artifacts/artifacts", {}),
    ("GET", "/api/3.0/mlflow/workspaces", {}),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTE_FAMILIES)
def test_unknown_and_invalid_header(
    pair: Pair, method: str, path: str, body: dict[str, Any]
) -> None:
    in_workspace(pair, ws_name()).same_error(
        method, path, body, status=404, code="RESOURCE_DOES_NOT_EXIST"
    )
    in_workspace(pair, "Not_Valid").same_error(method, path, body)
    # (What default holds differs: the reference server outlives each Tether server.)
    out = in_workspace(pair, "default").send(method, path, body)
    assert out.ref.status == out.tet.status == 200


# ------------------------------------------------------------------- tracking in a workspace


def test_everyday_tracking_in_a_workspace(pair: Pair) -> None:
    name = created(pair)
    team = in_workspace(pair, name)
    # The default experiment is default's alone.
    team.same_error(
        "GET",
        "experiments/get",
        {"experiment_id": "0"},
        status=404,
        code="RESOURCE_DOES_NOT_EXIST",
    )
    exp = team.experiment("shared-name", tags=[{"key": "k", "value": "v"}])
    body = team.same("GET", "experiments/get", {"experiment_id": exp}, status=200)
    assert body["experiment"]["workspace"] == name
    assert (
        body["experiment"]["artifact_location"]
        == f"mlflow-artifacts:/workspaces/{name}/{exp.symbol}"
    )
    assert team.same("GET", "experiments/get-by-name", {"experiment_name": "shared-name"}) == body
    team.same_error("POST", "experiments/create", {"name": "x", "artifact_location": "s3://b/p"})
    run = team.run(exp)
    team.same("POST", "runs/log-metric", {"run_id": run, "key": "m", "value": 1.5, "timestamp": 1})
    team.same("POST", "runs/log-parameter", {"run_id": run, "key": "p", "value": "v"})
    team.same("GET", "runs/get", {"run_id": run}, status=200)
    team.same("POST", "runs/search", {"experiment_ids": [exp]}, status=200)
    team.same("GET", "experiments/search", {"max_results": 10}, status=200)
    model = unique_name("rm")
    out = team.send("POST", "registered-models/create", {"name": model})
    assert out.ref.status == out.tet.status == 200
    # Seen from default, none of it exists.
    pair.same_error(
        "GET",
        "experiments/get",
        {"experiment_id": exp},
        status=404,
        code="RESOURCE_DOES_NOT_EXIST",
    )
    pair.same_error("GET", "runs/get", {"run_id": run}, status=404, code="RESOURCE_DOES_NOT_EXIST")
    pair.same_error(
        "POST",
        "runs/log-metric",
        {"run_id": run, "key": "m", "value": 2, "timestamp": 2},
        status=404,
        code="RESOURCE_DOES_NOT_EXIST",
    )
    out = pair.send("GET", "registered-models/get", {"name": model})
    assert out.ref.status == out.tet.status == 404
    assert out.ref.error_code == out.tet.error_code == "RESOURCE_DOES_NOT_EXIST"


# ------------------------------------------------------------------- without the flag


@pytest.fixture
def plain(reference_rest: MlflowRest, tether_rest: MlflowRest) -> Pair:
    return Pair(reference_rest, tether_rest)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", WS),
        ("POST", WS),
        ("GET", f"{WS}/team-a"),
        ("PATCH", f"{WS}/team-a"),
        ("DELETE", f"{WS}/team-a"),
        ("GET", "/ajax-api/3.0/mlflow/workspaces/team-a"),
    ],
)
def test_workspace_routes_without_the_flag(plain: Pair, method: str, path: str) -> None:
    out = plain.send(method, path, {"name": "team-a"} if method == "POST" else None)
    assert (out.ref.status, out.ref.text) == (out.tet.status, out.tet.text)
    assert out.tet.status == 503
    assert out.tet.headers["content-type"] == out.ref.headers["content-type"]


@pytest.mark.parametrize(("method", "path", "body"), ROUTE_FAMILIES)
def test_header_without_the_flag(plain: Pair, method: str, path: str, body: dict[str, Any]) -> None:
    in_workspace(plain, "team-a").same_error(
        method, path, body, status=500, code="FEATURE_DISABLED"
    )
    # An empty header is no header. (What is listed differs: the reference server outlives
    # each Tether server.)
    out = in_workspace(plain, "").send(method, path, body)
    assert out.ref.status == out.tet.status  # 200; the workspace API's own 503
    assert plain.rest["tet"].in_workspace("team-a").get("/api/3.0/mlflow/server-info").status == 200
