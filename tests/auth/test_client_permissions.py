"""The stock MLflow client (3.x, in-process) against `tether serve --app-name basic-auth`: what
each user may do with READ, EDIT, MANAGE and DENY grants and the default permission (READ),
across experiments, runs, metrics, artifacts, logged models and the registry; credentials by
HTTP basic and by personal access token. Runs on SQLite and PostgreSQL.

alice creates everything (so she holds MANAGE on it) and grants: bob READ (the default
anyway), erin EDIT, dave MANAGE, carol DENY. Each test checks one kind of operation for all
of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import mlflow
import pytest
import requests
from mlflow import MlflowClient
from mlflow.entities import Metric
from mlflow.exceptions import MlflowException

from support import TetherServer, unique_name
from support.auth import ADMIN, ADMIN_PASSWORD, http, signed_in

pytestmark = pytest.mark.usefixtures("clean_mlflow_client")

PASSWORDS = {name: f"{name}-password-12" for name in ("alice", "bob", "carol", "dave", "erin")}
PASSWORDS[ADMIN] = ADMIN_PASSWORD


def attempt(user: str, call: Callable[[], Any]) -> str:
    """ "ok", or the MLflow error code the call failed with, signed in as `user`."""
    with signed_in(user, PASSWORDS[user]):
        try:
            call()
        except MlflowException as exc:
            return exc.error_code
        except requests.HTTPError as exc:  # artifact transfers raise these
            return {401: "UNAUTHENTICATED", 403: DENIED}.get(exc.response.status_code, str(exc))
    return "ok"


@dataclass
class World:
    url: str
    client: MlflowClient
    experiment_id: str
    run_id: str
    model_id: str
    model_name: str


def _grant(url: str, user: str, rtype: str, rid: str, permission: str) -> None:
    with http(url, "alice", PASSWORDS["alice"]) as client:
        response = client.post(
            "/api/3.0/mlflow/users/permissions/grant",
            json={
                "username": user,
                "resource_type": rtype,
                "resource_id": rid,
                "permission": permission,
            },
        )
        assert response.status_code == 200, response.text


@pytest.fixture(scope="module")
def world(auth_server: TetherServer) -> Iterator[World]:
    url = auth_server.url
    with http(url, ADMIN, ADMIN_PASSWORD) as admin:
        for name, password in PASSWORDS.items():
            if name != ADMIN:
                response = admin.post(
                    "/api/2.0/mlflow/users/create", json={"username": name, "password": password}
                )
                assert response.status_code == 200, response.text
    client = MlflowClient(tracking_uri=url)
    with signed_in("alice", PASSWORDS["alice"]):
        experiment_id = client.create_experiment(unique_name("alice"))
        run = client.create_run(experiment_id)
        client.log_metric(run.info.run_id, "loss", 0.5, step=1)
        client.log_param(run.info.run_id, "lr", "0.1")
        client.log_text(run.info.run_id, "hello", "notes/hello.txt")
        model = client.create_logged_model(experiment_id, name="clf", source_run_id=run.info.run_id)
        model_name = unique_name("model")
        client.create_registered_model(model_name)
        client.create_model_version(model_name, f"runs:/{run.info.run_id}/model", run.info.run_id)
    for user, permission in (("erin", "EDIT"), ("dave", "MANAGE"), ("carol", "DENY")):
        _grant(url, user, "experiment", experiment_id, permission)
        _grant(url, user, "registered_model", model_name, permission)
    yield World(url, client, experiment_id, run.info.run_id, model.model_id, model_name)


USERS = ("alice", "bob", "carol", "dave", "erin")


def outcomes(call: Callable[[], Any], users: tuple[str, ...] = USERS) -> dict[str, str]:
    return {user: attempt(user, call) for user in users}


DENIED = "PERMISSION_DENIED"


def test_read_the_experiment_and_its_runs(world: World) -> None:
    c = world.client
    expected = {"alice": "ok", "bob": "ok", "carol": DENIED, "dave": "ok", "erin": "ok"}
    assert outcomes(lambda: c.get_experiment(world.experiment_id)) == expected
    assert outcomes(lambda: c.get_run(world.run_id)) == expected
    assert outcomes(lambda: c.get_metric_history(world.run_id, "loss")) == expected
    assert outcomes(lambda: c.list_artifacts(world.run_id)) == expected


def test_write_to_a_run_needs_edit(world: World) -> None:
    c = world.client
    expected = {"alice": "ok", "bob": DENIED, "carol": DENIED, "dave": "ok", "erin": "ok"}
    assert outcomes(lambda: c.log_metric(world.run_id, "acc", 0.9)) == expected
    assert (
        outcomes(lambda: c.log_batch(world.run_id, metrics=[Metric("acc", 0.8, 0, 2)])) == expected
    )
    assert outcomes(lambda: c.set_tag(world.run_id, "who", "me")) == expected
    assert outcomes(lambda: c.create_run(world.experiment_id)) == expected
    assert outcomes(lambda: c.set_experiment_tag(world.experiment_id, "k", "v")) == expected


def test_delete_needs_manage(world: World) -> None:
    c = world.client
    runs = {}
    with signed_in("alice", PASSWORDS["alice"]):
        for user in USERS:
            runs[user] = c.create_run(world.experiment_id).info.run_id
    got = {user: attempt(user, lambda u=user: c.delete_run(runs[u])) for user in USERS}
    assert got == {"alice": "ok", "bob": DENIED, "carol": DENIED, "dave": "ok", "erin": DENIED}


def test_artifacts_follow_the_run(world: World) -> None:
    c = world.client
    got = outcomes(lambda: c.download_artifacts(world.run_id, "notes/hello.txt"))
    assert got == {"alice": "ok", "bob": "ok", "carol": DENIED, "dave": "ok", "erin": "ok"}
    got = outcomes(lambda: c.log_text(world.run_id, "more", "notes/more.txt"))
    assert got == {"alice": "ok", "bob": DENIED, "carol": DENIED, "dave": "ok", "erin": "ok"}
    # The UI's download route and the proxy's delete (MANAGE, as in MLflow).
    for user, status in (("bob", 200), ("carol", 403)):
        with http(world.url, user, PASSWORDS[user]) as client:
            response = client.get(
                "/get-artifact", params={"run_id": world.run_id, "path": "notes/hello.txt"}
            )
            assert response.status_code == status, (user, response.text)
            if status == 200:
                assert response.text == "hello"
    proxy = "/api/2.0/mlflow-artifacts/artifacts"
    path = f"{proxy}/{world.experiment_id}/{world.run_id}/artifacts/notes/more.txt"
    with http(world.url, "erin", PASSWORDS["erin"]) as client:
        assert client.delete(path).status_code == 403
    with http(world.url, "dave", PASSWORDS["dave"]) as client:
        assert client.delete(path).status_code == 200


def test_logged_models(world: World) -> None:
    c = world.client
    got = outcomes(lambda: c.get_logged_model(world.model_id))
    assert got == {"alice": "ok", "bob": "ok", "carol": DENIED, "dave": "ok", "erin": "ok"}
    got = outcomes(lambda: c.set_logged_model_tags(world.model_id, {"k": "v"}))
    # The client reads the model first and words carol's refusal to read as a bad id.
    refused_read = "INVALID_PARAMETER_VALUE"
    assert got == {"alice": "ok", "bob": DENIED, "carol": refused_read, "dave": "ok", "erin": "ok"}
    # EDIT on one's own run is not enough to log metrics into someone else's model.
    with signed_in("bob", PASSWORDS["bob"]):
        bobs = c.create_run(c.create_experiment(unique_name("bob"))).info.run_id
    into_model = lambda: c.log_metric(bobs, "m", 1.0, model_id=world.model_id)  # noqa: E731
    assert attempt("bob", into_model) == DENIED
    assert attempt("bob", lambda: c.log_metric(bobs, "m", 1.0)) == "ok"
    found = {
        user: len(_as(user, lambda: c.search_logged_models([world.experiment_id])))
        for user in USERS
    }
    assert found == {"alice": 1, "bob": 1, "carol": 0, "dave": 1, "erin": 1}


def test_registry(world: World) -> None:
    c = world.client
    name = world.model_name
    got = outcomes(lambda: c.get_registered_model(name))
    assert got == {"alice": "ok", "bob": "ok", "carol": DENIED, "dave": "ok", "erin": "ok"}
    got = outcomes(lambda: c.get_model_version(name, "1"))
    assert got == {"alice": "ok", "bob": "ok", "carol": DENIED, "dave": "ok", "erin": "ok"}
    got = outcomes(lambda: c.update_registered_model(name, description="d"))
    assert got == {"alice": "ok", "bob": DENIED, "carol": DENIED, "dave": "ok", "erin": "ok"}
    got = outcomes(lambda: c.set_registered_model_alias(name, "champion", "1"))
    assert got == {"alice": "ok", "bob": DENIED, "carol": DENIED, "dave": "ok", "erin": "ok"}
    seen = {
        user: [m.name for m in _as(user, lambda: c.search_registered_models(f"name = '{name}'"))]
        for user in USERS
    }
    assert seen == {"alice": [name], "bob": [name], "carol": [], "dave": [name], "erin": [name]}
    versions = {
        user: len(_as(user, lambda: c.search_model_versions(f"name = '{name}'"))) for user in USERS
    }
    assert versions == {"alice": 1, "bob": 1, "carol": 0, "dave": 1, "erin": 1}
    # Deleting needs MANAGE; the grants on the deleted name go with it.
    got = outcomes(lambda: c.delete_model_version(name, "1"), ("bob", "erin"))
    assert got == {"bob": DENIED, "erin": DENIED}
    assert attempt("dave", lambda: c.delete_registered_model(name)) == "ok"
    with signed_in("alice", PASSWORDS["alice"]):
        c.create_registered_model(name)  # the same name again: carol's DENY is gone
    assert attempt("carol", lambda: c.get_registered_model(name)) == "ok"


def _as(user: str, call: Callable[[], Any]) -> Any:
    with signed_in(user, PASSWORDS[user]):
        return call()


def test_search_shows_only_readable_experiments_and_pages_exactly(world: World) -> None:
    c = world.client
    prefix = unique_name("paged")
    with signed_in("alice", PASSWORDS["alice"]):
        ids = [c.create_experiment(f"{prefix}-{i}") for i in range(7)]
    denied = set(ids[1:5])
    for experiment_id in denied:
        _grant(world.url, "carol", "experiment", experiment_id, "DENY")
    expected = [i for i in reversed(ids) if i not in denied]  # newest first
    pages, token = [], None
    with signed_in("carol", PASSWORDS["carol"]):
        while True:
            page = c.search_experiments(
                filter_string=f"name LIKE '{prefix}%'", max_results=2, page_token=token
            )
            pages.append([e.experiment_id for e in page])
            token = page.token
            if not token:
                break
        runs = c.search_runs(ids)  # runs of denied experiments are left out too
    assert [e for page in pages for e in page] == expected
    assert all(len(page) == 2 for page in pages[:-1])
    assert runs == []
    with signed_in("bob", PASSWORDS["bob"]):
        seen = c.search_experiments(filter_string=f"name LIKE '{prefix}%'", max_results=100)
    assert len(seen) == 7


def test_fluent_api_with_credentials(world: World) -> None:
    """The usual training script, as erin (EDIT on alice's experiment)."""
    mlflow.set_tracking_uri(world.url)
    with signed_in("erin", PASSWORDS["erin"]):
        mlflow.set_experiment(experiment_id=world.experiment_id)
        with mlflow.start_run() as run:
            mlflow.log_metrics({"loss": 0.1}, step=3)
            mlflow.log_param("p", "1")
        assert MlflowClient().get_run(run.info.run_id).data.metrics == {"loss": 0.1}


def test_access_token(world: World) -> None:
    with http(world.url, "bob", PASSWORDS["bob"]) as bob:
        made = bob.post("/api/2.0/tether/tokens/create", json={"name": "ci", "expires_in_days": 30})
        assert made.status_code == 200, made.text
        secret, token_id = made.json()["secret"], made.json()["token"]["id"]
        listed = bob.get("/api/2.0/tether/tokens/list").json()["tokens"]
        assert [t["name"] for t in listed] == ["ci"]
        assert "secret" not in str(listed)
    c = MlflowClient(tracking_uri=world.url)
    with signed_in(token=secret):
        assert c.get_run(world.run_id).info.run_id == world.run_id
        with pytest.raises(MlflowException) as refused:
            c.log_metric(world.run_id, "x", 1.0)  # bob reads only
        assert refused.value.error_code == DENIED
    with http(world.url, "bob", PASSWORDS["bob"]) as bob:
        assert (
            bob.post("/api/2.0/tether/tokens/revoke", json={"token_id": token_id}).status_code
            == 200
        )
    with signed_in(token=secret), pytest.raises(MlflowException) as gone:
        c.get_run(world.run_id)
    assert gone.value.error_code == "UNAUTHENTICATED"


def test_no_credentials_and_public_routes(world: World) -> None:
    with httpx.Client(base_url=world.url, trust_env=False) as anonymous:
        for path in ("/health", "/version", "/ready", "/api/3.0/mlflow/server-info"):
            assert anonymous.get(path).status_code == 200, path
        refused = anonymous.get("/api/2.0/mlflow/experiments/search", params={"max_results": 1})
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == 'Basic realm="mlflow"'
        assert refused.json()["error_code"] == "UNAUTHENTICATED"
        assert anonymous.get("/").status_code == 401  # the browser asks for credentials
        # A stranger's body is not even read: 401, not the parser's 400.
        garbage = anonymous.post(
            "/api/2.0/mlflow/runs/log-batch",
            content=b"{not json",
            headers={"Content-Type": "application/json"},
        )
        assert garbage.status_code == 401
        assert anonymous.get("/api/2.0/tether/sync/status").status_code == 401
    with http(world.url, "bob", PASSWORDS["bob"]) as bob:
        assert bob.get("/api/2.0/tether/sync/status").status_code == 403
        assert bob.get("/tether/").status_code == 403
        assert bob.post("/tether/retry", content="all=dead").status_code == 403
    with http(world.url, ADMIN, ADMIN_PASSWORD) as admin:
        assert admin.get("/api/2.0/tether/sync/status").status_code == 200
        assert admin.get("/tether/").status_code == 200


def test_ui_only_routes(world: World) -> None:
    """The routes only the web UI calls follow the same permissions as in MLflow: metric
    history and dataset summaries need READ, the UI's upload EDIT on the run; the answers
    of features Tether lacks need a signed-in caller, nothing more."""
    ajax2, ajax3 = "/ajax-api/2.0/mlflow", "/ajax-api/3.0/mlflow"

    def statuses(user: str) -> dict[str, int]:
        with http(world.url, user, PASSWORDS[user]) as client:
            bulk = client.get(
                f"{ajax2}/metrics/get-history-bulk",
                params={"run_id": world.run_id, "metric_key": "loss"},
            )
            upload = client.post(
                f"{ajax2}/upload-artifact",
                params={"run_uuid": world.run_id, "path": f"ui/{user}.txt"},
                content=b"from the UI",
            )
            datasets = client.post(
                f"{ajax2}/experiments/search-datasets",
                json={"experiment_ids": [world.experiment_id]},
            )
            evaluation = client.post(
                f"{ajax3}/datasets/search", json={"experiment_ids": [world.experiment_id]}
            )
            return {
                "bulk": bulk.status_code,
                "upload": upload.status_code,
                "datasets": datasets.status_code,
                "evaluation": evaluation.status_code,
                "assistant": client.get(f"{ajax3}/assistant/config").status_code,
                "telemetry": client.post(f"{ajax3}/ui-telemetry", json={}).status_code,
            }

    ok = dict.fromkeys(("bulk", "upload", "datasets", "evaluation", "assistant", "telemetry"), 200)
    assert statuses("erin") == ok
    assert statuses("bob") == {**ok, "upload": 403}
    assert statuses("carol") == {
        **ok,
        "bulk": 403,
        "upload": 403,
        "datasets": 403,
        "evaluation": 403,
    }
    with httpx.Client(base_url=world.url, trust_env=False) as anonymous:
        for path in (f"{ajax3}/assistant/config", f"{ajax3}/ui-telemetry"):
            assert anonymous.get(path).status_code == 401, path
        upload = anonymous.post(
            f"{ajax2}/upload-artifact",
            params={"run_uuid": world.run_id, "path": "ui/anonymous.txt"},
            content=b"x",
        )
        assert upload.status_code == 401
    with http(world.url, "bob", PASSWORDS["bob"]) as bob:
        got = bob.get("/get-artifact", params={"run_id": world.run_id, "path": "ui/erin.txt"})
        assert (got.status_code, got.text) == (200, "from the UI")
        missing = bob.get("/get-artifact", params={"run_id": world.run_id, "path": "ui/bob.txt"})
        assert missing.status_code == 404


def test_graphql_honours_permissions(world: World) -> None:
    query = {
        "query": "query q($id: String, $run: String) { "
        "mlflowGetExperiment(input: {experimentId: $id}) { experiment { name } } "
        "mlflowGetRun(input: {runId: $run}) { run { info { runId } } } "
        "mlflowSearchRuns(input: {experimentIds: [$id]}) { runs { info { runId } } } }",
        "variables": {"id": world.experiment_id, "run": world.run_id},
    }
    answers = {}
    for user in ("bob", "carol"):
        with http(world.url, user, PASSWORDS[user]) as client:
            response = client.post("/graphql", json=query)
            assert response.status_code == 200
            answers[user] = response.json()["data"]
    assert answers["bob"]["mlflowGetExperiment"]["experiment"]["name"]
    assert answers["bob"]["mlflowGetRun"]["run"]["info"]["runId"] == world.run_id
    assert answers["bob"]["mlflowSearchRuns"]["runs"]
    assert answers["carol"]["mlflowGetExperiment"] is None
    assert answers["carol"]["mlflowGetRun"] is None
    assert answers["carol"]["mlflowSearchRuns"]["runs"] == []
