"""ARM calls for managed online endpoints (docs/azureml-deploy.md, "D§n").

Everything goes through the sync package's `AzureMLClient`: bearer tokens refreshed on 401,
429/503 retried with `Retry-After`, no blind resend of an ambiguous write (PUT and DELETE are
idempotent in ARM, so they are retried). Long-running operations (D§2) are not waited for
here: `put` returns the `Azure-AsyncOperation` URL, `delete` and `patch` the `Location` URL, and the
driver polls them one request per step, so no lease is held through a sleep.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tether.sync.azureml.client import AzureMLClient, parse_retry_after
from tether.sync.azureml.errors import PermanentError
from tether.sync.azureml.workspace import WorkspaceRef

API_VERSION = "2025-12-01"  # azure-ai-ml 1.35.2's default (D§1)
MANAGED_TAG = "tether.managed"  # on everything Tether creates; it touches nothing else
REQUEST_TAG = "tether.deployment"  # the deployment row id that created the resource
TERMINAL = {"succeeded", "failed", "canceled"}


@dataclass(frozen=True)
class Poll:
    """One look at a long-running operation."""

    done: bool
    failed: bool = False
    error: str | None = None
    retry_after: float | None = None


class OnlineArm:
    def __init__(self, client: AzureMLClient, arm_endpoint: str, ref: WorkspaceRef) -> None:
        self.client = client
        self.ref = ref
        self.base = arm_endpoint.rstrip("/") + ref.arm_path

    def model_id(self, name: str, version: str) -> str:
        """The ARM id of an Azure model version (D§1: what a no-code deployment references)."""
        return f"{self.ref.arm_path}/models/{name}/versions/{version}"

    def _url(self, tail: str) -> str:
        return f"{self.base}{tail}"

    def workspace_location(self) -> str:
        body = self.client.call("GET", self.base, params=_params(), idempotent=True)
        return str(body["location"])

    def get(self, tail: str) -> dict[str, Any] | None:
        """A resource, or None when ARM answers 404."""
        try:
            body = self.client.call("GET", self._url(tail), params=_params(), idempotent=True)
        except PermanentError as exc:
            if exc.status == 404:
                return None
            raise
        return body if isinstance(body, dict) else None

    def put(self, tail: str, body: dict[str, Any]) -> str | None:
        """PUT a resource; the operation's Azure-AsyncOperation URL (None: done at once)."""
        response = self.client.exchange(
            "PUT", self._url(tail), json=body, params=_params(), idempotent=True
        )
        url: str | None = response.headers.get("Azure-AsyncOperation")
        return url

    def delete(self, tail: str) -> str | None:
        """DELETE a resource; the Location URL to poll, None when gone already (404, 200)."""
        try:
            response = self.client.exchange(
                "DELETE", self._url(tail), params=_params(), idempotent=True
            )
        except PermanentError as exc:
            if exc.status == 404:
                return None
            raise
        return response.headers.get("Location") if response.status_code == 202 else None

    def patch(self, tail: str, body: dict[str, Any]) -> str | None:
        """PATCH a resource (D§1: tags, identity, sku); the Location URL to poll when ARM
        answers 202, None when it is done at once (200)."""
        response = self.client.exchange(
            "PATCH", self._url(tail), json=body, params=_params(), idempotent=True
        )
        return response.headers.get("Location") if response.status_code == 202 else None

    def post(self, tail: str, body: dict[str, Any] | None = None) -> Any:
        return self.client.call(
            "POST", self._url(tail), json=body, params=_params(), idempotent=True
        )

    def operation(self, url: str) -> Poll:
        """Azure-AsyncOperation: `status` InProgress | Succeeded | Failed | Canceled (D§2)."""
        response = self.client.exchange("GET", url, idempotent=True)
        body = response.json() if response.content else {}
        status = str(body.get("status", "")).lower()
        if status not in TERMINAL:
            return Poll(False, retry_after=parse_retry_after(response.headers.get("Retry-After")))
        if status == "succeeded":
            return Poll(True)
        error = body.get("error") or {}
        text = f"{error.get('code', status)}: {error.get('message', '')}".strip()
        return Poll(True, failed=True, error=text)

    def location(self, url: str) -> Poll:
        """Location polling: 202 = running, any other 2xx = done (D§2, azure-core)."""
        try:
            response = self.client.exchange("GET", url, idempotent=True)
        except PermanentError as exc:
            return Poll(True, failed=True, error=exc.reason)
        if response.status_code == 202:
            return Poll(False, retry_after=parse_retry_after(response.headers.get("Retry-After")))
        return Poll(True)


def _params() -> dict[str, Any]:
    return {"api-version": API_VERSION}
