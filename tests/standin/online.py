"""Managed online endpoints of the stand-in workspace: the ARM surface and a scoring URI that
really runs the model.

Facts: `docs/azureml-deploy.md` ("D§n" below). [INF] marks an assumption a real
workspace must confirm.

Routes (under the workspace scope, ARM family, bearer auth and faults as every ARM route):
- `PUT|GET|PATCH|DELETE onlineEndpoints/{ep}`, `GET onlineEndpoints`, `POST …/listKeys`,
  `POST …/token` (D§1, D§3);
- `PUT|GET|PATCH|DELETE onlineEndpoints/{ep}/deployments/{dep}`, `GET …/deployments`,
  `POST …/deployments/{dep}/getLogs` (D§1, D§4); a PUT of an existing deployment updates it
  (same instance type only: create-only in the spec, D§1), a PATCH of its `sku` scales it;
- `GET /subscriptions/{sub}/providers/Microsoft.MachineLearningServices/locations/{loc}/
  mfeOperationsStatus/{id}` (status body) and `…/mfeOperationResults/{id}` (202 while running,
  200 when done) (D§2).
Scoring (no ARM auth; the endpoint's key or token): `POST /_inference/{ep}/score` (D§3).

Long-running operations finish lazily: every request first applies the operations whose time
has come (`tick`), so nothing runs in the background and a stopped client changes nothing.
Invariants: one operation at a time per resource (else 409); a PUT/DELETE answers with the
LRO headers of D§2; a deployment's outcome (quota, model found, container start) is decided
when it is requested and shown only when its operation ends, like Azure's asynchronous
`ResourceNotReady`.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import re
import secrets
import shutil
import tempfile
import time
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from standin import errors
from standin.artifacts import RUN_ORIGIN, blob_name, run_container

if TYPE_CHECKING:
    from standin.front import Standin

NAME_RE = re.compile(r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$")  # D§5 (SDK regex), 3-32 chars
MODEL_ID_RE = re.compile(
    r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.MachineLearningServices/"
    r"workspaces/[^/]+/models/(?P<name>[^/]+)/versions/(?P<version>[^/]+)$",
    re.I,
)
# vCPUs per SKU (Azure's VM size list); the managed online endpoint SKU list is longer [INF].
SKU_CORES = {
    "Standard_DS1_v2": 1,
    "Standard_DS2_v2": 2,
    "Standard_DS3_v2": 4,
    "Standard_DS4_v2": 8,
    "Standard_DS5_v2": 16,
    "Standard_F2s_v2": 2,
    "Standard_F4s_v2": 4,
    "Standard_F8s_v2": 8,
    "Standard_F16s_v2": 16,
    "Standard_E4s_v3": 4,
    "Standard_NC6s_v3": 6,
}
LOG_LINES = 200
_STORAGE = "StorageInitializer"  # log lines of that container; the rest: InferenceServer


@dataclass
class Operation:
    id: str  # "oeidp:<guid>:<guid>" (endpoint) / "odidp:..." (deployment)
    done_at: float
    apply: Any  # () -> (status, error | None), run once when due
    status: str = "InProgress"
    error: dict[str, Any] | None = None
    start: float = field(default_factory=time.time)
    end: float | None = None


@dataclass
class Deployment:
    name: str
    body: dict[str, Any]
    state: str = "Creating"
    op: Operation | None = None
    logs: list[str] = field(default_factory=list)
    model: Any = None  # the loaded pyfunc model once Succeeded
    cores: int = 0  # vCPUs reserved against the quota


@dataclass
class Endpoint:
    name: str
    body: dict[str, Any]
    state: str = "Creating"
    op: Operation | None = None
    keys: tuple[str, str] = ("", "")
    tokens: dict[str, float] = field(default_factory=dict)
    deployments: dict[str, Deployment] = field(default_factory=dict)


class OnlineEndpoints:
    def __init__(self, standin: Standin) -> None:
        self.standin = standin
        self.endpoints: dict[str, Endpoint] = {}
        self.operations: dict[str, Operation] = {}
        self.model_root = tempfile.mkdtemp(prefix="standin-models-")

    # -------------------------------------------------------------------------- plumbing

    @property
    def quirks(self) -> Any:
        return self.standin.quirks

    def _base(self) -> str:
        return f"https://{self.standin.config.netloc}"

    def _scope(self) -> str:
        return self.standin.config.scope

    def tick(self) -> None:
        now = time.time()
        for op in list(self.operations.values()):
            if op.end is None and op.done_at <= now:
                op.status, op.error = op.apply()
                op.end = time.time()

    def _new_op(self, kind: str, seconds: float, apply: Any) -> Operation:
        op = Operation(f"{kind}:{uuid.uuid4()}:{uuid.uuid4()}", time.time() + seconds, apply)
        self.operations[op.id] = op
        return op

    def _op_url(self, op: Operation, results: bool = False) -> str:
        config = self.standin.config
        kind = "mfeOperationResults" if results else "mfeOperationsStatus"
        return (
            f"{self._base()}/subscriptions/{config.subscription}/providers/"
            f"Microsoft.MachineLearningServices/locations/{config.location}/{kind}/{op.id}"
            "?api-version=2025-12-01"
        )

    def _async_headers(self, op: Operation) -> dict[str, str]:
        return {"Azure-AsyncOperation": self._op_url(op), "x-ms-async-operation-timeout": "PT2H"}

    def _location_headers(self, op: Operation) -> dict[str, str]:
        return {"Location": self._op_url(op, True), "Retry-After": str(self.quirks.lro_retry_after)}

    @staticmethod
    def _busy(op: Operation | None) -> bool:
        return op is not None and op.end is None

    def _conflict(self, what: str) -> Response:
        return errors.arm_error(
            409,
            "Conflict",
            f"{what} has an operation in progress; retry when it has finished [INF].",
        )

    def _not_found(self, kind: str, name: str) -> Response:
        config = self.standin.config
        return errors.arm_error(
            404,
            "ResourceNotFound",
            f"The Resource 'Microsoft.MachineLearningServices/workspaces/{config.workspace}/"
            f"{kind}/{name}' under resource group '{config.resource_group}' was not found.",
        )

    # -------------------------------------------------------------------------- routing

    async def arm(self, request: Request, rest: str, body: bytes) -> Response:
        """`rest` starts with /onlineEndpoints (under the workspace scope)."""
        self.tick()
        if not request.query_params.get("api-version"):
            return errors.arm_error(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            )
        parts = [p for p in rest.split("/") if p][1:]
        method = request.method.upper()
        payload = _json(body)
        if not parts:
            if method != "GET":
                return errors.arm_error(405, "MethodNotAllowed", f"{method} not allowed")
            return errors.json_response(
                {"value": [self._endpoint_json(e) for e in self.endpoints.values()]}
            )
        endpoint = self.endpoints.get(parts[0].lower())
        if len(parts) == 1:
            if method == "PUT":
                if payload is None:
                    return _bad_request("The request body must be a JSON object.")
                return self.put_endpoint(parts[0], endpoint, payload)
            if endpoint is None:
                return self._not_found("onlineEndpoints", parts[0])
            if method == "GET":
                return errors.json_response(self._endpoint_json(endpoint))
            if method == "PATCH":
                return self.patch(endpoint, payload or {}, endpoint)
            if method == "DELETE":
                return self.delete_endpoint(endpoint)
            return errors.arm_error(405, "MethodNotAllowed", f"{method} not allowed")
        if endpoint is None:
            return self._not_found("onlineEndpoints", parts[0])
        if len(parts) == 2 and method == "POST" and parts[1] in ("listKeys", "token"):
            return self.credentials(endpoint, parts[1])
        if parts[1] != "deployments":
            return errors.arm_error(404, "NotFound", f"Not modelled: {rest!r}")
        if len(parts) == 2:
            return errors.json_response(
                {
                    "value": [
                        self._deployment_json(endpoint, d) for d in endpoint.deployments.values()
                    ]
                }
            )
        deployment = endpoint.deployments.get(parts[2].lower())
        if len(parts) == 3:
            if method == "PUT":
                if payload is None:
                    return _bad_request("The request body must be a JSON object.")
                return await self.put_deployment(endpoint, parts[2], deployment, payload)
            if deployment is None:
                return self._not_found(f"onlineEndpoints/{endpoint.name}/deployments", parts[2])
            if method == "GET":
                return errors.json_response(self._deployment_json(endpoint, deployment))
            if method == "PATCH":
                return self.patch(deployment, payload or {}, endpoint)
            if method == "DELETE":
                return self.delete_deployment(endpoint, deployment)
            return errors.arm_error(405, "MethodNotAllowed", f"{method} not allowed")
        if deployment is not None and len(parts) == 4 and parts[3] == "getLogs":
            tail = int((payload or {}).get("tail") or LOG_LINES)
            storage = (payload or {}).get("containerType") == "StorageInitializer"
            lines = [line for line in deployment.logs if line.startswith(_STORAGE) == storage]
            return errors.json_response({"content": "\n".join(lines[-tail:])})
        return errors.arm_error(404, "NotFound", f"Not modelled: {rest!r}")

    def operation(self, kind: str, op_id: str) -> Response:
        """D§2: the Azure-AsyncOperation status body, or Location polling (202 = running)."""
        self.tick()
        op = self.operations.get(op_id)
        if op is None:
            return errors.arm_error(404, "NotFound", f"Operation {op_id} not found.")
        if kind.lower() == "mfeoperationresults":
            if op.end is None:
                return Response(
                    status_code=202, headers={"Retry-After": str(self.quirks.lro_retry_after)}
                )
            if op.status != "Succeeded":
                return errors.json_response({"error": op.error}, 400)
            return Response(status_code=200)
        body: dict[str, Any] = {
            "id": op.id,
            "status": op.status,
            "startTime": _iso(op.start),
        }
        if op.end is not None:
            body["endTime"] = _iso(op.end)
        if op.error is not None:
            body["error"] = op.error
        headers = {"Retry-After": str(self.quirks.lro_retry_after)} if op.end is None else None
        return errors.json_response(body, 200, headers)

    # -------------------------------------------------------------------------- endpoints

    def put_endpoint(self, name: str, endpoint: Endpoint | None, body: dict[str, Any]) -> Response:
        props = body.get("properties")
        if not isinstance(props, dict) or props.get("authMode") not in (
            "Key",
            "AMLToken",
            "AADToken",
        ):
            return _bad_request("properties.authMode must be one of Key, AMLToken, AADToken.")
        if body.get("location") != self.standin.config.location:
            return _bad_request(
                f"location must be the workspace's region {self.standin.config.location!r}."
            )
        if endpoint is None:
            if not (3 <= len(name) <= 32 and NAME_RE.match(name)):
                return _bad_request(
                    f"Invalid endpoint name {name!r}: 3-32 characters, starting with a letter, "
                    "letters, digits and dashes, not ending with a dash."
                )
            if name.lower() in {n.lower() for n in self.quirks.endpoint_names_taken}:
                return _bad_request(
                    "There is already an endpoint with this name, Endpoint name needs to be "
                    "unique within a region. Try some other name."
                )
            endpoint = Endpoint(
                name, body, keys=(secrets.token_urlsafe(24), secrets.token_urlsafe(24))
            )
            problem = self._traffic_problem(endpoint, props)
            if problem:
                return _bad_request(problem)
            self.endpoints[name.lower()] = endpoint
            endpoint.op = self._new_op(
                "oeidp", self.quirks.endpoint_provisioning_seconds, lambda: self._settle(endpoint)
            )
            return errors.json_response(
                self._endpoint_json(endpoint), 201, self._async_headers(endpoint.op)
            )
        if self._busy(endpoint.op) or endpoint.state == "Deleting":
            return self._conflict(f"Endpoint {endpoint.name}")
        problem = self._traffic_problem(endpoint, props)
        if problem:
            return _bad_request(problem)
        endpoint.body = {**body, "properties": props}
        endpoint.state = "Updating"
        endpoint.op = self._new_op(
            "oeidp", self.quirks.update_seconds, lambda: self._settle(endpoint)
        )
        return errors.json_response(
            self._endpoint_json(endpoint), 200, self._async_headers(endpoint.op)
        )

    @staticmethod
    def _settle(resource: Endpoint | Deployment) -> tuple[str, None]:
        resource.state = "Succeeded"
        return "Succeeded", None

    def _traffic_problem(self, endpoint: Endpoint, props: dict[str, Any]) -> str | None:
        for key, limit in (("traffic", 100), ("mirrorTraffic", 50)):
            values = props.get(key) or {}
            if not isinstance(values, dict):
                return f"properties.{key} must be an object."
            for dep in values:
                found = endpoint.deployments.get(str(dep).lower())
                serving = found is not None and found.model is not None  # a failed update's too
                if not serving and (
                    found is None or found.state not in ("Succeeded", "Updating", "Scaling")
                ):
                    return f"Deployment {dep!r} in {key} does not exist or is not ready."
            total = sum(int(v) for v in values.values())
            if key == "traffic" and values and total not in (0, 100):
                return f"Traffic must sum to 100 (got {total})."
            if key == "mirrorTraffic" and total > limit:
                return f"Mirror traffic must be at most {limit} (got {total})."
        return None

    def patch(
        self, resource: Endpoint | Deployment, body: dict[str, Any], endpoint: Endpoint
    ) -> Response:
        """D§1: the stable PATCH bodies hold tags (+ identity / sku). A deployment's new
        capacity is a long-running operation: 202 + Location + Retry-After (D§1, D§2), the
        deployment `Scaling` meanwhile, the quota checked as for a PUT."""
        if self._busy(resource.op) or resource.state == "Deleting":
            return self._conflict(resource.name)
        if isinstance(resource, Deployment) and isinstance(body.get("sku"), dict):
            return self.scale(resource, body["sku"], body)
        for key in ("tags", "sku", "identity"):
            if key in body:
                resource.body[key] = body[key]
        if isinstance(resource, Deployment):
            return errors.json_response(self._deployment_json(endpoint, resource))
        return errors.json_response(self._endpoint_json(resource))

    def scale(self, deployment: Deployment, sku: dict[str, Any], body: dict[str, Any]) -> Response:
        capacity = sku.get("capacity", (deployment.body.get("sku") or {}).get("capacity", 1))
        if not isinstance(capacity, int) or capacity < 1 or capacity > 50:
            return _bad_request("sku.capacity (instance count) must be 1-50.")
        instance_type = deployment.body["properties"]["instanceType"]
        needed = math.ceil(1.2 * capacity) * SKU_CORES[instance_type]
        refused = self._over_quota(instance_type, needed, deployment)
        if refused is not None:
            return refused
        if "tags" in body:
            deployment.body["tags"] = body["tags"]
        deployment.body["sku"] = {**(deployment.body.get("sku") or {}), **sku}
        if deployment.state != "Failed":  # scaling a failed deployment does not mend it [INF]
            deployment.state = "Scaling"
        was = deployment.state
        deployment.cores = needed

        def scaled() -> tuple[str, None]:
            if was == "Scaling":
                deployment.state = "Succeeded"
            return "Succeeded", None

        deployment.op = self._new_op("odidp", self.quirks.update_seconds, scaled)
        return Response(status_code=202, headers=self._location_headers(deployment.op))

    def credentials(self, endpoint: Endpoint, what: str) -> Response:
        mode = endpoint.body["properties"]["authMode"]
        if what == "listKeys":
            if mode != "Key":
                return _bad_request(f"Keys are only available with authMode Key (is {mode}).")
            return errors.json_response(
                {"primaryKey": endpoint.keys[0], "secondaryKey": endpoint.keys[1]}
            )
        if mode != "AMLToken":
            return _bad_request(f"Tokens are only available with authMode AMLToken (is {mode}).")
        token = secrets.token_urlsafe(32)
        expiry = time.time() + 3600
        endpoint.tokens[token] = expiry
        return errors.json_response(
            {
                "accessToken": token,
                "tokenType": "Bearer",
                "expiryTimeUtc": int(expiry),
                "refreshAfterTimeUtc": int(expiry - 1800),
            }
        )

    def delete_endpoint(self, endpoint: Endpoint) -> Response:
        """D§4: deletes the endpoint with all its deployments; 202 + Location + Retry-After."""
        if self._busy(endpoint.op) or any(self._busy(d.op) for d in endpoint.deployments.values()):
            return self._conflict(f"Endpoint {endpoint.name}")
        endpoint.state = "Deleting"

        def gone() -> tuple[str, None]:
            self.endpoints.pop(endpoint.name.lower(), None)
            endpoint.deployments.clear()
            return "Succeeded", None

        endpoint.op = self._new_op("oeidp", self.quirks.delete_seconds, gone)
        return Response(status_code=202, headers=self._location_headers(endpoint.op))

    # ------------------------------------------------------------------------ deployments

    async def put_deployment(
        self, endpoint: Endpoint, name: str, deployment: Deployment | None, body: dict[str, Any]
    ) -> Response:
        if endpoint.state != "Succeeded" or self._busy(endpoint.op):
            return self._conflict(f"Endpoint {endpoint.name}")
        if deployment is not None and (self._busy(deployment.op) or deployment.state == "Deleting"):
            return self._conflict(f"Deployment {deployment.name}")
        if deployment is None and len(endpoint.deployments) >= 20:  # D§5
            return _bad_request("An endpoint can have at most 20 deployments.")
        if deployment is None and not (3 <= len(name) <= 32 and NAME_RE.match(name)):
            return _bad_request(f"Invalid deployment name {name!r}.")
        props = body.get("properties") if isinstance(body.get("properties"), dict) else {}
        sku = body.get("sku") if isinstance(body.get("sku"), dict) else {}
        instance_type = props.get("instanceType") or "Standard_F4s_v2"
        capacity = sku.get("capacity", 1)
        if not isinstance(capacity, int) or capacity < 1 or capacity > 50:
            return _bad_request("sku.capacity (instance count) must be 1-50.")
        if deployment is not None and instance_type != deployment.body["properties"].get(
            "instanceType"
        ):
            return _bad_request(  # D§1: instanceType is create-only; wording [INF]
                f"Updating the instance type of deployment {deployment.name} is not supported; "
                "create a new deployment."
            )
        if instance_type not in SKU_CORES:
            return _bad_request(  # wording [INF] (D§2: unconfirmed for an invalid SKU name)
                f"The specified instance type {instance_type} is not supported for managed "
                "online deployments in this region."
            )
        model_id = props.get("model")
        match = MODEL_ID_RE.match(model_id or "")
        if match is None:
            return _bad_request(
                f"properties.model must be a model version's ARM id (got {model_id!r})."
            )
        needed = math.ceil(1.2 * capacity) * SKU_CORES[instance_type]  # D§2 quota formula
        refused = self._over_quota(instance_type, needed, deployment)
        if refused is not None:
            return refused
        outcome = await self._prepare(endpoint.name, name, match["name"], match["version"])
        created = deployment is None
        if deployment is None:
            deployment = Deployment(name, body)
            endpoint.deployments[name.lower()] = deployment
        deployment.body = {
            **body,
            "sku": {"name": sku.get("name", "Default"), "capacity": capacity},
        }
        deployment.body.setdefault("properties", {})["instanceType"] = instance_type
        deployment.state = "Creating" if created else "Updating"
        previous = deployment.cores  # an update's old instances serve until it succeeds [INF]
        deployment.cores = needed
        deployment.logs = outcome["logs"]
        dep = deployment

        def finish() -> tuple[str, dict[str, Any] | None]:
            if outcome["error"] is None:
                dep.state, dep.model = "Succeeded", outcome["model"]
                return "Succeeded", None
            # A failed create has no instance; a failed update keeps the previous model and
            # instances serving (the spec and state show the failed update) [INF].
            dep.state, dep.cores = "Failed", previous
            return "Failed", outcome["error"]

        deployment.op = self._new_op("odidp", self.quirks.deployment_provisioning_seconds, finish)
        return errors.json_response(
            self._deployment_json(endpoint, deployment),
            201 if created else 200,
            self._async_headers(deployment.op),
        )

    def _over_quota(
        self, instance_type: str, needed: int, deployment: Deployment | None
    ) -> Response | None:
        """D§2: the synchronous 400 of a deployment that would exceed the vCPU quota (the
        deployment's own current cores are given back first: its instances are replaced)."""
        usage = sum(
            d.cores
            for e in self.endpoints.values()
            for d in e.deployments.values()
            if d is not deployment
        )
        quota = self.quirks.vcpu_quota
        if usage + needed <= quota:
            return None
        inner = (
            '{"errors":{"VmSize":["Not enough quota available for '
            f"{instance_type} in SubscriptionId {self.standin.config.subscription}. "
            f"Current usage/limit: {usage}/{quota}. Additional needed: {needed} Please see "
            'troubleshooting guide, available here: https://aka.ms/oe-tsg#error-outofquota"]},'
            '"title":"One or more validation errors occurred.","status":400}'
        )
        return errors.json_response(
            {
                "error": {
                    "code": "BadRequest",
                    "message": "The request is invalid.",
                    "details": [
                        {"code": "InferencingClientCreateDeploymentFailed", "message": inner}
                    ],
                }
            },
            400,
        )

    def delete_deployment(self, endpoint: Endpoint, deployment: Deployment) -> Response:
        if self._busy(deployment.op) or self._busy(endpoint.op):
            return self._conflict(f"Deployment {deployment.name}")
        traffic = endpoint.body["properties"].get("traffic") or {}
        if any(k.lower() == deployment.name.lower() and v for k, v in traffic.items()):
            return _bad_request(  # [INF] D§4: whether Azure refuses this is unconfirmed
                f"Deployment {deployment.name} has traffic; remove it from the endpoint's "
                "traffic first."
            )
        deployment.state = "Deleting"

        def gone() -> tuple[str, None]:
            endpoint.deployments.pop(deployment.name.lower(), None)
            return "Succeeded", None

        deployment.op = self._new_op("odidp", self.quirks.delete_seconds, gone)
        return Response(status_code=202, headers=self._location_headers(deployment.op))

    async def _prepare(self, endpoint: str, name: str, model: str, version: str) -> dict[str, Any]:
        """What the container will do: download the model, check the 2026 no-code score script's
        environment (D§1), load it with mlflow.pyfunc. Decided now, shown when the LRO ends."""
        logs = [f"{_STORAGE}: {_iso(time.time())} downloading model {model}:{version}"]
        got = await self.standin.client.get(
            "/api/2.0/mlflow/model-versions/get", params={"name": model, "version": version}
        )
        if got.status_code != 200:
            asset = f"azureml://locations/{self.standin.config.location}/workspaces/{self.standin.config.workspace_id}/models/{model}/versions/{version}"
            return _failed(logs, "ModelRegistryError", f"Could not find asset with ID: {asset}")
        source = got.json()["model_version"]["source"]
        folder = os.path.join(self.model_root, f"{endpoint}-{name}-{uuid.uuid4().hex[:8]}")
        try:
            count = await asyncio.to_thread(self._download, source, folder)
        except Exception as exc:
            return _failed(logs, "BadArgument", f"Unable to download user model: {exc}")
        if not count or not os.path.exists(os.path.join(folder, "MLmodel")):
            return _failed(logs, "BadArgument", "Unable to download user model: no MLmodel file.")
        logs.append(f"{_STORAGE}: {count} files downloaded")
        crash = (
            "User container has crashed or terminated: Liveness probe failed: HTTP probe failed "
            "with statuscode: 502"
        )
        conda = os.path.join(folder, "conda.yaml")
        env_text = Path(conda).read_text() if os.path.exists(conda) else ""
        if self.quirks.score_script_2026:
            if "azureml-ai-monitoring" not in env_text:
                logs.append(
                    'Traceback (most recent call last):\n  File "/var/azureml-server/'
                    'score.py", line 9, in <module>\n    from azureml.ai.monitoring '
                    "import Collector\nModuleNotFoundError: No module named 'azureml.ai'"
                )
                return _failed(logs, "ResourceNotReady", crash)
            if re.search(r"^\s*-\s*mlflow\s*(==|>=|~=)\s*3", env_text, re.M):
                logs.append("mlflow 3.x in the model environment: the inference server exits")
                return _failed(logs, "BadArgument", crash)
        try:
            loaded = await asyncio.to_thread(_load_pyfunc, folder)
        except Exception:
            logs.append(traceback.format_exc())
            return _failed(logs, "ResourceNotReady", crash)
        logs.append("Inference server: model loaded; listening on 5001")
        return {"error": None, "logs": logs, "model": loaded}

    def _download(self, source: str, folder: str) -> int:
        """The version's files: `runs:/<azure run>/<path>` -> the run's artifact records."""
        if not source.startswith("runs:/"):
            raise ValueError(f"unsupported source {source}")
        run_id, _, path = source[len("runs:/") :].partition("/")
        container = run_container(run_id)
        prefix = path.rstrip("/") + "/" if path else ""
        service = self.standin.blob_container()
        count = 0
        for record in self.standin.index.records(RUN_ORIGIN, container):
            rel = record["path"]
            if not rel.startswith(prefix):
                continue
            target = os.path.join(folder, rel[len(prefix) :])
            os.makedirs(os.path.dirname(target), exist_ok=True)
            data = service.download_blob(blob_name(RUN_ORIGIN, container, rel)).readall()
            with open(target, "wb") as out:
                out.write(data)
            count += 1
        return count

    # ------------------------------------------------------------------------- scoring

    async def score(self, request: Request, endpoint_name: str) -> Response:
        """D§3: `input_data` in, records-orient JSON out; 401/404/424 as Azure."""
        self.tick()
        endpoint = self.endpoints.get(endpoint_name.lower())
        if endpoint is None or endpoint.state == "Deleting":
            return errors.json_response({"message": "Endpoint not found"}, 404)
        header = request.headers.get("authorization", "")
        credential = header[7:].strip() if header.lower().startswith("bearer ") else ""
        valid = credential in endpoint.keys or endpoint.tokens.get(credential, 0) > time.time()
        if not credential or not valid:
            return errors.json_response({"message": "Unauthorized"}, 401)
        chosen = request.headers.get("azureml-model-deployment")
        if chosen:
            deployment = endpoint.deployments.get(chosen.lower())
            if deployment is None or deployment.model is None:
                return errors.json_response({"message": f"Deployment {chosen} not found"}, 404)
        else:
            traffic = {
                k: int(v)
                for k, v in (endpoint.body["properties"].get("traffic") or {}).items()
                if int(v) > 0
            }
            if not traffic:
                return errors.json_response(
                    {
                        "message": "No valid deployments to route to. Please check that the "
                        "endpoint has at least one deployment with positive weight values or "
                        "use a deployment specific header to route."
                    },
                    404,
                )
            pick = random.choices(list(traffic), weights=list(traffic.values()))[0]
            deployment = endpoint.deployments.get(pick.lower())
            if deployment is None or deployment.model is None:
                return errors.json_response({"message": "upstream not ready"}, 503)
        payload = _json(await request.body())
        headers = {"azureml-model-deployment": deployment.name}
        if payload is None or "input_data" not in payload:
            return _model_error(
                400, "The request body must have a top-level input_data key.", headers
            )
        try:
            result = await asyncio.to_thread(_predict, deployment.model, payload)
        except Exception as exc:
            return _model_error(400, f"{type(exc).__name__}: {exc}", headers)
        return errors.json_response(result, 200, headers)

    # ------------------------------------------------------------------------- shapes

    def _endpoint_json(self, endpoint: Endpoint) -> dict[str, Any]:
        config = self.standin.config
        arm_id = f"{self._scope()}/onlineEndpoints/{endpoint.name}"
        props = dict(endpoint.body.get("properties") or {})
        own = dict(props.get("properties") or {})
        if endpoint.op is not None:
            own["AzureAsyncOperationUri"] = self._op_url(endpoint.op)
        own["azureml.onlineendpointid"] = arm_id.lower()
        props.update(
            {
                "properties": own,
                "provisioningState": endpoint.state,
                "traffic": props.get("traffic") or {},
                "scoringUri": f"{self._base()}/_inference/{endpoint.name}/score",
                "swaggerUri": f"{self._base()}/_inference/{endpoint.name}/swagger.json",
            }
        )
        return {
            "id": arm_id,
            "name": endpoint.name,
            "type": "Microsoft.MachineLearningServices/workspaces/onlineEndpoints",
            "kind": "Managed",
            "location": config.location,
            "tags": endpoint.body.get("tags") or {},
            "identity": endpoint.body.get("identity") or {"type": "SystemAssigned"},
            "properties": props,
        }

    def _deployment_json(self, endpoint: Endpoint, deployment: Deployment) -> dict[str, Any]:
        props = dict(deployment.body.get("properties") or {})
        props["provisioningState"] = deployment.state
        props.setdefault("endpointComputeType", "Managed")
        props.setdefault(
            "requestSettings", {"requestTimeout": "PT5S", "maxConcurrentRequestsPerInstance": 1}
        )
        return {
            "id": f"{self._scope()}/onlineEndpoints/{endpoint.name}/deployments/{deployment.name}",
            "name": deployment.name,
            "type": "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments",
            "kind": "Managed",
            "location": self.standin.config.location,
            "tags": deployment.body.get("tags") or {},
            "sku": deployment.body.get("sku"),
            "properties": props,
        }

    def state(self) -> dict[str, Any]:
        """For `/_standin/online`: what exists, for tests' "nothing left behind"."""
        self.tick()
        return {
            "endpoints": [
                {
                    "name": e.name,
                    "state": e.state,
                    "tags": e.body.get("tags") or {},
                    "traffic": e.body["properties"].get("traffic") or {},
                    "deployments": [
                        {
                            "name": d.name,
                            "state": d.state,
                            "model": d.body.get("properties", {}).get("model"),
                            "instance_type": d.body.get("properties", {}).get("instanceType"),
                            "instance_count": (d.body.get("sku") or {}).get("capacity"),
                            "cores": d.cores,
                        }
                        for d in e.deployments.values()
                    ],
                }
                for e in self.endpoints.values()
            ]
        }

    def clear(self) -> None:
        self.endpoints.clear()
        self.operations.clear()
        shutil.rmtree(self.model_root, ignore_errors=True)
        os.makedirs(self.model_root, exist_ok=True)


def _failed(logs: list[str], code: str, message: str) -> dict[str, Any]:
    logs.append(f"{code}: {message}")
    return {"error": {"code": code, "message": message}, "logs": logs, "model": None}


def _bad_request(message: str) -> Response:
    return errors.arm_error(400, "BadRequest", message)


def _model_error(status: int, reason: str, headers: dict[str, str]) -> Response:
    """D§3: the model answered non-200 -> 424 with the model's status in headers."""
    headers = {
        **headers,
        "ms-azureml-model-error-statuscode": str(status),
        "ms-azureml-model-error-reason": reason[:200].replace("\n", " "),
    }
    return errors.json_response({"message": reason}, 424, headers)


def _json(body: bytes) -> dict[str, Any] | None:
    import json

    if not body:
        return None
    try:
        value = json.loads(body)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + "Z"


def _load_pyfunc(folder: str) -> Any:
    import mlflow.pyfunc

    return mlflow.pyfunc.load_model(folder)


def _predict(model: Any, payload: dict[str, Any]) -> Any:
    """Microsoft's no-code score script (D§3): a split dict -> DataFrame, else an array."""
    import numpy as np
    import pandas as pd

    data = payload["input_data"]
    if isinstance(data, dict) and {"columns", "index", "data"} <= data.keys():
        frame: Any = pd.DataFrame(data["data"], columns=data["columns"], index=data["index"])
    elif isinstance(data, dict) and "data" in data:
        frame = pd.DataFrame(data["data"], columns=data.get("columns"))
    else:
        frame = np.array(data)
    params = payload.get("params")
    result = model.predict(frame, params=params) if params else model.predict(frame)
    if isinstance(result, pd.DataFrame):
        return result.to_dict(orient="records")
    if isinstance(result, pd.Series | np.ndarray):
        return result.tolist()
    return result
