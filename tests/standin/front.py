"""A stand-in Azure ML workspace: real MLflow behind an Azure-shaped front.

§n below: sections of docs/azureml-protocol.md (the stand-in itself: §8).

Routes (scope = /subscriptions/<sub>/resourceGroups/<rg>/providers/
Microsoft.MachineLearningServices/workspaces/<ws>, matched case-insensitively):

- `/mlflow/v1.0|v2.0/<scope>/api/2.0/mlflow/...` -> forwarded to the inner `mlflow server`
  (the real MLflow semantics are the base), with the quirks of quirks.py applied (§2.1, §4);
- `/mlflow/v2.0/<scope>/api/2.0/preview/mlflow/runs/log-batch-async|get-run-data-status`
  (Azure-only asynchronous logging, §2.2/§4.1);
- `/history/v1.0/<scope>/experiments|experimentids/<exp>/runs/<run>/artifacts[...]`
  (`batch/metadata`, listing, `path`, `contentinfo`, `metadata`; §5.2) and
  `/artifact/v2.0/<scope>/artifacts/<origin>/<container>/batch/metadata` (LocalUpload, §5.3);
- `GET /<scope>?api-version=...` -> the ARM workspace resource with
  `properties.mlFlowTrackingUri` (§2.3);
- everything else -> 404 with an empty body (§7.2).

All of those need `Authorization: Bearer <token from the identity stand-in>` (§3); 401 bodies
follow each family's error shape. Control API (no auth): see `Standin.control`.

Run: `python -m standin.front <config.json>` (see workspace.py, which does this).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from azure.core.exceptions import ResourceExistsError
from azure.storage.blob import BlobServiceClient, ContainerClient
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from standin import errors
from standin.artifacts import (
    RUN_ORIGIN,
    ArtifactIndex,
    BlobAccount,
    page,
    path_problem,
    run_container,
)
from standin.faults import FaultPlan, FaultRule
from standin.online import OnlineEndpoints
from standin.quirks import (
    EXPERIMENT_NAME_MESSAGE,
    Quirks,
    experiment_name_ok,
    model_source_ok,
    new_keys,
    search_restriction,
)
from standin.serving import Listener, Receive, Scope, Send, drop_connection, serve
from standin.tokens import ARM_AUDIENCES, DEFAULT_TENANT, TokenError, verify_token

SCOPE_RE = (
    r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/"
    r"Microsoft\.MachineLearningServices/workspaces/(?P<ws>[^/]+)"
)
FAMILIES = (
    ("mlflow", re.compile(rf"^/mlflow/v(?P<ver>[12])\.0{SCOPE_RE}(?P<rest>/.*)?$", re.I)),
    ("history", re.compile(rf"^/history/v1\.0{SCOPE_RE}(?P<rest>/.*)?$", re.I)),
    ("artifact", re.compile(rf"^/artifact/v2\.0{SCOPE_RE}(?P<rest>/.*)?$", re.I)),
    ("arm", re.compile(rf"^{SCOPE_RE}(?P<rest>/.*)?$", re.I)),
    (  # long-running operations of online endpoints (online.py, azureml-deploy.md §2)
        "armop",
        re.compile(
            r"^/subscriptions/(?P<sub>[^/]+)/providers/Microsoft\.MachineLearningServices/"
            r"locations/(?P<loc>[^/]+)/(?P<kind>mfeOperationsStatus|mfeOperationResults)/"
            r"(?P<op>[^/]+)$",
            re.I,
        ),
    ),
)
HISTORY_ARTIFACTS_RE = re.compile(
    r"^/(?P<kind>experiments|experimentids)/(?P<exp>[^/]+)/runs/(?P<run>[^/]+)/artifacts"
    r"(?P<tail>/.*)?$",
    re.I,
)
ARTIFACT_V2_BATCH_RE = re.compile(
    r"^/artifacts/(?P<origin>[^/]+)/(?P<container>[^/]+)/batch/metadata$"
)
MLFLOW_PREFIX = "/api/2.0/mlflow/"
PREVIEW_PREFIX = "/api/2.0/preview/mlflow/"
PENDING = "PENDING_REGISTRATION"
LOGGED_BODY_LIMIT = 64 * 1024
REQUEST_LOG_LIMIT = 200_000


@dataclass
class StandinConfig:
    tls_port: int
    http_port: int
    certfile: str | None
    keyfile: str | None
    mlflow_url: str
    blob_endpoint: str
    account_name: str
    account_key: str
    subscription: str
    resource_group: str
    workspace: str
    workspace_id: str
    token_secret: str
    placeholder_root: str
    location: str = "standin"
    tenant_id: str = DEFAULT_TENANT
    quirks: dict[str, Any] = field(default_factory=dict)

    @property
    def netloc(self) -> str:
        return f"127.0.0.1:{self.tls_port}"

    @property
    def scope(self) -> str:
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.MachineLearningServices/workspaces/{self.workspace}"
        )

    @property
    def container(self) -> str:
        return f"{self.workspace_id}-azureml"


class Standin:
    def __init__(self, config: StandinConfig) -> None:
        self.config = config
        self.quirks = self._initial_quirks()
        self.faults = FaultPlan()
        self.log: list[dict[str, Any]] = []
        self._seq = 0
        self.index = ArtifactIndex(
            BlobAccount(
                config.blob_endpoint, config.account_name, config.account_key, config.container
            )
        )
        self.pending: dict[tuple[str, str], dict[str, float]] = {}
        self.async_batches: dict[str, tuple[str, float]] = {}
        self._client: httpx.AsyncClient | None = None
        self._container_ready = False
        self._container_lock = asyncio.Lock()
        self.online = OnlineEndpoints(self)

    def _initial_quirks(self) -> Quirks:
        quirks = Quirks()
        quirks.update(self.config.quirks)
        return quirks

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                base_url=self.config.mlflow_url, timeout=120.0, trust_env=False
            )
        return self._client

    # ------------------------------------------------------------------------------ ASGI

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        path: str = scope["path"]
        if path == "/health":
            response = await self.health()
        elif path.startswith(STORAGE_PREFIX):
            await self.storage(request, scope, receive, send)
            return
        elif path.startswith(INFERENCE_PREFIX):  # scoring URIs (online.py): endpoint keys
            endpoint = path[len(INFERENCE_PREFIX) :].split("/", 1)[0]
            response = await self.online.score(request, endpoint)
        elif path.startswith("/_standin/"):
            try:
                response = await self.control(request)
            except (ValueError, TypeError, re.error) as exc:
                response = errors.json_response({"error": str(exc)}, 400)
        else:
            await self.azure(request, scope, receive, send)
            return
        await response(scope, receive, send)

    async def health(self) -> Response:
        try:
            backend = await self.client.get("/health", timeout=5.0)
        except httpx.HTTPError as exc:
            return PlainTextResponse(f"mlflow backend unreachable: {exc!r}", 503)
        if backend.status_code != 200:
            return PlainTextResponse(f"mlflow backend answered {backend.status_code}", 503)
        return PlainTextResponse("OK")

    def _log_request(self, method: str, path: str, query: str, **fields: Any) -> dict[str, Any]:
        """A new entry of the request log (`GET /_standin/requests`), which keeps the last
        REQUEST_LOG_LIMIT; the caller fills in status, auth, fault as the request goes."""
        self._seq += 1
        entry: dict[str, Any] = {
            "seq": self._seq,
            "time": time.time(),
            "method": method,
            "path": path,
            "query": query,
            "family": None,
            "status": None,
            "auth": None,
            "fault": None,
            "dropped": False,
            "json": None,
            "counts": None,
            "done": None,
            **fields,
        }
        self.log.append(entry)
        if len(self.log) > REQUEST_LOG_LIMIT:
            del self.log[: len(self.log) - REQUEST_LOG_LIMIT]
        return entry

    async def azure(self, request: Request, scope: Scope, receive: Receive, send: Send) -> None:
        method = request.method.upper()
        path: str = scope["path"]
        body = await request.body()
        query = scope.get("query_string", b"").decode("latin-1")
        logged = _small_json(body) if self.quirks.log_request_bodies else None
        entry = self._log_request(method, path, query, json=logged, counts=_counts(path, body))
        if self.quirks.latency_ms > 0:  # a round trip's worth, before anything else
            await asyncio.sleep(self.quirks.latency_ms / 1000)

        family, match = _classify(path)
        entry["family"] = family
        if family is None or match is None:
            response: Response = errors.empty_404()
        else:
            refused = self.authenticate(request, family, method, path, entry)
            if refused is not None:
                response = refused
            else:
                rule = self.faults.take(method, path)
                if rule is not None:
                    entry["fault"] = (
                        rule.action if rule.action != "status" else f"status:{rule.status}"
                    )
                if rule is not None and rule.action == "drop":
                    entry["dropped"] = await drop_connection(scope)
                    return
                if rule is not None and rule.action == "status":
                    response = self.fault_response(rule, family)
                else:
                    if rule is not None and rule.action == "delay":
                        await asyncio.sleep(rule.seconds)
                    response = await self.dispatch(family, match, request, body)
                    if rule is not None and rule.action == "lost_response":
                        entry["status"] = response.status_code
                        entry["done"] = time.time()
                        entry["dropped"] = await drop_connection(scope)
                        return
        entry["status"] = response.status_code
        entry["done"] = time.time()  # the request's effect is in the workspace from here on
        await response(scope, receive, send)

    # ------------------------------------------------------------------------------ auth

    def authenticate(
        self, request: Request, family: str, method: str, path: str, entry: dict[str, Any]
    ) -> Response | None:
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("bearer ") or not header[7:].strip():
            entry["auth"] = "missing"
            return self.unauthorized(
                family,
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is missing.",
            )
        try:
            claims = verify_token(
                header[7:].strip(), self.config.token_secret, audiences=ARM_AUDIENCES
            )
        except TokenError as exc:
            entry["auth"] = exc.reason
            code = (
                "ExpiredAuthenticationToken"
                if exc.reason == TokenError.EXPIRED
                else "InvalidAuthenticationToken"
            )
            return self.unauthorized(family, code, exc.message)
        revoked = self.faults.rejects_token(method, path, claims.issued_at)
        if revoked is not None:
            entry["auth"] = "rejected"
            entry["fault"] = "reject_tokens"
            return self.unauthorized(
                family,
                "ExpiredAuthenticationToken",
                f"The access token issued at {claims.issued_at:.3f} is no longer accepted "
                f"(tokens issued before {revoked.issued_before:.3f} are refused).",
            )
        entry["auth"] = "ok"
        return None

    def unauthorized(self, family: str, code: str, message: str) -> Response:
        description = message.replace('"', "'")
        headers = {
            "WWW-Authenticate": (
                "Bearer authorization_uri="
                f'"https://login.microsoftonline.com/{self.config.tenant_id}", '
                f'error="invalid_token", error_description="{description}"'
            )
        }
        location = self.config.location
        if family in ("arm", "armop"):
            return errors.arm_error(401, code, message, headers)
        if family == "mlflow":
            return errors.mlflow_error(
                401, "UNAUTHENTICATED", message, location=location, azure_code=code, headers=headers
            )
        return errors.history_error(401, code, message, location=location, headers=headers)

    # ----------------------------------------------------------------------------- faults

    def fault_response(self, rule: FaultRule, family: str) -> Response:
        headers = {"Retry-After": rule.retry_after} if rule.retry_after is not None else None
        if rule.body is not None:
            if isinstance(rule.body, str):
                return Response(rule.body, status_code=rule.status, headers=headers)
            return errors.json_response(rule.body, rule.status, headers)
        status = rule.status
        if status == 429:
            code, mlflow_code = "TooManyRequests", "REQUEST_LIMIT_EXCEEDED"
            message = "Rate limit exceeded: too many requests for this workspace (injected)."
        elif status == 503:
            code, mlflow_code = "ServiceUnavailable", "TEMPORARILY_UNAVAILABLE"
            message = "The service is temporarily unavailable (injected)."
        elif status == 504:
            code, mlflow_code = "GatewayTimeout", "INTERNAL_ERROR"
            message = "The gateway timed out waiting for the service (injected)."
        else:
            code, mlflow_code = "SystemError", "INTERNAL_ERROR"
            message = f"Injected failure with status {status}."
        location = self.config.location
        if family in ("arm", "armop"):
            return errors.arm_error(status, code, message, headers)
        if family == "mlflow":
            return errors.mlflow_error(
                status, mlflow_code, message, location=location, azure_code=code, headers=headers
            )
        return errors.history_error(status, code, message, location=location, headers=headers)

    # --------------------------------------------------------------------------- dispatch

    async def dispatch(
        self, family: str, match: re.Match[str], request: Request, body: bytes
    ) -> Response:
        if family == "armop":
            if match["sub"].lower() != self.config.subscription.lower():
                return errors.arm_error(404, "SubscriptionNotFound", "Unknown subscription.")
            return self.online.operation(match["kind"], match["op"])
        if not self._own_scope(match):
            return self.not_this_workspace(family, match)
        rest = match["rest"] or ""
        if family == "arm" and rest.lower().startswith("/onlineendpoints"):
            return await self.online.arm(request, rest, body)
        if family == "arm":
            return self.arm(request, rest)
        if family == "history":
            return await self.history(request, rest, body)
        if family == "artifact":
            return await self.artifact_v2(request, rest, body)
        return await self.mlflow(request, rest, body)

    def _own_scope(self, match: re.Match[str]) -> bool:
        config = self.config
        return (
            match["sub"].lower() == config.subscription.lower()
            and match["rg"].lower() == config.resource_group.lower()
            and match["ws"].lower() == config.workspace.lower()
        )

    def not_this_workspace(self, family: str, match: re.Match[str]) -> Response:
        config = self.config
        if family == "arm":
            if match["sub"].lower() != config.subscription.lower():
                return errors.arm_error(
                    404,
                    "SubscriptionNotFound",
                    f"The subscription '{match['sub']}' could not be found.",
                )
            if match["rg"].lower() != config.resource_group.lower():
                return errors.arm_error(
                    404,
                    "ResourceGroupNotFound",
                    f"Resource group '{match['rg']}' could not be found.",
                )
            return errors.arm_error(
                404,
                "ResourceNotFound",
                f"The Resource 'Microsoft.MachineLearningServices/workspaces/{match['ws']}' under "
                f"resource group '{match['rg']}' was not found. For more details please go to "
                "https://aka.ms/ARMResourceNotFoundFix",
            )
        message = f"Workspace {match['sub']}/{match['rg']}/{match['ws']} not found."
        if family == "mlflow":
            return errors.mlflow_error(
                404, "RESOURCE_DOES_NOT_EXIST", message, location=config.location
            )
        return errors.history_error(
            404, "UserError", message, location=config.location, inner="NotFound"
        )

    # -------------------------------------------------------------------------------- ARM

    def arm(self, request: Request, rest: str) -> Response:
        if rest not in ("", "/"):
            return errors.arm_error(
                404, "NotFound", f"This stand-in does not model {rest!r} under the workspace."
            )
        if request.method.upper() != "GET":
            return errors.arm_error(
                405, "MethodNotAllowed", "Only GET of the workspace is modelled."
            )
        if not request.query_params.get("api-version"):
            return errors.arm_error(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            )
        config = self.config
        host = config.netloc
        return errors.json_response(
            {
                "id": config.scope,
                "name": config.workspace,
                "type": "Microsoft.MachineLearningServices/workspaces",
                "location": config.location,
                "kind": "Default",
                "sku": {"name": "Basic", "tier": "Basic"},
                "identity": {"type": "SystemAssigned", "tenantId": config.tenant_id},
                "properties": {
                    "friendlyName": config.workspace,
                    "workspaceId": config.workspace_id,
                    "provisioningState": "Succeeded",
                    "discoveryUrl": f"https://{host}/discovery",
                    "mlFlowTrackingUri": f"azureml://{host}/mlflow/v1.0{config.scope}",
                    "storageAccount": (
                        f"/subscriptions/{config.subscription}/resourceGroups/"
                        f"{config.resource_group}/providers/Microsoft.Storage/storageAccounts/"
                        f"{config.account_name}"
                    ),
                    "publicNetworkAccess": "Enabled",
                },
            }
        )

    # ----------------------------------------------------------------------------- MLflow

    async def mlflow(self, request: Request, rest: str, body: bytes) -> Response:
        quirks = self.quirks
        location = self.config.location
        if rest.startswith(PREVIEW_PREFIX):
            return await self.preview(request, rest[len(PREVIEW_PREFIX) :], body)
        if rest.startswith("/api/3.0/"):
            if quirks.logged_models_404:
                return errors.empty_404()
            return await self.forward(request, rest, body)
        if not rest.startswith(MLFLOW_PREFIX):
            return errors.empty_404()
        endpoint = rest[len(MLFLOW_PREFIX) :]
        method = request.method.upper()
        payload = _json_object(body) if method in ("POST", "PATCH", "DELETE") else {}
        query = request.query_params

        if endpoint.startswith("logged-models") and quirks.logged_models_404:
            return errors.empty_404()
        if endpoint.startswith("registered-models/alias") and quirks.registry_aliases_404:
            return errors.empty_404()
        if endpoint == "experiments/create" and quirks.experiment_name_charset:
            name = payload.get("name")
            if isinstance(name, str) and not experiment_name_ok(
                name, allow_slash=quirks.slash_names_unfindable
            ):
                return errors.mlflow_error(
                    400,
                    "INVALID_PARAMETER_VALUE",
                    EXPERIMENT_NAME_MESSAGE,
                    location=location,
                    azure_code="UserError",
                )
        if endpoint == "experiments/update" and quirks.no_experiment_rename:
            return errors.mlflow_error(
                400,
                "BAD_REQUEST",
                "Renaming experiments is not supported.",
                location=location,
                azure_code="UserError",
            )
        if endpoint == "experiments/get-by-name" and quirks.slash_names_unfindable:
            name = query.get("experiment_name", "")
            if "/" in name:
                return errors.mlflow_error(
                    404,
                    "RESOURCE_DOES_NOT_EXIST",
                    f"Could not find experiment with name {name}",
                    location=location,
                )
        if endpoint == "metrics/get-history" and quirks.history_max_results_below:
            raw = query.get("max_results")
            if (
                raw is not None
                and raw.lstrip("-").isdigit()
                and int(raw) >= quirks.history_max_results_below
            ):
                return errors.mlflow_error(
                    400,
                    "BAD_REQUEST",
                    f"MaxResults = {raw} is invalid: MaxResults must be less than "
                    f"{quirks.history_max_results_below}.",
                    location=location,
                )
        if endpoint == "runs/search" and quirks.search_restrictions:
            order_by = payload.get("order_by")
            problem = search_restriction(
                payload.get("filter") if isinstance(payload.get("filter"), str) else None,
                [str(o) for o in order_by] if isinstance(order_by, list) else None,
            )
            if problem is not None:
                return errors.mlflow_error(
                    400, "BAD_REQUEST", problem, location=location, azure_code="UserError"
                )
        if quirks.registry_no_rename_delete and endpoint in (
            "registered-models/rename",
            "registered-models/delete",
        ):
            verb = "renamed" if endpoint.endswith("rename") else "deleted"
            return errors.mlflow_error(
                400,
                "BAD_REQUEST",
                f"Registered models cannot be {verb} in Azure Machine Learning "
                "(delete model versions instead).",
                location=location,
                azure_code="UserError",
            )
        if endpoint == "model-versions/create" and quirks.registry_source_check:
            source = payload.get("source")
            if isinstance(source, str) and not model_source_ok(source):
                return errors.mlflow_error(
                    400,
                    "INVALID_PARAMETER_VALUE",
                    f"Unsupported model source {source!r}: use runs:/<run id>/<path> or an "
                    "azureml:// artifact location of this workspace.",
                    location=location,
                )
        limit = await self.limit_violation(endpoint, payload)
        if limit is not None:
            return limit

        response = await self.forward(request, rest, body)
        if endpoint == "model-versions/create" and response.status_code == 200:
            self._register_pending(response)
        if endpoint == "experiments/search" and quirks.slash_names_unfindable:
            self._hide_slash_experiments(response)
        count_get = endpoint == "model-versions/get"
        return self._finish(response, count_get=count_get)

    async def limit_violation(self, endpoint: str, payload: dict[str, Any]) -> Response | None:
        """§4.2: Azure's per-request and per-run limits on runs/create, set-tag, log-*."""
        quirks = self.quirks
        location = self.config.location
        metrics = _entries(payload.get("metrics")) if endpoint in _BATCH else []
        params = _entries(payload.get("params")) if endpoint in _BATCH else []
        tags = _entries(payload.get("tags")) if endpoint in (*_BATCH, "runs/create") else []
        if endpoint == "runs/set-tag":
            tags = [payload]
        if endpoint == "runs/log-parameter":
            params = [payload]
        if not (metrics or params or tags) and endpoint != "runs/create":
            return None
        if quirks.max_metrics_per_batch and len(metrics) > quirks.max_metrics_per_batch:
            return errors.size_limit_error(
                "MetricV2Dto.Value/Count",
                quirks.max_metrics_per_batch,
                len(metrics),
                location=location,
            )
        for tag in tags:
            key, value = str(tag.get("key", "")), str(tag.get("value", ""))
            if quirks.max_tag_key_length and len(key) > quirks.max_tag_key_length:
                return errors.size_limit_error(
                    "Tags.Key", quirks.max_tag_key_length, len(key), location=location
                )
            if quirks.max_tag_value_length and len(value) > quirks.max_tag_value_length:
                return errors.size_limit_error(
                    "Tags.Value", quirks.max_tag_value_length, len(value), location=location
                )
        if endpoint == "runs/create":
            keys = {str(t.get("key")) for t in tags} | {"mlflow.runName"}
            if quirks.max_tags_per_run and len(keys) > quirks.max_tags_per_run:
                return errors.size_limit_error(
                    "Tags", quirks.max_tags_per_run, len(keys), location=location
                )
            return None
        if not ((params and quirks.max_params_per_run) or (tags and quirks.max_tags_per_run)):
            return None
        run = await self._run_data(str(payload.get("run_id") or payload.get("run_uuid") or ""))
        if run is None:
            return None  # let MLflow answer for a missing run
        existing_params, existing_tags = run
        if params and quirks.max_params_per_run:
            total = len(existing_params) + new_keys(
                existing_params, [str(p.get("key")) for p in params]
            )
            if total > quirks.max_params_per_run:
                return errors.size_limit_error(
                    "Parameters", quirks.max_params_per_run, total, location=location
                )
        if tags and quirks.max_tags_per_run:
            total = len(existing_tags) + new_keys(existing_tags, [str(t.get("key")) for t in tags])
            if total > quirks.max_tags_per_run:
                return errors.size_limit_error(
                    "Tags", quirks.max_tags_per_run, total, location=location
                )
        return None

    async def _run_data(self, run_id: str) -> tuple[set[str], set[str]] | None:
        if not run_id:
            return None
        response = await self.client.get(f"{MLFLOW_PREFIX}runs/get", params={"run_id": run_id})
        if response.status_code != 200:
            return None
        data = response.json().get("run", {}).get("data", {})
        params = {str(p["key"]) for p in data.get("params", [])}
        tags = {str(t["key"]) for t in data.get("tags", [])}
        return params, tags

    async def preview(self, request: Request, endpoint: str, body: bytes) -> Response:
        """§4.1: Azure-only asynchronous logging, applied synchronously here."""
        location = self.config.location
        if endpoint == "runs/log-batch-async" and request.method.upper() == "POST":
            payload = _json_object(body)
            limit = await self.limit_violation("runs/log-batch", payload)
            if limit is not None:
                return limit
            response = await self.forward(request, f"{MLFLOW_PREFIX}runs/log-batch", body)
            if response.status_code != 200:
                return self._finish(response)
            tracking_id = str(uuid.uuid4())
            self.async_batches[tracking_id] = (str(payload.get("run_id", "")), time.monotonic())
            return errors.json_response({"batch_tracking_id": tracking_id})
        if endpoint == "runs/get-run-data-status":
            if request.method.upper() == "GET":
                args: dict[str, Any] = dict(request.query_params)
            else:
                args = _json_object(body)
            tracking_id = str(args.get("batch_tracking_id", ""))
            batch = self.async_batches.get(tracking_id)
            if batch is None or batch[0] != str(args.get("run_id", "")):
                return errors.mlflow_error(
                    404,
                    "RESOURCE_DOES_NOT_EXIST",
                    f"Unknown batch_tracking_id {tracking_id!r}.",
                    location=location,
                )
            complete = time.monotonic() - batch[1] >= self.quirks.async_logging_delay
            return errors.json_response({"is_complete": complete})
        return errors.empty_404()

    async def forward(self, request: Request, rest: str, body: bytes) -> Response:
        query = request.url.query
        url = rest + (f"?{query}" if query else "")
        headers = {}
        if request.headers.get("content-type"):
            headers["content-type"] = request.headers["content-type"]
        backend = await self.client.request(request.method, url, content=body, headers=headers)
        return Response(
            backend.content,
            status_code=backend.status_code,
            media_type=backend.headers.get("content-type"),
        )

    def _finish(self, response: Response, *, count_get: bool = False) -> Response:
        """Azure-shape errors; rewrite artifact URIs and registration status in answers."""
        try:
            body = json.loads(bytes(response.body))
        except ValueError:
            # MLflow's HTML "not found" for a route it lacks: Azure has an empty 404 (§7.2).
            return errors.empty_404() if response.status_code in (404, 405) else response
        status = response.status_code
        if status >= 400:
            if self.quirks.azure_error_bodies:
                shaped = errors.from_mlflow_body(status, body, location=self.config.location)
                if shaped is not None:
                    return errors.json_response(shaped, status)
            return response
        if self.quirks.rewrite_artifact_uri:
            body = self._rewrite_uris(body)
        if self.pending:
            self._apply_pending(body, count_get=count_get)
        return errors.json_response(body, status)

    def _rewrite_uris(self, value: Any) -> Any:
        root = self.config.placeholder_root.rstrip("/")
        base = f"azureml://{self.config.netloc}/mlflow/v2.0{self.config.scope}/experiments"
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                if (
                    key in ("artifact_uri", "artifact_location")
                    and isinstance(item, str)
                    and item.startswith(root + "/")
                ):
                    parts = item[len(root) + 1 :].split("/")
                    if key == "artifact_uri" and len(parts) >= 2:
                        tail = "/".join(parts[2:])
                        item = f"{base}/{parts[0]}/runs/{parts[1]}/{tail}".rstrip("/")
                    elif key == "artifact_location" and parts:
                        item = f"{base}/{parts[0]}"
                out[key] = self._rewrite_uris(item) if not isinstance(item, str) else item
            return out
        if isinstance(value, list):
            return [self._rewrite_uris(item) for item in value]
        return value

    def _register_pending(self, response: Response) -> None:
        quirks = self.quirks
        if quirks.registry_pending_gets <= 0 and quirks.registry_pending_seconds <= 0:
            return
        try:
            version = json.loads(bytes(response.body))["model_version"]
        except (ValueError, KeyError, TypeError):
            return
        key = (str(version.get("name")), str(version.get("version")))
        self.pending[key] = {"created": time.monotonic(), "gets": 0}

    def _apply_pending(self, body: Any, *, count_get: bool) -> None:
        for version in _model_versions(body):
            key = (str(version.get("name")), str(version.get("version")))
            state = self.pending.get(key)
            if state is None:
                continue
            if count_get:
                # The current quirk values apply (a test may shorten a long delay).
                ready = (
                    state["gets"] >= self.quirks.registry_pending_gets
                    and time.monotonic() - state["created"] >= self.quirks.registry_pending_seconds
                )
                if ready:
                    del self.pending[key]
                    continue
                state["gets"] += 1
            version["status"] = PENDING
            version["status_message"] = "Model registration is in progress."

    def _hide_slash_experiments(self, response: Response) -> None:
        try:
            body = json.loads(bytes(response.body))
        except ValueError:
            return
        if isinstance(body, dict) and isinstance(body.get("experiments"), list):
            body["experiments"] = [
                e for e in body["experiments"] if "/" not in str(e.get("name", ""))
            ]
            response.body = json.dumps(body).encode()
            response.headers["content-length"] = str(len(response.body))

    # ------------------------------------------------------------------------ artifacts

    def blob_container(self) -> ContainerClient:
        """The workspace's blob container (sync client; call it in a thread)."""
        account = self.index.account
        service = BlobServiceClient(
            account_url=account.endpoint,
            credential={"account_name": account.account_name, "account_key": account.account_key},
        )
        return service.get_container_client(account.container)

    async def _ensure_container(self) -> None:
        if self._container_ready:
            return
        async with self._container_lock:
            if self._container_ready:
                return
            account = self.index.account

            def create() -> None:
                service = BlobServiceClient(
                    account_url=account.endpoint,
                    credential={
                        "account_name": account.account_name,
                        "account_key": account.account_key,
                    },
                )
                with contextlib.suppress(ResourceExistsError):
                    service.create_container(account.container)

            await asyncio.to_thread(create)
            self._container_ready = True

    async def history(self, request: Request, rest: str, body: bytes) -> Response:
        location = self.config.location
        match = HISTORY_ARTIFACTS_RE.match(rest)
        if match is None:
            return errors.empty_404()
        run_problem = await self._check_run(match["exp"], match["run"])
        if run_problem is not None:
            return run_problem
        container = run_container(match["run"])
        tail = (match["tail"] or "").rstrip("/")
        method = request.method.upper()
        query = request.query_params
        if tail == "/batch/metadata" and method == "POST":
            return await self.batch_metadata(RUN_ORIGIN, container, body)
        if method != "GET":
            return errors.empty_404()
        if tail == "":
            return self.listing(
                self.index.records(RUN_ORIGIN, container), query.get("continuationToken")
            )
        if tail == "/path":
            prefix = (query.get("path") or "").rstrip("/")
            records = [
                r
                for r in self.index.records(RUN_ORIGIN, container)
                if not prefix or r["path"] == prefix or r["path"].startswith(prefix + "/")
            ]
            return self.listing(records, query.get("continuationToken"))
        if tail in ("/contentinfo", "/metadata"):
            path = query.get("path") or ""
            record = self.index.get(RUN_ORIGIN, container, path)
            if record is None:
                return errors.history_error(
                    404,
                    "UserError",
                    f"Artifact {RUN_ORIGIN}/{container}/{path} was not found.",
                    location=location,
                    inner="NotFound",
                )
            if tail == "/metadata":
                return errors.json_response(record)
            await self._ensure_container()
            return errors.json_response(
                self.index.content_info(
                    record, write=False, ttl=self.quirks.sas_ttl_seconds, via=self._storage_via()
                )
            )
        return errors.empty_404()

    async def _check_run(self, experiment: str, run_id: str) -> Response | None:
        """The run must exist in this workspace, under the experiment named by id or name."""
        location = self.config.location
        response = await self.client.get(f"{MLFLOW_PREFIX}runs/get", params={"run_id": run_id})
        if response.status_code != 200:
            return errors.history_error(
                404,
                "UserError",
                f"Run {run_id} was not found.",
                location=location,
                inner="NotFound",
            )
        experiment_id = str(response.json()["run"]["info"]["experiment_id"])
        if experiment == experiment_id:
            return None
        named = await self.client.get(
            f"{MLFLOW_PREFIX}experiments/get-by-name", params={"experiment_name": experiment}
        )
        if (
            named.status_code == 200
            and str(named.json()["experiment"]["experiment_id"]) == experiment_id
        ):
            return None
        return errors.history_error(
            404,
            "UserError",
            f"Run {run_id} was not found in experiment {experiment}.",
            location=location,
            inner="NotFound",
        )

    async def artifact_v2(self, request: Request, rest: str, body: bytes) -> Response:
        match = ARTIFACT_V2_BATCH_RE.match(rest)
        if match is None or request.method.upper() != "POST":
            return errors.empty_404()
        return await self.batch_metadata(match["origin"], match["container"], body)

    async def batch_metadata(self, origin: str, container: str, body: bytes) -> Response:
        location = self.config.location
        payload = _json_object(body)
        items = payload.get("paths")
        if not isinstance(items, list):
            return errors.history_error(
                400,
                "ValidationError",
                "The request body must contain a 'paths' list.",
                location=location,
            )
        limit = self.quirks.max_artifact_batch
        if limit and len(items) > limit:
            return errors.history_error(
                400,
                "ValidationError",
                f"Artifact batch size exceeded the limit of {limit}",
                location=location,
            )
        await self._ensure_container()
        artifacts: dict[str, Any] = {}
        infos: dict[str, Any] = {}
        failures: dict[str, Any] = {}
        ttl = self.quirks.sas_ttl_seconds
        for item in items:
            path = item.get("path") if isinstance(item, dict) else None
            problem = path_problem(path)
            if problem is not None:
                failures[str(path)] = errors.history_error_body(
                    400, "ValidationError", problem, location=location
                )
                continue
            assert isinstance(path, str)
            tags = item.get("tags") if isinstance(item.get("tags"), dict) else None
            record = self.index.create(origin, container, path, tags)
            artifacts[path] = record
            infos[path] = self.index.content_info(
                record,
                write=True,
                ttl=ttl,
                via=self._storage_via(),
                write_reads=self.quirks.write_sas_reads,
            )
        return errors.json_response(
            {"artifacts": artifacts, "artifactContentInformation": infos, "errors": failures}
        )

    # ------------------------------------------------- storage pass-through (test visibility)

    def _storage_via(self) -> str | None:
        """The SAS base to hand out: the front's pass-through when `blob_via_front` is on."""
        if not self.quirks.blob_via_front:
            return None
        return f"https://{self.config.netloc}{STORAGE_PREFIX}{self.config.account_name}"

    async def storage(self, request: Request, scope: Scope, receive: Receive, send: Send) -> None:
        """`/_storage/<account>/<container>/<blob>?<SAS>` -> Azurite, unchanged (Azurite checks
        the SAS). Logged with family "blob" (query without the signature); fault rules apply
        (a `status` fault answers in Storage's XML error shape)."""
        method = request.method.upper()
        path: str = scope["path"]
        body = await request.body()
        query = scope.get("query_string", b"").decode("latin-1")
        kept = "&".join(q for q in query.split("&") if q.startswith(("comp=", "blockid=")))
        entry = self._log_request(method, path, kept, family="blob", auth="sas", size=len(body))
        rule = self.faults.take(method, path)
        if rule is not None:
            entry["fault"] = rule.action if rule.action != "status" else f"status:{rule.status}"
            if rule.action == "drop":
                entry["dropped"] = await drop_connection(scope)
                return
            if rule.action == "status":
                response: Response = errors.storage_error(rule.status)
                entry["status"] = response.status_code
                await response(scope, receive, send)
                return
            if rule.action == "delay":
                await asyncio.sleep(rule.seconds)
        origin = self.config.blob_endpoint.rsplit("/", 1)[0]
        forwarded = {
            k: v
            for k, v in request.headers.items()
            if k.startswith(("x-ms-", "content-", "if-", "range")) and k != "content-length"
        }
        answer = await self.client.request(
            method,
            f"{origin}{path[len(STORAGE_PREFIX) - 1 :]}?{query}",
            content=body,
            headers=forwarded,
        )
        entry["status"] = answer.status_code
        if rule is not None and rule.action == "lost_response":
            entry["dropped"] = await drop_connection(scope)
            return
        headers = {
            k: v
            for k, v in answer.headers.items()
            if k.lower() not in ("transfer-encoding", "connection", "content-encoding", "server")
        }
        await Response(answer.content, answer.status_code, headers)(scope, receive, send)

    def listing(self, records: list[dict[str, Any]], token: str | None) -> Response:
        items, following = page(records, token, self.quirks.artifact_list_page_size)
        return errors.json_response(
            {"value": items, "continuationToken": following, "nextLink": None}
        )

    # ---------------------------------------------------------------------- control API

    async def control(self, request: Request) -> Response:
        """The stand-in's own API (no auth; loopback only):

        POST/GET/DELETE /_standin/faults     add rule(s) / list / clear (faults.py)
        GET/DELETE      /_standin/requests   request log (?since=<seq>[&brief=1]) / clear it
        GET             /_standin/counts     applied requests and items by kind (?since=<seq>)
        GET/POST        /_standin/quirks     current switches / change some (quirks.py)
        POST            /_standin/reset      clear faults, restore the start-up quirks
        GET             /_standin/artifacts  the artifact index (?origin=&container=)
        GET             /_standin/info       host, scope, container, ...
        """
        path = request.url.path
        method = request.method.upper()
        if path == "/_standin/faults":
            if method == "POST":
                rules = self.faults.add(await request.json())
                return errors.json_response({"rules": [r.as_json() for r in rules]})
            if method == "DELETE":
                self.faults.clear()
            return errors.json_response({"rules": self.faults.as_json()})
        if path == "/_standin/requests":
            if method == "DELETE":
                self.log.clear()
                return errors.json_response({"requests": [], "last_seq": self._seq})
            since = int(request.query_params.get("since", "0"))
            entries = [e for e in self.log if e["seq"] > since]
            if request.query_params.get("brief") in ("1", "true"):
                entries = [{k: v for k, v in e.items() if k != "json"} for e in entries]
            return errors.json_response({"requests": entries, "last_seq": self._seq})
        if path == "/_standin/counts":
            since = int(request.query_params.get("since", "0"))
            counted = request_counts(e for e in self.log if e["seq"] > since)
            return errors.json_response({**counted, "last_seq": self._seq})
        if path == "/_standin/quirks":
            if method == "POST":
                self.quirks.update(await request.json())
            return errors.json_response(self.quirks.as_dict())
        if path == "/_standin/online":  # online endpoints and deployments (online.py)
            return errors.json_response(self.online.state())
        if path == "/_standin/reset" and method == "POST":
            self.faults.clear()
            self.online.clear()
            self.quirks = self._initial_quirks()
            return errors.json_response({"quirks": self.quirks.as_dict(), "last_seq": self._seq})
        if path == "/_standin/artifacts":
            origin = request.query_params.get("origin", RUN_ORIGIN)
            container = request.query_params.get("container", "")
            return errors.json_response({"records": self.index.records(origin, container)})
        if path == "/_standin/info":
            config = self.config
            return errors.json_response(
                {
                    "netloc": config.netloc,
                    "scope": config.scope,
                    "container": config.container,
                    "workspace_id": config.workspace_id,
                    "blob_endpoint": config.blob_endpoint,
                    "mlflow_url": config.mlflow_url,
                }
            )
        return errors.json_response({"error": f"unknown control route {method} {path}"}, 404)


