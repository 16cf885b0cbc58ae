"""The `tether` target of MLflow's deployments API (entry point `mlflow.deployments`).

`mlflow deployments create|get|list|predict|delete|update|update-endpoint -t tether` and
`mlflow.deployments.get_deploy_client("tether")` call the Tether at MLFLOW_TRACKING_URI
(`/api/2.0/tether/deployments/*`) with MLflow's own HTTP helper, so MLflow's credentials
(MLFLOW_TRACKING_TOKEN, basic auth, TLS settings) apply. Nothing from Azure on the client:
Tether holds the identity and makes the ARM calls.

Imported only by an MLflow client process: it is not part of the server.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from mlflow.deployments import BaseDeploymentClient, PredictionsResponse
from mlflow.exceptions import MlflowException
from mlflow.tracking import get_tracking_uri
from mlflow.utils.credentials import get_default_host_creds
from mlflow.utils.rest_utils import http_request, verify_rest_response

PREFIX = "/api/2.0/tether/deployments"
WAIT_S = 3600.0  # azureml-mlflow waits as long for a deployment (D§2)
TERMINAL = {"READY", "FAILED", "DELETED"}


def _creds() -> Any:
    return get_default_host_creds(get_tracking_uri())  # type: ignore[no-untyped-call]


def _call(method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"json": body} if method == "POST" else {"params": body}
    response = http_request(  # type: ignore[no-untyped-call]
        _creds(), f"{PREFIX}/{path}", method, **kwargs
    )
    response = verify_rest_response(response, f"{PREFIX}/{path}")
    result: dict[str, Any] = response.json()
    return result


def _flat(config: dict[str, Any] | None) -> dict[str, str]:
    return {str(k): str(v) for k, v in (config or {}).items()}


class TetherDeploymentClient(BaseDeploymentClient):
    """Deployments of Tether's registered models to Azure ML managed online endpoints."""

    def __init__(self, target_uri: str) -> None:
        super().__init__(target_uri)  # type: ignore[no-untyped-call]
        self.wait_s = WAIT_S
        self.poll_s = 2.0

    def _wait(self, name: str, until: set[str]) -> dict[str, Any]:
        deadline = time.monotonic() + self.wait_s
        last = None
        while True:
            try:
                found = _call("GET", "get", {"name": name})["deployment"]
            except MlflowException as exc:
                if "DELETED" in until and exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                    return {"name": name, "state": "DELETED"}
                raise
            state = found["state"]
            if state != last:  # progress while waiting
                print(f"Deployment {name}: {state}", file=sys.stderr, flush=True)
                last = state
            if state in until:
                return dict(found)
            if time.monotonic() > deadline:
                raise MlflowException(f"Deployment {name} is still {state} after {self.wait_s} s")
            time.sleep(self.poll_s)

    def _finished(self, found: dict[str, Any]) -> dict[str, Any]:
        if found["state"] == "FAILED":
            raise MlflowException(
                f"Deployment {found['name']} failed: {found.get('error', 'unknown reason')}"
                + (f"\n{found['logs']}" if found.get("logs") else "")
            )
        return found

    def create_deployment(
        self,
        name: str,
        model_uri: str,
        flavor: str | None = None,
        config: dict[str, Any] | None = None,
        endpoint: str | None = None,
    ) -> dict[str, Any]:
        if flavor not in (None, "python_function"):
            raise MlflowException(f"Only the python_function flavor deploys (got {flavor}).")
        body = {"name": name, "model_uri": model_uri, "config": _flat(config)}
        if endpoint:
            body["endpoint"] = endpoint
        _call("POST", "create", body)
        return self._finished(self._wait(name, TERMINAL))

    def update_deployment(
        self,
        name: str,
        model_uri: str | None = None,
        flavor: str | None = None,
        config: dict[str, Any] | None = None,
        endpoint: str | None = None,
    ) -> dict[str, Any]:
        """A new model version (`model_uri`) and/or `instance_count` in place; returns when
        Azure ML serves it. A failed update leaves the previous deployment serving."""
        if flavor not in (None, "python_function"):
            raise MlflowException(f"Only the python_function flavor deploys (got {flavor}).")
        body: dict[str, Any] = {"name": name, "config": _flat(config)}
        if model_uri:
            body["model_uri"] = model_uri
        _call("POST", "update", body)
        done = self._finished(self._wait(name, {"READY", "FAILED", "DELETED"}))
        if done.get("error"):
            raise MlflowException(
                f"Deployment {name}: {done['error']}"
                + (f"\n{done['logs']}" if done.get("logs") else "")
            )
        return done

    def delete_deployment(
        self, name: str, config: dict[str, Any] | None = None, endpoint: str | None = None
    ) -> None:
        # MLflow's contract: deletion is idempotent, so a deployment that is already gone
        # (a retried delete, or one removed meanwhile) is not an error for the client.
        try:
            _call("POST", "delete", {"name": name})
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return
            raise
        found = self._wait(name, {"DELETED", "FAILED"})
        if found["state"] == "FAILED":
            raise MlflowException(f"Deleting {name} failed: {found.get('error')}")

    def list_deployments(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        deployments: list[dict[str, Any]] = _call(
            "GET", "list", {"endpoint": endpoint} if endpoint else None
        )["deployments"]
        return deployments

    def get_deployment(self, name: str, endpoint: str | None = None) -> dict[str, Any]:
        found: dict[str, Any] = _call("GET", "get", {"name": name})["deployment"]
        return found

    def predict(
        self, deployment_name: str | None = None, inputs: Any = None, endpoint: str | None = None
    ) -> PredictionsResponse:
        if deployment_name is None:
            raise MlflowException("predict needs deployment_name")
        body = {"name": deployment_name, "inputs": _input_data(inputs)}
        return PredictionsResponse(_call("POST", "predict", body))

    def update_endpoint(
        self, endpoint: str, config: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        given = (config or {}).get("traffic") or {}
        if isinstance(given, str):  # the CLI's -C traffic='{"blue": 100}'
            try:
                given = json.loads(given)
            except ValueError:
                raise MlflowException(f"traffic must be a JSON object, got {given!r}") from None
        if not isinstance(given, dict):
            raise MlflowException("update_endpoint takes config={'traffic': {name: percent}}")
        traffic = {str(k): int(v) for k, v in given.items()}
        found = _call("POST", "update-endpoint", {"endpoint": endpoint, "traffic": traffic})
        name = found["deployment"]["name"]
        done = self._finished(self._wait(name, {"READY", "FAILED", "DELETED"}))
        if done.get("error"):
            raise MlflowException(f"Changing the traffic of {endpoint} failed: {done['error']}")
        return done

    def list_endpoints(self) -> list[dict[str, Any]]:
        endpoints: dict[str, dict[str, Any]] = {}
        for d in self.list_deployments():
            endpoints.setdefault(d["endpoint"], {"name": d["endpoint"], "deployments": []})
            endpoints[d["endpoint"]]["deployments"].append(d["name"])
        return list(endpoints.values())


def _input_data(inputs: Any) -> Any:
    """Azure's MLflow scoring takes `input_data`: a DataFrame in split orientation with its
    index (D§3), an array as nested lists."""
    import pandas as pd

    if isinstance(inputs, pd.DataFrame):  # pandas' own JSON: numpy scalars, dates, NaN
        split: dict[str, Any] = json.loads(inputs.to_json(orient="split", date_format="iso"))
        return split
    if hasattr(inputs, "tolist"):
        return inputs.tolist()
    return inputs


def run_local(
    target: str, name: str, model_uri: str, flavor: Any = None, config: Any = None
) -> None:
    raise MlflowException(
        "The tether target deploys to Azure ML only; to serve locally use "
        f"`mlflow models serve -m {model_uri}`."
    )


def target_help() -> str:
    return (
        "Deploy models registered in Tether to Azure ML managed online endpoints. Set "
        "MLFLOW_TRACKING_URI to the Tether server; target URI: tether. Config (-C): "
        "instance_type (default Standard_DS3_v2), instance_count (default 1), keep_failed. "
        "update -m models:/NAME/VERSION and/or -C instance_count=N changes a deployment in "
        "place (the instance type is fixed at creation). "
        "Without --endpoint a new endpoint named after the deployment takes 100% of traffic; "
        "with --endpoint the deployment joins a Tether endpoint at 0% until update-endpoint "
        "-C traffic='{\"name\": 100}'. Instances are billed while they exist."
    )
