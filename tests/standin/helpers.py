"""Helpers for the stand-in's own tests: an authenticated client and small factories."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from standin.workspace import AzuremlWorkspace


def unique(prefix: str = "exp") -> str:
    """A name valid under Azure's experiment-name rule (letters, digits, '-', '_')."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


class AzClient:
    """httpx on the stand-in's https base with a bearer token; MLflow paths are relative."""

    def __init__(self, workspace: AzuremlWorkspace, token: str, version: str = "v2.0") -> None:
        self.workspace = workspace
        self.http = workspace.client(token)
        self.api = workspace.mlflow_api(version)
        self.history = workspace.history_api()

    def post(self, endpoint: str, body: Any = None) -> httpx.Response:
        return self.http.post(f"{self.api}/{endpoint}", json=body if body is not None else {})

    def get(self, endpoint: str, params: dict[str, Any] | None = None) -> httpx.Response:
        return self.http.get(f"{self.api}/{endpoint}", params=params)

    def ok(self, method: str, endpoint: str, body: Any = None) -> Any:
        response = self.post(endpoint, body) if method == "POST" else self.get(endpoint, body)
        assert response.status_code == 200, (endpoint, response.status_code, response.text)
        return response.json()

    def experiment(self, name: str | None = None) -> str:
        return str(
            self.ok("POST", "experiments/create", {"name": name or unique()})["experiment_id"]
        )

    def run(self, experiment_id: str | None = None, **fields: Any) -> dict[str, Any]:
        body = {"experiment_id": experiment_id or self.experiment(), **fields}
        run: dict[str, Any] = self.ok("POST", "runs/create", body)["run"]
        return run

    def artifacts_url(self, run: dict[str, Any], tail: str = "", kind: str = "experiments") -> str:
        info = run["info"]
        return (
            f"{self.history}/{kind}/{info['experiment_id']}/runs/{info['run_id']}/artifacts{tail}"
        )

    def close(self) -> None:
        self.http.close()