_BATCH = ("runs/log-batch",)
STORAGE_PREFIX = "/_storage/"
INFERENCE_PREFIX = "/_inference/"


def _classify(path: str) -> tuple[str | None, re.Match[str] | None]:
    for family, regex in FAMILIES:
        match = regex.match(path)
        if match is not None:
            return family, match
    return None, None


def _json_object(body: bytes) -> dict[str, Any]:
    if not body:
        return {}
    try:
        value = json.loads(body)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _small_json(body: bytes) -> Any:
    if not body or len(body) > LOGGED_BODY_LIMIT:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


# MLflow endpoints that carry run data: what one request holds of each kind.
_DATA_ENDPOINTS = re.compile(
    r"/api/2\.0/(?:preview/)?mlflow/runs/"
    r"(?P<ep>log-batch|log-batch-async|log-metric|log-parameter|set-tag)$"
)
KINDS = ("metrics", "params", "tags")


def _counts(path: str, body: bytes) -> dict[str, Any] | None:
    """{"run_id", "metrics", "params", "tags"} of a run-data request, else None."""
    found = _DATA_ENDPOINTS.search(path)
    if found is None:
        return None
    payload = _json_object(body)
    endpoint = found["ep"]
    if endpoint in ("log-batch", "log-batch-async"):
        sizes = {kind: len(_entries(payload.get(kind))) for kind in KINDS}
    else:
        kind = {"log-metric": "metrics", "log-parameter": "params", "set-tag": "tags"}[endpoint]
        sizes = {k: int(k == kind) for k in KINDS}
    return {"run_id": payload.get("run_id"), **sizes}


