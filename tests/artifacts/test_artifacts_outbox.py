"""Sync outbox: each durable artifact write or delete appends one row, after the bytes landed;
refused or no-op requests append nothing."""

from __future__ import annotations

import hashlib
import os
from typing import Any

import httpx

from artifacts.helpers import PROXY, ArtifactServer, last_outbox_id, new_run, outbox_after


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
