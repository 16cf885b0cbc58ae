"""The local artifact store against planted special files, unusable artifact locations and
Tether's own temporary files, on SQLite and PostgreSQL (runs and experiments come from the
store).

Regressions: a FIFO in the artifact directory blocked a worker thread forever on every read
(40 exhausted the pool: `/ready` blamed the database, SIGTERM never completed); an experiment
`artifact_location` with `%00` made every artifact read of it a 500; crashed uploads'
`.tether-upload-*` files were never removed, and clients could store files under that prefix,
which listings then hid.
"""

from __future__ import annotations

import concurrent.futures
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from support import MlflowRest, RestResponse, TetherServer, TetherServerStarter, unique_name
from tether.storage.local import STAGING, STALE_UPLOAD_SECONDS, TEMP_PREFIX

PROXY = "/api/2.0/mlflow-artifacts/artifacts"


@pytest.fixture
def rest(tether_server: TetherServer) -> Iterator[MlflowRest]:
    with MlflowRest(tether_server.url, timeout=30) as client:
        yield client


def _new_run(rest: MlflowRest, **experiment: str) -> tuple[str, str]:
    """(run id, its artifact root as a store path) in a new experiment."""
    exp = rest.post("experiments/create", {"name": unique_name("hard"), **experiment})
    assert exp.status == 200, exp.json
    run = rest.post("runs/create", {"experiment_id": exp.json["experiment_id"]})
    info = run.json["run"]["info"]
    return info["run_id"], info["artifact_uri"].removeprefix("mlflow-artifacts:").lstrip("/")


def _refused(answer: RestResponse, fragment: str) -> None:
    assert (answer.status, answer.error_code) == (400, "INVALID_PARAMETER_VALUE"), answer.json
    assert fragment in answer.json["message"], answer.json


def test_special_files_are_refused_and_never_listed(
    rest: MlflowRest, tether_server: TetherServer
) -> None:
    run_id, root = _new_run(rest)
    directory = Path(tether_server.artifacts_destination) / root / "special"
    directory.mkdir(parents=True)
    os.mkfifo(directory / "fifo")
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(directory / "sock"))
        (directory / "file.txt").write_bytes(b"regular")
        for name in ("fifo", "sock"):
            _refused(rest.get(f"{PROXY}/{root}/special/{name}"), "special file")
            _refused(
                rest.get("/get-artifact", {"run_id": run_id, "path": f"special/{name}"}),
                "special file",
            )
        listing = rest.get("artifacts/list", {"run_id": run_id, "path": "special"}).json
        assert [f["path"] for f in listing["files"]] == ["special/file.txt"]
        proxy_listing = rest.get(PROXY, {"path": f"{root}/special"}).json
        assert [f["path"] for f in proxy_listing["files"]] == ["file.txt"]
        assert rest.get(f"{PROXY}/{root}/special/file.txt").text == "regular"


def test_many_fifo_reads_at_once_leave_the_server_serving(
    rest: MlflowRest, tether_server: TetherServer
) -> None:
    """Each read used to hold a worker thread forever: 40 took the whole pool."""
    _, root = _new_run(rest)
    directory = Path(tether_server.artifacts_destination) / root
    directory.mkdir(parents=True)
    for index in range(50):
        os.mkfifo(directory / f"fifo-{index}")

    def read(index: int) -> int:
        with MlflowRest(tether_server.url, timeout=30) as client:
            return client.get(f"{PROXY}/{root}/fifo-{index}").status

    with concurrent.futures.ThreadPoolExecutor(max_workers=50) as pool:
        statuses = list(pool.map(read, range(50)))
    assert statuses == [400] * 50
    assert rest.get("/health").status == 200
    ready = rest.get("/ready")
    assert ready.status == 200, ready.json


def test_an_unusable_artifact_location_is_a_clear_400(
    rest: MlflowRest, tether_server: TetherServer
) -> None:
    root = Path(tether_server.artifacts_destination)
    for location, reason in (
        (f"file://{root}/a%00b", "null"),  # %00 decodes to NUL
        ("mlflow-artifacts:/a%00b", "control character"),
        ("file://[::1/broken", "Invalid IPv6 URL"),
    ):
        run_id, _ = _new_run(rest, artifact_location=location)
        for answer in (
            rest.get("artifacts/list", {"run_id": run_id}),
            rest.get("/get-artifact", {"run_id": run_id, "path": "model/MLmodel"}),
        ):
            _refused(answer, "is not usable")
            assert reason in answer.json["message"]
    assert rest.get("/health").status == 200


def test_clients_cannot_use_tethers_reserved_names(
    rest: MlflowRest, tether_server: TetherServer
) -> None:
    root = Path(tether_server.artifacts_destination)
    for path in (
        f"{TEMP_PREFIX}x",
        f"a/{TEMP_PREFIX}abc",
        f"{STAGING}/evil",
        f"{STAGING}",
    ):
        _refused(rest.request("PUT", f"{PROXY}/{path}", content=b"x"), "reserved name")
        _refused(rest.get(f"{PROXY}/{path}"), "reserved name")
        _refused(rest.delete(f"{PROXY}/{path}"), "reserved name")
    assert not list((root / STAGING).iterdir())
    # A normal upload goes through the staging directory and leaves nothing behind there.
    assert rest.request("PUT", f"{PROXY}/plain/f.txt", content=b"x").status == 200
    assert not list((root / STAGING).iterdir())
    assert sorted(p.name for p in (root / "plain").iterdir()) == ["f.txt"]
    names = [f["path"] for f in rest.get(PROXY).json.get("files", [])]
    assert STAGING not in names


@pytest.mark.parametrize("backend_kind", ["sqlite"], indirect=True)
def test_stale_uploads_are_removed_at_start_and_fresh_ones_kept(
    start_tether_server: TetherServerStarter, tmp_path: Path
) -> None:
    """What a crashed upload left is removed when a server starts; a younger file may be
    another worker's or replica's upload in progress, and stays."""
    artifacts = tmp_path / "artifacts"
    staging = artifacts / STAGING
    staging.mkdir(parents=True)
    stale = staging / "crashed-upload"
    stale.write_bytes(b"half")
    an_hour_and_more = time.time() - STALE_UPLOAD_SECONDS - 60
    os.utime(stale, (an_hour_and_more, an_hour_and_more))
    in_progress = staging / "uploading"
    in_progress.write_bytes(b"partial")
    server = start_tether_server(artifacts_destination=str(artifacts))
    with server.rest() as rest:
        assert rest.get("/health").status == 200
    assert sorted(p.name for p in staging.iterdir()) == ["uploading"]
