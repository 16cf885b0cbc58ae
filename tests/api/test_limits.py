"""Request body limit (`TETHER_MAX_REQUEST_BYTES`): a too-large JSON body is refused with 413
and MLflow's error body before anything is written, whether its size is announced
(Content-Length) or only seen while reading (chunked); artifact uploads are never limited."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from support import unique_name
from tether.config import Settings

if TYPE_CHECKING:
    from support import TetherServer, TetherServerStarter

MIB = 1024 * 1024
LIMIT = 16 * MIB
API = "/api/2.0/mlflow"

sqlite_only = pytest.mark.parametrize("backend_kind", ["sqlite"], indirect=True)


@pytest.fixture
def server(start_tether_server: TetherServerStarter) -> TetherServer:
    return start_tether_server(env={"TETHER_MAX_REQUEST_BYTES": str(LIMIT)})


@pytest.fixture
def client(server: TetherServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, trust_env=False, timeout=120) as client:
        yield client


def _new_run(client: httpx.Client) -> str:
    created = client.post(f"{API}/experiments/create", json={"name": unique_name("limits")})
    assert created.status_code == 200, created.text
    run = client.post(
        f"{API}/runs/create",
        json={"experiment_id": created.json()["experiment_id"], "start_time": 1},
    )
    assert run.status_code == 200, run.text
    run_id: str = run.json()["run"]["info"]["run_id"]
    return run_id


def _huge_batch(run_id: str, size: int) -> bytes:
    """A log-batch body of about `size` bytes (params with long values)."""
    value = "v" * 5000
    count = size // len(value) + 1
    params = [{"key": f"p{i}", "value": value} for i in range(count)]
    return json.dumps({"run_id": run_id, "params": params}).encode()


def _assert_too_large(response: httpx.Response) -> None:
    assert response.status_code == 413, response.text[:500]
    body: dict[str, Any] = response.json()
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert f"the limit is {LIMIT} bytes" in body["message"]


def _params_of(client: httpx.Client, run_id: str) -> list[Any]:
    got = client.get(f"{API}/runs/get", params={"run_id": run_id})
    assert got.status_code == 200, got.text
    params: list[Any] = got.json()["run"]["data"].get("params", [])
    return params


@sqlite_only
def test_json_body_over_the_limit_is_refused_and_nothing_is_written(
    client: httpx.Client,
) -> None:
    run_id = _new_run(client)
    body = _huge_batch(run_id, 20 * MIB)
    assert len(body) > 20 * MIB
    headers = {"Content-Type": "application/json"}

    announced = client.post(f"{API}/runs/log-batch", content=body, headers=headers)
    _assert_too_large(announced)

    def chunks() -> Iterator[bytes]:  # no Content-Length: Transfer-Encoding: chunked
        for start in range(0, len(body), MIB):
            yield body[start : start + MIB]

    streamed = client.post(f"{API}/runs/log-batch", content=chunks(), headers=headers)
    _assert_too_large(streamed)

    assert _params_of(client, run_id) == []
    # The limit only refuses what is over it; the server goes on answering.
    small = client.post(
        f"{API}/runs/log-batch",
        json={"run_id": run_id, "params": [{"key": "p", "value": "v"}]},
    )
    assert small.status_code == 200, small.text
    assert _params_of(client, run_id) == [{"key": "p", "value": "v"}]


@sqlite_only
def test_artifact_upload_larger_than_the_limit_is_stored_whole(client: httpx.Client) -> None:
    size = 64 * MIB
    digest = hashlib.sha256()

    def chunks() -> Iterator[bytes]:
        block = bytes(range(256)) * 4096  # 1 MiB
        for index in range(size // len(block)):
            piece = bytes([index % 256]) + block[1:]
            digest.update(piece)
            yield piece

    path = f"/api/2.0/mlflow-artifacts/artifacts/{unique_name('limits')}/big.bin"
    # Both ways: announced (Content-Length) and chunked.
    uploaded = client.put(path, content=chunks())
    assert uploaded.status_code == 200, uploaded.text
    expected = digest.hexdigest()
    with client.stream("GET", path) as download:
        assert download.status_code == 200
        got = hashlib.sha256()
        total = 0
        for piece in download.iter_bytes():
            got.update(piece)
            total += len(piece)
    assert (total, got.hexdigest()) == (size, expected)

    whole = b"".join(chunks())
    announced = client.put(path + ".2", content=whole)
    assert announced.status_code == 200, announced.text
    listed = client.get(
        "/api/2.0/mlflow-artifacts/artifacts", params={"path": path.rsplit("/", 2)[1]}
    )
    sizes = {f["path"]: f.get("file_size") for f in listed.json()["files"]}
    assert sizes == {"big.bin": size, "big.bin.2": size}


def test_default_limit_takes_any_valid_mlflow_request() -> None:
    """32 MiB: a full log-batch (every value \\u-escaped) or log-inputs with the largest
    dataset profile MLflow stores (16 MiB) fits."""
    assert Settings.model_fields["max_request_bytes"].default == 32 * MIB
