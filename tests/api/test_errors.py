"""The last-resort error path: an unexpected exception answers MLflow's INTERNAL_ERROR body,
and the client's keep-alive connection stays usable for its next request."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from support import free_port
from tether.app import create_app
from tether.config import Settings


@pytest.fixture
def failing_app_url(tmp_path: Path) -> Iterator[str]:
    app: FastAPI = create_app(Settings(data_dir=tmp_path))

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("simulated bug")

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)


def test_unexpected_error_is_mlflow_shaped_and_keeps_the_connection(
    failing_app_url: str,
) -> None:
    with httpx.Client(base_url=failing_app_url, timeout=60, trust_env=False) as client:
        failed = client.get("/boom")
        assert failed.status_code == 500
        assert failed.json() == {
            "error_code": "INTERNAL_ERROR",
            "message": "Internal error: RuntimeError",
        }
        # Same pooled connection: must not be reset by the server.
        after = client.get("/api/2.0/mlflow/experiments/get", params={"experiment_id": "0"})
        assert after.status_code == 200
        assert after.json()["experiment"]["name"] == "Default"


def test_unknown_endpoint_and_method_are_mlflow_errors(failing_app_url: str) -> None:
    with httpx.Client(base_url=failing_app_url, timeout=60, trust_env=False) as client:
        missing = client.get("/api/2.0/mlflow/no-such-endpoint")
        assert missing.status_code == 404
        assert missing.json()["error_code"] == "ENDPOINT_NOT_FOUND"
        wrong_method = client.get("/api/2.0/mlflow/runs/log-batch")
        assert wrong_method.status_code == 405
        assert wrong_method.json()["error_code"] == "BAD_REQUEST"


def test_nul_characters_are_refused_on_every_backend(failing_app_url: str) -> None:
    with httpx.Client(base_url=failing_app_url, timeout=60, trust_env=False) as client:
        response = client.post("/api/2.0/mlflow/experiments/create", json={"name": "a\x00b"})
        assert response.status_code == 400
        assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        assert "NUL" in response.json()["message"]
        listed = client.post("/api/2.0/mlflow/experiments/search", json={"max_results": 100})
        assert all("\x00" not in e["name"] for e in listed.json()["experiments"])
