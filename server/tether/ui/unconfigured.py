"""What the UI asks of `mlflow server` features Tether does not have, answered as
`mlflow server` 3.17.2 answers when they are not set up, so the UI shows its empty states
rather than errors:

- `GET /ajax-api/3.0/mlflow/assistant/config` and `.../assistant/providers`: the AI assistant
  panel. MLflow runs a coding-agent CLI (Claude Code, Codex) or an LLM endpoint on the server
  host; Tether runs none, so it offers no provider and no configuration. The UI then shows
  the assistant as not set up, as it does when these calls fail (its other routes, sending
  messages, are not served: 404).
- `GET|POST /ajax-api/2.0/mlflow/gateway-proxy`: the prompt lab's AI gateway. Without
  `MLFLOW_DEPLOYMENTS_TARGET` MLflow "pretends an empty gateway service is running" and
  answers `{"endpoints": []}` whatever is asked; Tether has no gateway to proxy to.
- `GET|POST /ajax-api/3.0/mlflow/ui-telemetry`: MLflow's usage telemetry of the UI. With
  telemetry disabled (`MLFLOW_DISABLE_TELEMETRY`, `DO_NOT_TRACK`, CI) MLflow answers the
  disabled configuration and drops what the UI posts, unread; Tether never sends telemetry,
  so it always answers that way.
- `GET /ajax-api/3.0/mlflow/mcp-servers`: the MCP server registry page's search. Tether keeps
  no MCP registry, so it finds none, as a fresh `mlflow server` does (whatever the filter);
  creating one is not served (404).

All are ajax-api only in MLflow, so left out of the OpenAPI document like its other UI routes.
With authentication on, each needs a signed-in caller and nothing more, as in MLflow (none
carries data of a resource).
"""

from __future__ import annotations

from typing import Any

from typing_extensions import TypedDict

from tether.api.access import SIGNED_IN
from tether.api.routing import Router

_AJAX_2 = ("/ajax-api/2.0/mlflow",)
_AJAX_3 = ("/ajax-api/3.0/mlflow",)

api = Router("ui")


class AssistantConfig(TypedDict):
    providers: dict[str, Any]
    projects: dict[str, Any]
    remote_access_allowed: bool


class AssistantProviders(TypedDict):
    providers: list[dict[str, Any]]
    resolved: dict[str, Any] | None
    gateway_vendor_options: dict[str, list[str]]


class GatewayEndpoints(TypedDict):
    endpoints: list[dict[str, Any]]


class McpServers(TypedDict):
    mcp_servers: list[dict[str, Any]]
    next_page_token: str | None


class UiTelemetryConfig(TypedDict):
    disable_ui_telemetry: bool
    disable_ui_events: list[str]
    ui_rollout_percentage: int


class UiTelemetryStatus(TypedDict):
    status: str


@api.get("/assistant/config", prefixes=_AJAX_3, documented=False, access=SIGNED_IN)
async def assistant_config() -> AssistantConfig:
    return {"providers": {}, "projects": {}, "remote_access_allowed": False}


@api.get("/assistant/providers", prefixes=_AJAX_3, documented=False, access=SIGNED_IN)
async def assistant_providers() -> AssistantProviders:
    return {"providers": [], "resolved": None, "gateway_vendor_options": {}}


@api.route("/gateway-proxy", ["GET", "POST"], prefixes=_AJAX_2, documented=False, access=SIGNED_IN)
async def gateway_proxy() -> GatewayEndpoints:
    return {"endpoints": []}


@api.get("/ui-telemetry", prefixes=_AJAX_3, documented=False, access=SIGNED_IN)
async def ui_telemetry_config() -> UiTelemetryConfig:
    # MLflow's FALLBACK_UI_CONFIG, its answer whenever telemetry is disabled.
    return {"disable_ui_telemetry": True, "disable_ui_events": [], "ui_rollout_percentage": 0}


@api.post("/ui-telemetry", prefixes=_AJAX_3, documented=False, access=SIGNED_IN)
async def ui_telemetry_records() -> UiTelemetryStatus:
    # "disabled" tells the UI to stop sending records; the body is never read.
    return {"status": "disabled"}


@api.get("/mcp-servers", prefixes=_AJAX_3, documented=False, access=SIGNED_IN)
async def mcp_servers() -> McpServers:
    return {"mcp_servers": [], "next_page_token": None}
