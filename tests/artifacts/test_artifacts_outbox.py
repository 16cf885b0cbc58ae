"""Sync outbox: each durable artifact write or delete appends one row, after the bytes landed;
refused or no-op requests append nothing."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from typing import Any

import httpx

from artifacts.helpers import PROXY, ArtifactServer, last_outbox_id, new_run, outbox_after

UI_UPLOAD = "/ajax-api/2.0/mlflow/upload-artifact"


def test_put_and_delete_records(artifact_server: ArtifactServer) -> None:
    with artifact_server.rest() as rest:
        run_id, root = new_run(rest)
    last = artifact_server.last_outbox_id()
    with httpx.Client(base_url=artifact_server.url, timeout=30) as http:
        assert http.put(f"{PROXY}/{root}/model/weights.bin", content=b"12345").status_code == 200
        assert http.put(f"{PROXY}/{root}/model/weights.bin", content=b"123").status_code == 200
        assert http.put(f"{PROXY}/{root}/empty", content=b"").status_code == 200
        assert http.put(f"{PROXY}/{root}/..%2fx", content=b"refused").status_code == 400
        assert http.delete(f"{PROXY}/{root}/never-there").status_code == 200  # nothing deleted
        assert http.delete(f"{PROXY}/{root}/model").status_code == 200
    run = ("run", run_id)
    assert artifact_server.outbox_after(last) == [
        {
            "entity": run,
            "op": "artifact_put",
            "payload": {"path": f"{root}/model/weights.bin", "size": 5},
        },
        {
            "entity": run,
            "op": "artifact_put",
            "payload": {"path": f"{root}/model/weights.bin", "size": 3},
        },
        {"entity": run, "op": "artifact_put", "payload": {"path": f"{root}/empty", "size": 0}},
        {
            "entity": run,
            "op": "artifact_delete",
            "payload": {"path": f"{root}/model", "size": None},
        },
    ]


def _chunks(total: int, size: int = 1024 * 1024) -> Iterator[bytes]:
    """A body sent chunked (no Content-Length)."""
    while total > 0:
        yield b"z" * min(size, total)
        total -= size


def test_ui_upload_records(artifact_server: ArtifactServer) -> None:
    """The UI's upload-artifact streams into the run's artifacts like a proxy upload (one
    record per stored file); over its 10 MB, refused mid-stream, it stores and records
    nothing and the earlier file stays."""
    with artifact_server.rest() as rest:
        run_id, root = new_run(rest)
    last = artifact_server.last_outbox_id()
    with httpx.Client(base_url=artifact_server.url, timeout=60) as http:

        def upload(path: str, content: Any) -> int:
            params = {"run_uuid": run_id, "path": path}
            return http.post(UI_UPLOAD, params=params, content=content).status_code

        assert upload("eval/table.json", b'{"rows": 1}') == 200
        assert upload("eval/big.bin", _chunks(3 * 1024 * 1024)) == 200
        assert upload("eval/table.json", _chunks(10 * 1024 * 1024 + 1)) == 400
        assert upload("eval/../x", b"refused") == 400
        assert http.get(f"{PROXY}/{root}/eval/table.json").content == b'{"rows": 1}'
        assert len(http.get(f"{PROXY}/{root}/eval/big.bin").content) == 3 * 1024 * 1024
    run = ("run", run_id)
    assert artifact_server.outbox_after(last) == [
        {
            "entity": run,
            "op": "artifact_put",
            "payload": {"path": f"{root}/eval/table.json", "size": 11},
        },
        {
            "entity": run,
            "op": "artifact_put",
            "payload": {"path": f"{root}/eval/big.bin", "size": 3 * 1024 * 1024},
        },
    ]


def _entities(url: str, backend_uri: str) -> list[dict[str, Any]]:
    model_id = f"m-{os.urandom(16).hex()}"
    long_path = "shared/" + "x" * 80 + "/file.txt"
    last = last_outbox_id(backend_uri)
    with httpx.Client(base_url=url, timeout=30) as http:
        for path in (f"3/models/{model_id}/artifacts/MLmodel", "shared/notes.txt", long_path):
            assert http.put(f"{PROXY}/{path}", content=b"abc").status_code == 200
    rows = outbox_after(backend_uri, last)
    assert [r["entity"] for r in rows] == [
        ("logged_model", model_id),
        ("artifact", "shared/notes.txt"),
        ("artifact", hashlib.sha256(long_path.encode()).hexdigest()),
    ]
    assert rows[2]["payload"] == {"path": long_path, "size": 3}
    return rows


def test_entity_kinds(start_tether_server: Any) -> None:
    """Logged-model and other paths; on SQLite and PostgreSQL (entity ids fit the column)."""
    server = start_tether_server()
    _entities(server.url, server.backend_uri)
