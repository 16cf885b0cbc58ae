"""A bound workspace's artifacts destination on the write side (tether.storage.routed).

The server's store is one Azurite container (`default`'s files, and every workspace's before it
has a destination); `team-b` is bound to a container of its own in a *second* Azurite, reached
only with the binding's named credential (`TETHER_AZURE_CREDENTIAL_TEAMB_STORAGE_CONNECTION_
STRING`: the server's own connection string points at the first Azurite, so a file routed with
the wrong credential could not land there). The stock MLflow client writes and reads in both
workspaces (artifacts, a logged model, a registered model version's download); the Blob SDK
then says where each file really is. Also: files from before the bind stay downloadable and
`tether workspaces move-artifacts` moves them; unbind keeps the destination; a rebind to the
server store keeps the container readable; a bad destination is refused with nothing changed.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import mlflow
import pytest
from azure.storage.blob import BlobServiceClient
from mlflow import MlflowClient

from support import TetherServer, unique_name
from sync.sync_servers import run_tether

if TYPE_CHECKING:
    from support import TetherServerStarter
    from support.azurite import Azurite

pytestmark = [pytest.mark.usefixtures("clean_mlflow_client"), pytest.mark.timeout(600)]
TEAM = "team-b"
A_URI = (
    "azureml://eastus.api.azureml.ms/mlflow/v1.0/subscriptions/S-1/resourceGroups/RG-A"
    "/providers/Microsoft.MachineLearningServices/workspaces/WS-A"
)


@pytest.fixture(scope="module")
def team_azurite() -> Iterator[Azurite]:
    """team-b's own storage: another Azurite, that only its named credential points at."""
    from support.azurite import Azurite

    server = Azurite()
    try:
        yield server
    finally:
        server.stop()


def _blobs(connection_string: str, container: str) -> list[str]:
    with BlobServiceClient.from_connection_string(connection_string) as client:
        return sorted(b.name for b in client.get_container_client(container).list_blobs())


def _bind(server: TetherServer, env: dict[str, str], *args: str) -> Any:
    return run_tether(
        "workspaces",
        "bind",
        TEAM,
        "--azureml-workspace",
        A_URI,
        *args,
        "--backend-store-uri",
        server.backend_uri,
        env=env,
    )


def _log_file(tmp_path: Path, name: str, data: bytes) -> str:
    """A run in the current workspace with one artifact; its run id."""
    path = tmp_path / uuid.uuid4().hex / name
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(path))
    return run.info.run_id


def _download(run_id: str, name: str, tmp_path: Path) -> bytes:
    out = tmp_path / uuid.uuid4().hex
    got = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=name, dst_path=str(out))
    return Path(got).read_bytes()


def _until_routed(
    tmp_path: Path, where: Callable[[], list[str]], other: Callable[[], list[str]], marker: str
) -> None:
    """Log probe runs into the current workspace until one's file lands in `where` (a bind
    takes effect within the route table's refresh); the others must be in `other`."""
    deadline = time.monotonic() + 60
    while True:
        run_id = _log_file(tmp_path, f"{marker}.txt", b"probe")
        if any(run_id in name for name in where()):
            return
        assert any(run_id in name for name in other()), "a probe landed nowhere"
        assert time.monotonic() < deadline, "the bind did not take effect"
        time.sleep(0.2)


