"""A thin MLflow REST client over httpx, usable against Tether and the reference server alike."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

API_PREFIX = "/api/2.0/mlflow"
AJAX_PREFIX = "/ajax-api/2.0/mlflow"
WORKSPACE_HEADER = "X-MLFLOW-WORKSPACE"


@dataclass
class RestResponse:
    """`status` and decoded `json` (None when the body is not JSON); unpacks as (status, json)."""

    status: int
    json: Any
    text: str
    headers: httpx.Headers = field(repr=False)

    def __iter__(self) -> Iterator[Any]:
        yield self.status
        yield self.json

    @property
    def error_code(self) -> str | None:
        if isinstance(self.json, dict):
            code = self.json.get("error_code")
            return code if isinstance(code, str) else None
        return None


class MlflowRest:
    """`get("experiments/get", {"experiment_id": "0"})` -> RestResponse.

    Paths without a leading "/" are relative to `prefix` (/api/2.0/mlflow by default); paths
    with one are taken from the server root (e.g. "/health", "/ajax-api/2.0/mlflow/...").
    Nothing is raised for error statuses: tests compare them.
    """

    def __init__(
        self,
        base_url: str,
        *,
        prefix: str = API_PREFIX,
        timeout: float = 60.0,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.prefix = prefix.rstrip("/")
        self.headers = dict(headers or {})
        self.client = httpx.Client(
            base_url=self.base_url, timeout=timeout, trust_env=False, headers=self.headers
        )

    def url(self, path: str) -> str:
        if path.startswith("/"):
            return path
        return f"{self.prefix}/{path}"

    def request(self, method: str, path: str, **kwargs: Any) -> RestResponse:
        response = self.client.request(method, self.url(path), **kwargs)
        return self._wrap(response)

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> RestResponse:
        return self.request("GET", path, params=params)

    def post(self, path: str, json: Any = None) -> RestResponse:
        return self.request("POST", path, json=json if json is not None else {})

    def patch(self, path: str, json: Any = None) -> RestResponse:
        return self.request("PATCH", path, json=json if json is not None else {})

    def delete(self, path: str, json: Any = None) -> RestResponse:
        return self.request("DELETE", path, json=json)

    def with_prefix(self, prefix: str) -> MlflowRest:
        return MlflowRest(self.base_url, prefix=prefix, headers=self.headers)

    def in_workspace(self, workspace: str) -> MlflowRest:
        """A client sending `X-MLFLOW-WORKSPACE: <workspace>` (MLflow 3.17's workspaces)."""
        return MlflowRest(
            self.base_url, prefix=self.prefix, headers={**self.headers, WORKSPACE_HEADER: workspace}
        )

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> MlflowRest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _wrap(response: httpx.Response) -> RestResponse:
        try:
            body: Any = response.json()
        except ValueError:
            body = None
        return RestResponse(response.status_code, body, response.text, response.headers)
