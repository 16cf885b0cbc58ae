"""Run-history artifact endpoints (docs/azureml-protocol.md §5.2): records and their SAS URLs.

`batch/metadata` creates the records of up to 100 paths (we send at most 50) and returns a
write SAS per path; for a path that already has a record it returns the same record with a
fresh SAS [INF], so it is sent as idempotent. `contentinfo` gives a read SAS of one path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from tether.sync.azureml.client import AzureMLClient
from tether.sync.azureml.errors import PermanentError
from tether.sync.azureml.workspace import Workspace

MAX_PATHS_PER_BATCH = 50  # Azure allows 100 (docs/azureml-protocol.md §4.2); azureml-mlflow 50


@dataclass
class Grant:
    """What `batch/metadata` answered: a write SAS per path, or Azure's refusal of it."""

    urls: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


class RunHistory:
    def __init__(self, client: AzureMLClient, workspace: Workspace) -> None:
        self.client = client
        self.workspace = workspace

    def _base(self, experiment_id: str, run_id: str) -> str:
        return (
            f"{self.workspace.history_api}/experimentids/{quote(experiment_id, safe='')}"
            f"/runs/{quote(run_id, safe='')}/artifacts"
        )

    def batch_metadata(self, experiment_id: str, run_id: str, paths: list[str]) -> Grant:
        if not 0 < len(paths) <= MAX_PATHS_PER_BATCH:
            raise ValueError(f"1 to {MAX_PATHS_PER_BATCH} paths per batch, got {len(paths)}")
        body = {"paths": [{"path": p} for p in paths]}
        url = f"{self._base(experiment_id, run_id)}/batch/metadata"
        answer: dict[str, Any] = self.client.call("POST", url, json=body, idempotent=True) or {}
        grant = Grant()
        for path, info in (answer.get("artifactContentInformation") or {}).items():
            if isinstance(info, dict) and info.get("contentUri"):
                grant.urls[path] = str(info["contentUri"])
        for path, error in (answer.get("errors") or {}).items():
            grant.errors[path] = _message(error)
        return grant

    def read_url(self, experiment_id: str, run_id: str, path: str) -> str | None:
        """A read SAS of `path`, or None when the run has no such artifact record."""
        url = f"{self._base(experiment_id, run_id)}/contentinfo"
        try:
            answer = self.client.call("GET", url, params={"path": path}, idempotent=True)
        except PermanentError as exc:
            if exc.status == 404:
                return None
            raise
        uri = answer.get("contentUri") if isinstance(answer, dict) else None
        return str(uri) if uri else None


def _message(error: Any) -> str:
    if isinstance(error, dict):
        nested = error.get("error")
        inner: dict[str, Any] = nested if isinstance(nested, dict) else error
        return str(inner.get("message") or inner.get("code") or error)[:500]
    return str(error)[:500]
