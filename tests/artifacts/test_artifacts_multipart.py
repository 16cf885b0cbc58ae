"""Multipart uploads as the MLflow 3 client does them.

Azure Blob: `/api/3.0/mlflow/server-info` advertises multipart uploads, the client asks
`mpu/create` for one SAS URL per block, PUTs the blocks straight to storage (Azurite here) and
`mpu/complete` commits them. The local store answers `mpu/*` with MLflow's 501 and the client
falls back to a proxied PUT.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import mlflow
import pytest
from mlflow import MlflowClient

from artifacts.helpers import ArtifactServer, write_tree
from support import unique_name

pytestmark = pytest.mark.usefixtures("clean_mlflow_client")  # the fluent API's globals

MPU = "/api/2.0/mlflow-artifacts/mpu"
PART = 256 * 1024


@pytest.fixture
def small_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", str(PART))
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", str(PART))


def test_client_multipart_upload(
    artifact_server: ArtifactServer,
    tmp_path: Path,
    small_parts: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if artifact_server.kind == "local":
        # Ask for multipart although server-info says no: the 501 must make the client fall
        # back to a plain PUT, exactly as against `mlflow server` on a local directory.
        monkeypatch.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "true")
    content = os.urandom(5 * PART - 1000)
    source = write_tree(tmp_path, {"big.bin": content}) / "big.bin"
    url = artifact_server.url
    client = MlflowClient(url)
    run = client.create_run(client.create_experiment(unique_name("mpu")))
    last = artifact_server.last_outbox_id()
    mlflow.set_tracking_uri(url)
    client.log_artifact(run.info.run_id, str(source), "weights")

    root = run.info.artifact_uri.removeprefix("mlflow-artifacts:").lstrip("/")
    stored = f"{root}/weights/big.bin"
    assert artifact_server.read_stored(stored) == content
    assert artifact_server.outbox_after(last) == [
        {
            "entity": ("run", run.info.run_id),
            "op": "artifact_put",
            "payload": {"path": stored, "size": len(content)},
        }
    ]
    if artifact_server.kind == "azurite":
        with artifact_server._container_client() as container:
            blocks, _ = container.get_blob_client(f"store/{stored}").get_block_list()
        assert [b.size for b in blocks] == [PART] * 4 + [PART - 1000]  # uploaded in parts
    got = mlflow.artifacts.download_artifacts(
        artifact_uri=f"{run.info.artifact_uri}/weights/big.bin",
        dst_path=str(tmp_path / "dl"),
        tracking_uri=url,
    )
    assert Path(got).read_bytes() == content


@pytest.mark.parametrize("store_kind", ["azurite"], indirect=True)  # local: 501 (differential)
def test_multipart_protocol(artifact_server: ArtifactServer) -> None:
    with httpx.Client(base_url=artifact_server.url, timeout=30) as http:
        created = http.post(f"{MPU}/create/7/x", json={"path": "C:\\data\\w.bin", "num_parts": 3})
        assert created.status_code == 200
        body = created.json()
        assert [c["part_number"] for c in body["credentials"]] == [1, 2, 3]
        assert all(c["headers"] == {} for c in body["credentials"])
        assert "/store/7/x/w.bin?comp=block&blockid=" in body["credentials"][0]["url"]
        parts = []
        for number, credential in enumerate(body["credentials"], start=1):
            put = httpx.put(credential["url"], content=bytes([number]) * 1000)
            assert put.status_code == 201, put.text
            parts.append({"part_number": number, "etag": "", "url": credential["url"]})
        shuffled = [parts[2], parts[0], parts[1]]  # committed in part_number order
        done = http.post(
            f"{MPU}/complete/7/x",
            json={"path": "w.bin", "upload_id": body["upload_id"], "parts": shuffled},
        )
        assert (done.status_code, done.json()) == (200, {})
        assert http.get("/api/2.0/mlflow-artifacts/artifacts/7/x/w.bin").content == (
            b"\x01" * 1000 + b"\x02" * 1000 + b"\x03" * 1000
        )
        bad = http.post(
            f"{MPU}/complete/7/x",
            json={
                "path": "w.bin",
                "parts": [{"part_number": 1, "url": "http://x/?blockid=bm9wZQ=="}],
            },
        )
        assert (bad.status_code, bad.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
        aborted = http.post(f"{MPU}/abort/7/x", json={"path": "w.bin", "upload_id": "u"})
        assert (aborted.status_code, aborted.json()) == (200, {})
        too_many = http.post(f"{MPU}/create/7/x", json={"path": "w.bin", "num_parts": 50_001})
        assert too_many.status_code == 400