def request_counts(entries: Any) -> dict[str, int]:
    """Azure requests received, how they were answered, and the run data applied, by kind:
    `metric_requests` / `metric_points`, `param_requests` / `params`, `tag_requests` / `tags`
    (a log-batch with metrics and params counts as one of each). Applied = answered 2xx, or
    applied with its answer lost."""
    out = {
        "requests": 0,
        "applied": 0,
        "throttled": 0,
        "unavailable": 0,
        "metric_requests": 0,
        "metric_points": 0,
        "param_requests": 0,
        "params": 0,
        "tag_requests": 0,
        "tags": 0,
    }
    for entry in entries:
        if entry.get("family") == "blob":
            continue
        out["requests"] += 1
        status = entry.get("status")
        out["throttled"] += status == 429
        out["unavailable"] += status == 503
        if status is None or not 200 <= status < 300:
            continue
        out["applied"] += 1
        counts = entry.get("counts") or {}
        for kind, requests, items in (
            ("metrics", "metric_requests", "metric_points"),
            ("params", "param_requests", "params"),
            ("tags", "tag_requests", "tags"),
        ):
            if counts.get(kind):
                out[requests] += 1
                out[items] += counts[kind]
    return out


def _entries(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _model_versions(body: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(body, dict):
        if {"name", "version", "status"} <= body.keys() and "creation_timestamp" in body:
            found.append(body)
        for value in body.values():
            found.extend(_model_versions(value))
    elif isinstance(body, list):
        for value in body:
            found.extend(_model_versions(value))
    return found


def main(argv: list[str]) -> None:
    config = StandinConfig(**json.loads(Path(argv[1]).read_text()))
    app = Standin(config)
    listeners = [Listener(config.http_port)]
    if config.certfile and config.keyfile:
        listeners.insert(
            0, Listener(config.tls_port, certfile=config.certfile, keyfile=config.keyfile)
        )
    serve(app, listeners)


if __name__ == "__main__":
    main(sys.argv)