def test_a_bound_workspace_writes_and_reads_only_its_own_container(
    start_tether_server: TetherServerStarter,
    azurite: Azurite,
    team_azurite: Azurite,
    tmp_path: Path,
) -> None:
    server_container = azurite.new_container("server")
    team_container = team_azurite.new_container("team-b")
    env = {
        **azurite.env(),
        "TETHER_AZURE_CREDENTIAL_TEAMB_STORAGE_CONNECTION_STRING": team_azurite.connection_string,
        "TETHER_TRACE_INLINE_SEGMENT_BYTES": "0",  # span files, not rows: they are routed too
    }
    server_store = azurite.wasbs(server_container, "store")
    server = start_tether_server(
        extra_args=["--enable-workspaces", "--artifacts-destination", server_store], env=env
    )
    team_dest = team_azurite.wasbs(team_container)

    def server_blobs() -> list[str]:
        return _blobs(azurite.connection_string, server_container)

    def team_blobs() -> list[str]:
        return _blobs(team_azurite.connection_string, team_container)

    with server.rest("/api/3.0/mlflow") as rest:
        assert rest.post("workspaces", {"name": TEAM}).status == 201
    mlflow.set_tracking_uri(server.url)

    # team-b before its bind: on the server store, under its prefix.
    mlflow.set_workspace(TEAM)
    team_experiment = unique_name("team")
    mlflow.set_experiment(team_experiment)
    before = _log_file(tmp_path, "before.txt", b"written before the bind")
    assert any(f"workspaces/{TEAM}/" in n and n.endswith("before.txt") for n in server_blobs())

    # Bad destinations: refused (exit 1, the reason), and the binding is unchanged.
    bad = [
        ("s3://bucket/x", "Unsupported"),
        (team_azurite.wasbs("no-such-container"), "cannot be used"),
        (f"mlflow-artifacts:/{TEAM}", "Unsupported artifacts destination"),
    ]
    for destination, message in bad:
        done = _bind(server, env, "--artifacts-destination", destination, "--credential", "TEAMB")
        assert done.returncode == 1 and message in done.stderr, (destination, done.stderr)
    # The credential's variables missing from the binder's environment: refused, and no
    # value is shown (only the variable's name).
    missing = _bind(
        server, azurite.env(), "--artifacts-destination", team_dest, "--credential", "TEAMB"
    )
    assert missing.returncode == 1 and "TETHER_AZURE_CREDENTIAL_TEAMB_CLIENT_ID" in missing.stderr
    with httpx.Client(base_url=server.url, timeout=60) as http:
        rest_bad = http.put(
            f"/api/2.0/tether/workspaces/{TEAM}/binding",
            json={"azureml_workspace": A_URI, "artifacts_destination": "s3://bucket/x"},
        )
        assert rest_bad.status_code == 400, rest_bad.text
        assert rest_bad.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        # Shared with the server's store (the same prefix, or the container holding it): a
        # CASCADE delete of the workspace would empty it, so it is refused.
        for shared in (server_store, azurite.wasbs(server_container)):
            clash = http.put(
                f"/api/2.0/tether/workspaces/{TEAM}/binding",
                json={"azureml_workspace": A_URI, "artifacts_destination": shared},
            )
            assert clash.status_code == 400 and "overlaps" in clash.text, clash.text
        info = http.get(f"/api/2.0/tether/workspaces/{TEAM}").json()
    assert info["sync"]["binding"] == "local-only" and info["artifacts_destination"] is None
    assert team_blobs() == []

    # Bound to its own container, with its own credential.
    done = _bind(server, env, "--artifacts-destination", team_dest, "--credential", "TEAMB")
    assert done.returncode == 0, done.stderr
    _until_routed(tmp_path, team_blobs, server_blobs, "probe")

    after = _log_file(tmp_path, "after.txt", b"written after the bind")
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
    with mlflow.start_run():
        logged = mlflow.sklearn.log_model(
            model, name="m", pip_requirements=["scikit-learn"], registered_model_name="team-model"
        )
    version_dir = mlflow.artifacts.download_artifacts(
        "models:/team-model/1", dst_path=str(tmp_path / "version")
    )
    assert (Path(version_dir) / "MLmodel").is_file()
    loaded = mlflow.sklearn.load_model(f"models:/{logged.model_id}")
    assert list(loaded.predict([[0.0], [3.0]])) == [0, 1]
    assert _download(after, "after.txt", tmp_path) == b"written after the bind"
    assert _download(before, "before.txt", tmp_path) == b"written before the bind"

    # A trace's files (span segments are files on this server, not rows) land in the container,
    # and read back whole.
    @mlflow.trace
    def traced(x: int) -> int:
        return x + 1

    traced(1)
    trace_id = mlflow.get_last_active_trace_id()
    assert trace_id is not None
    deadline = time.monotonic() + 60
    while not any(f"/traces/{trace_id}/" in n for n in team_blobs()):
        assert time.monotonic() < deadline, team_blobs()
        time.sleep(0.2)
    trace = MlflowClient(server.url).get_trace(trace_id)
    assert [span.name for span in trace.data.spans] == ["traced"]

    mlflow.set_workspace(None)  # default: the server store, as ever
    mlflow.set_experiment(unique_name("default"))
    default_run = _log_file(tmp_path, "default.txt", b"default's")

    team, store = team_blobs(), server_blobs()
    # team-b's container is a stock MLflow artifact root: no workspaces/ prefix in it.
    assert not any(n.startswith("workspaces/") for n in team), team
    assert any(n.endswith(f"{after}/artifacts/after.txt") for n in team), team
    assert any(f"/models/{logged.model_id}/artifacts/MLmodel" in n for n in team), team
    # The server store: default's files and team-b's from before the bind, nothing newer.
    assert any(n.endswith(f"{default_run}/artifacts/default.txt") for n in store), store
    team_on_server = [n for n in store if n.startswith(f"store/workspaces/{TEAM}/")]
    assert team_on_server and all(before in n or "probe" in n for n in team_on_server)
    assert not any(after in n or logged.model_id in n or trace_id in n for n in store)
    assert not any(default_run in n for n in team)

    # Moving the old files: into the container, gone from the server store, still served.
    moved = run_tether(
        "workspaces",
        "move-artifacts",
        TEAM,
        "--backend-store-uri",
        server.backend_uri,
        "--artifacts-destination",
        server_store,
        env=env,
    )
    assert moved.returncode == 0, moved.stderr
    assert "moved " in moved.stdout
    assert any(n.endswith(f"{before}/artifacts/before.txt") for n in team_blobs())
    assert not [n for n in server_blobs() if n.startswith(f"store/workspaces/{TEAM}/")]
    mlflow.set_workspace(TEAM)
    mlflow.set_experiment(team_experiment)
    assert _download(before, "before.txt", tmp_path) == b"written before the bind"
    again = run_tether(
        "workspaces",
        "move-artifacts",
        TEAM,
        "--backend-store-uri",
        server.backend_uri,
        "--artifacts-destination",
        server_store,
        env=env,
    )
    assert again.returncode == 0 and "moved 0 files" in again.stdout, again.stdout

    # Unbind: the destination stays in effect (files where they are, new ones beside them).
    unbound = run_tether(
        "workspaces", "unbind", TEAM, "--backend-store-uri", server.backend_uri, env=env
    )
    assert unbound.returncode == 0, unbound.stderr
    late = _log_file(tmp_path, "late.txt", b"after the unbind")
    assert any(late in n for n in team_blobs())
    assert _download(after, "after.txt", tmp_path) == b"written after the bind"

    # Rebind without a destination: new files on the server store; the container's are
    # still read (it is listed as a previous destination until moved back).
    assert _bind(server, env).returncode == 0
    _until_routed(tmp_path, server_blobs, team_blobs, "back")
    listed = run_tether(
        "workspaces", "list", "--json", "--backend-store-uri", server.backend_uri, env=env
    )
    info = {w["name"]: w for w in json.loads(listed.stdout)["workspaces"]}[TEAM]
    assert info["artifacts_destination"] is None and info["artifacts_previous"] == [team_dest]
    assert _download(after, "after.txt", tmp_path) == b"written after the bind"
    assert _download(late, "late.txt", tmp_path) == b"after the unbind"
    assert os.environ.get("TETHER_AZURE_CREDENTIAL_TEAMB_STORAGE_CONNECTION_STRING") is None

    # Deleted with CASCADE: its files go from every location it had (the binding row goes
    # with the workspace; the cleanup that follows still reaches the container).
    assert any(n.startswith(f"store/workspaces/{TEAM}/") for n in server_blobs())
    with httpx.Client(base_url=server.url, timeout=120) as http:
        gone = http.delete(f"/api/3.0/mlflow/workspaces/{TEAM}", params={"mode": "CASCADE"})
    assert gone.status_code == 204, gone.text
    assert team_blobs() == []
    assert not [n for n in server_blobs() if n.startswith(f"store/workspaces/{TEAM}/")]
    assert any(n.endswith(f"{default_run}/artifacts/default.txt") for n in server_blobs())
