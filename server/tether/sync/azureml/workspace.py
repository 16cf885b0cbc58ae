"""Where the workspace is: its https base and its ARM scope, from what the operator gave.

`--azureml-workspace` takes either the workspace's MLflow tracking URI
(`azureml://<host>/mlflow/v1.0/subscriptions/<sub>/resourceGroups/<rg>/providers/
Microsoft.MachineLearningServices/workspaces/<ws>`) or its ARM id
(`subscriptions/<sub>/resourceGroups/<rg>/workspaces/<ws>`), in which case the host comes from
ARM's `properties.mlFlowTrackingUri`. Only the host of a tracking URI is used: the paths are
built here, as azureml-mlflow does (docs/azureml-protocol.md §2.1, §2.3).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from tether.errors import invalid_parameter
from tether.sync.azureml.client import tls_trust
from tether.sync.azureml.credentials import TokenProvider
from tether.sync.azureml.errors import PermanentError, TransientError

ARM_ENDPOINT = "https://management.azure.com"
ARM_API_VERSION = "2024-10-01"
_SCOPE_RE = re.compile(
    r"subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/"
    r"(?:providers/Microsoft\.MachineLearningServices/)?workspaces/(?P<ws>[^/?#]+)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Workspace:
    base_url: str  # https://<host>, no trailing slash
    subscription: str
    resource_group: str
    name: str

    @property
    def scope(self) -> str:
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.MachineLearningServices/workspaces/{self.name}"
        )

    @property
    def mlflow_api(self) -> str:
        return f"{self.base_url}/mlflow/v2.0{self.scope}/api/2.0/mlflow"

    @property
    def history_api(self) -> str:
        return f"{self.base_url}/history/v1.0{self.scope}"


@dataclass(frozen=True)
class WorkspaceRef:
    """The parsed setting; `host_url` is None when ARM must be asked for it."""

    subscription: str
    resource_group: str
    name: str
    host_url: str | None

    @property
    def arm_path(self) -> str:
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.MachineLearningServices/workspaces/{self.name}"
        )


def parse_workspace_setting(value: str) -> WorkspaceRef:
    value = value.strip()
    match = _SCOPE_RE.search(value)
    if match is None:
        raise invalid_parameter(
            "--azureml-workspace must be the workspace's azureml:// tracking URI or "
            "subscriptions/<sub>/resourceGroups/<rg>/workspaces/<name>"
        )
    host_url = None
    if value.startswith("azureml://"):
        host_url = f"https://{urlsplit(value).netloc}"
    elif "://" in value:
        raise invalid_parameter(f"Unsupported workspace URI scheme in {value!r}")
    return WorkspaceRef(match["sub"], match["rg"], match["ws"], host_url)


def resolve_workspace(
    ref: WorkspaceRef,
    *,
    endpoint_override: str | None,
    tokens: TokenProvider,
    arm_endpoint: str = ARM_ENDPOINT,
    http: httpx.Client | None = None,
) -> Workspace:
    """The workspace with its https base: the override, the URI's host, or ARM discovery."""
    base = endpoint_override or ref.host_url
    if base is None:
        if http is not None:
            base = _discover_host(ref, tokens, arm_endpoint, http)
        else:
            # Same trust rules as the workspace client; closed so reconnect loops leak nothing.
            with httpx.Client(timeout=30, trust_env=False, verify=tls_trust()) as own:
                base = _discover_host(ref, tokens, arm_endpoint, own)
    return Workspace(base.rstrip("/"), ref.subscription, ref.resource_group, ref.name)


def _discover_host(
    ref: WorkspaceRef, tokens: TokenProvider, arm_endpoint: str, http: httpx.Client
) -> str:
    url = f"{arm_endpoint.rstrip('/')}{ref.arm_path}"
    try:
        response = http.get(
            url,
            params={"api-version": ARM_API_VERSION},
            headers={"Authorization": f"Bearer {tokens.token()}"},
        )
    except httpx.TransportError as exc:
        raise TransientError(f"ARM discovery of the workspace failed: {exc}") from exc
    if response.status_code in (401, 403, 404):
        raise PermanentError(
            f"ARM answered {response.status_code} for {ref.arm_path}: check the workspace id "
            "and that the identity has Microsoft.MachineLearningServices/workspaces/read",
            status=response.status_code,
        )
    if response.status_code != 200:
        raise TransientError(
            f"ARM answered {response.status_code} for {ref.arm_path}", status=response.status_code
        )
    tracking_uri = response.json().get("properties", {}).get("mlFlowTrackingUri")
    if not tracking_uri:
        raise PermanentError(f"ARM returned no properties.mlFlowTrackingUri for {ref.arm_path}")
    return f"https://{urlsplit(tracking_uri).netloc}"
