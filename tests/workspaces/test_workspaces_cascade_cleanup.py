"""Deleting a workspace with mode=CASCADE leaves nothing of it behind: its experiments'
artifacts (under `workspaces/<name>/` of the artifact store, local or Azure Blob) are removed,
another workspace's and `default`'s are not; and the sync outbox records the deletions as a
deletion in Tether does (an ExperimentDelete with its active runs per experiment, a
RegisteredModelDelete per model), in the same transaction. SET_DEFAULT keeps the files (the
experiments move, their locations do not)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from azure.storage.blob import BlobServiceClient

from support import BackendUriFactory, TetherServer
from tether.db.engine import Database
from tether.db.models import OutboxEntry

ENABLE = ["--enable-workspaces"]


def _ws(name: str) -> dict[str, str]:
    return {"X-MLFLOW-WORKSPACE": name}


class Store:
    """The files in the server's artifact store (relative paths)."""

    def __init__(self, kind: str, request: pytest.FixtureRequest) -> None:
        self.kind = kind
        self.args: list[str] = []
        self.env: dict[str, str] = {}
        if kind == "azurite":
            self.azurite: Any = request.getfixturevalue("azurite")
            self.container = self.azurite.new_container()
            self.args = ["--artifacts-destination", self.azurite.wasbs(self.container, "store")]
            self.env = self.azurite.env()

    def files(self, server: TetherServer) -> set[str]:
        if self.kind == "local":
            root = Path(server.artifacts_destination)
            return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
        with BlobServiceClient.from_connection_string(self.azurite.connection_string) as client:
            container = client.get_container_client(self.container)
            return {b.name.removeprefix("store/") for b in container.list_blobs("store/")}


def _populate(http: httpx.Client, workspace: str) -> dict[str, Any]:
    """An experiment with two runs (one deleted) holding artifacts, and a registered model."""
    headers = _ws(workspace)

    def call(method: str, path: str, **kw: Any) -> Any:
        answer = http.request(method, path, headers=headers, **kw)
        assert answer.status_code == 200, answer.text
        return answer.json() if answer.content else {}

    experiment_id = call(
        "POST", "/api/2.0/mlflow/experiments/create", json={"name": f"exp-{workspace}"}
    )["experiment_id"]
    runs = []
    root = ""
    for name in ("kept", "deleted"):
        run = call(
            "POST",
            "/api/2.0/mlflow/runs/create",
            json={"experiment_id": experiment_id, "run_name": name},
        )["run"]["info"]
        uri = run["artifact_uri"].removeprefix("mlflow-artifacts:/")
        root = uri.removesuffix(f"/{run['run_id']}/artifacts")
        for file in ("a.txt", "dir/b.txt"):
            put = http.put(
                f"/api/2.0/mlflow-artifacts/artifacts/{uri}/{file}",
                content=f"{workspace} {name} {file}".encode(),
                headers=headers,
            )
            assert put.status_code == 200, put.text
        runs.append(run["run_id"])
    call("POST", "/api/2.0/mlflow/runs/delete", json={"run_id": runs[1]})
    model = call("POST", "/api/2.0/mlflow/registered-models/create", json={"name": "shared"})
    assert model["registered_model"]["name"] == "shared"
    return {"experiment_id": experiment_id, "active_run": runs[0], "root": root + "/"}


def _outbox(backend_uri: str, op: str) -> list[tuple[str, str, dict[str, Any]]]:
    db = Database(backend_uri)
    try:
        with db.read() as session:
            rows = session.execute(
                sa.select(OutboxEntry.entity_type, OutboxEntry.entity_id, OutboxEntry.payload)
                .where(OutboxEntry.op == op)
                .order_by(OutboxEntry.id)
            ).all()
        return [(t, i, json.loads(p)) for t, i, p in rows]
    finally:
        db.dispose()


@pytest.mark.parametrize("store_kind", ["local", "azurite"])
def test_cascade_removes_the_workspace_artifacts_and_tells_the_sync(
    store_kind: str,
    backend_kind: str,
    make_backend_uri: BackendUriFactory,
    start_tether_server: Any,
    request: pytest.FixtureRequest,
) -> None:
    store = Store(store_kind, request)
    backend_uri = make_backend_uri(backend_kind)
    server = start_tether_server(backend_uri, extra_args=[*ENABLE, *store.args], env=store.env)
    with httpx.Client(base_url=server.url, timeout=60) as http:
        for name in ("team-a", "team-b"):
            assert http.post("/api/3.0/mlflow/workspaces", json={"name": name}).status_code == 201
        made = {name: _populate(http, name) for name in ("team-a", "team-b", "default")}
        before = store.files(server)
        assert made["team-a"]["root"].startswith("workspaces/team-a/")
        for name in ("team-a", "team-b", "default"):
            assert len([f for f in before if f.startswith(made[name]["root"])]) == 4, before
        deletes_before = len(_outbox(backend_uri, "delete"))

        answer = http.delete("/api/3.0/mlflow/workspaces/team-a", params={"mode": "CASCADE"})
        assert answer.status_code == 204, answer.text

        after = store.files(server)
        assert not [f for f in after if f.startswith("workspaces/team-a/")], after
        assert after == {f for f in before if not f.startswith("workspaces/team-a/")}

    deletes = _outbox(backend_uri, "delete")[deletes_before:]
    team_a = made["team-a"]
    assert sorted((t, i) for t, i, _ in deletes) == sorted(
        [("experiment", team_a["experiment_id"]), ("registered_model", _model_id(deletes))]
    )
    experiment = next(p for t, _, p in deletes if t == "experiment")
    assert experiment["run_ids"] == [team_a["active_run"]]  # the deleted run was told already
    model = next(p for t, _, p in deletes if t == "registered_model")
    assert model["name"] == "shared"


def _model_id(deletes: list[tuple[str, str, dict[str, Any]]]) -> str:
    return next(i for t, i, _ in deletes if t == "registered_model")


def test_set_default_keeps_the_files(
    backend_kind: str, make_backend_uri: BackendUriFactory, start_tether_server: Any
) -> None:
    server = start_tether_server(make_backend_uri(backend_kind), extra_args=ENABLE)
    store = Store("local", None)  # type: ignore[arg-type]
    with httpx.Client(base_url=server.url, timeout=60) as http:
        assert http.post("/api/3.0/mlflow/workspaces", json={"name": "team-c"}).status_code == 201
        made = _populate(http, "team-c")
        before = store.files(server)
        answer = http.delete("/api/3.0/mlflow/workspaces/team-c", params={"mode": "SET_DEFAULT"})
        assert answer.status_code == 204, answer.text
        assert store.files(server) == before
        moved = http.get(
            "/api/2.0/mlflow/experiments/get", params={"experiment_id": made["experiment_id"]}
        )
        assert moved.json()["experiment"]["workspace"] == "default"
