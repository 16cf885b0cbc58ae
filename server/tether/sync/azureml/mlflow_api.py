"""The MLflow REST endpoints of the workspace the sync worker uses, one method each.

Thin on purpose: bodies as MLflow's REST API defines them, idempotency declared per call
(docs/azureml-protocol.md §7.3), and the few answers a handler must tell apart turned into values
(`None` for "no such experiment") or `Unsupported` (an endpoint Azure does not serve, §4.1).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tether.sync.azureml.client import AzureMLClient
from tether.sync.azureml.errors import PermanentError
from tether.sync.azureml.workspace import Workspace


class Unsupported(PermanentError):
    """The workspace has no such endpoint (404 without an MLflow error), e.g. runs/restore."""


def _kv(items: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in items.items()]


class AzureMLflow:
    def __init__(self, client: AzureMLClient, workspace: Workspace) -> None:
        self.client = client
        self.workspace = workspace

    def _call(
        self,
        method: str,
        endpoint: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        idempotent: bool = True,
    ) -> Any:
        url = f"{self.workspace.mlflow_api}/{endpoint}"
        try:
            return self.client.call(method, url, json=json, params=params, idempotent=idempotent)
        except PermanentError as exc:
            if exc.status == 404 and exc.error_code is None:
                raise Unsupported(exc.reason, status=404) from exc
            raise

    # Experiments --------------------------------------------------------------------------

    def get_experiment_by_name(self, name: str) -> dict[str, Any] | None:
        try:
            body = self._call("GET", "experiments/get-by-name", params={"experiment_name": name})
        except PermanentError as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise
        experiment: dict[str, Any] = body["experiment"]
        return experiment

    def get_experiment(self, experiment_id: str) -> dict[str, Any]:
        body = self._call("GET", "experiments/get", params={"experiment_id": experiment_id})
        experiment: dict[str, Any] = body["experiment"]
        return experiment

    def create_experiment(self, name: str, tags: dict[str, str]) -> str:
        """Not idempotent; the caller looks the name up after an AmbiguousError."""
        body = self._call(
            "POST", "experiments/create", json={"name": name, "tags": _kv(tags)}, idempotent=False
        )
        return str(body["experiment_id"])

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        body = {"experiment_id": experiment_id, "key": key, "value": value}
        self._call("POST", "experiments/set-experiment-tag", json=body)

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        body = {"experiment_id": experiment_id, "key": key}
        self._call("POST", "experiments/delete-experiment-tag", json=body)

    def delete_experiment(self, experiment_id: str) -> None:
        self._call("POST", "experiments/delete", json={"experiment_id": experiment_id})

    def restore_experiment(self, experiment_id: str) -> None:
        self._call("POST", "experiments/restore", json={"experiment_id": experiment_id})

    # Runs ---------------------------------------------------------------------------------

    def create_run(
        self,
        experiment_id: str,
        *,
        start_time: int | None,
        run_name: str | None,
        user_id: str | None,
        tags: dict[str, str],
    ) -> str:
        """Not idempotent (Azure assigns the id); see `find_runs_by_tag` for the recovery."""
        body: dict[str, Any] = {"experiment_id": experiment_id, "tags": _kv(tags)}
        if start_time is not None:
            body["start_time"] = start_time
        if run_name:
            body["run_name"] = run_name
        if user_id:
            body["user_id"] = user_id
        answer = self._call("POST", "runs/create", json=body, idempotent=False)
        return str(answer["run"]["info"]["run_id"])

    def find_runs_by_tag(self, experiment_id: str, key: str, value: str) -> list[str]:
        """Run ids (any lifecycle stage) carrying tag `key` = `value`, oldest first."""
        body = {
            "experiment_ids": [experiment_id],
            "filter": f"tags.{key} = '{value}'",
            "run_view_type": "ALL",
            "max_results": 10,
            "order_by": ["attributes.start_time ASC"],
        }
        answer = self._call("POST", "runs/search", json=body) or {}
        return [str(run["info"]["run_id"]) for run in answer.get("runs", [])]

    def update_run(
        self, run_id: str, *, status: str | None, end_time: int | None, run_name: str | None
    ) -> None:
        body: dict[str, Any] = {"run_id": run_id}
        if status is not None:
            body["status"] = status
        if end_time is not None:
            body["end_time"] = end_time
        if run_name:
            body["run_name"] = run_name
        self._call("POST", "runs/update", json=body)

    def log_batch(
        self,
        run_id: str,
        *,
        metrics: list[dict[str, Any]] | None = None,
        params: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:
        """Params and tags are idempotent; metric points are appended by Azure [INF], so a
        batch with metrics is sent as non-idempotent (AmbiguousError when in doubt)."""
        body = {
            "run_id": run_id,
            "metrics": metrics or [],
            "params": _kv(params or {}),
            "tags": _kv(tags or {}),
        }
        self._call("POST", "runs/log-batch", json=body, idempotent=not metrics)

    def metric_history(self, run_id: str, key: str) -> list[dict[str, Any]]:
        """Every point of one metric (see `iter_metric_history`)."""
        return list(self.iter_metric_history(run_id, key))

    def iter_metric_history(self, run_id: str, key: str) -> Iterator[dict[str, Any]]:
        """Every point of one metric, read in pages below Azure's 1000
        (docs/azureml-protocol.md §4.2), one page in memory at a time."""
        token: str | None = None
        while True:
            params: dict[str, Any] = {"run_id": run_id, "metric_key": key, "max_results": 999}
            if token:
                params["page_token"] = token
            body = self._call("GET", "metrics/get-history", params=params) or {}
            yield from body.get("metrics", [])
            token = body.get("next_page_token")
            if not token:
                return

    def set_run_tag(self, run_id: str, key: str, value: str) -> None:
        self._call("POST", "runs/set-tag", json={"run_id": run_id, "key": key, "value": value})

    def delete_run_tag(self, run_id: str, key: str) -> None:
        self._call("POST", "runs/delete-tag", json={"run_id": run_id, "key": key})

    def log_inputs(self, run_id: str, datasets: list[dict[str, Any]]) -> None:
        self._call("POST", "runs/log-inputs", json={"run_id": run_id, "datasets": datasets})

    def delete_run(self, run_id: str) -> None:
        self._call("POST", "runs/delete", json={"run_id": run_id})

    def restore_run(self, run_id: str) -> None:
        self._call("POST", "runs/restore", json={"run_id": run_id})

    # Model registry (docs/azureml-protocol.md §6) -------------------------------------------

    def create_registered_model(self, name: str, description: str | None) -> None:
        """Idempotent by name: "already exists" is success (its tags are set separately)."""
        body: dict[str, Any] = {"name": name}
        if description:
            body["description"] = description
        try:  # a resend after a lost response answers "already exists": safe to retry
            self._call("POST", "registered-models/create", json=body)
        except PermanentError as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise

    def update_registered_model(self, name: str, description: str) -> None:
        body = {"name": name, "description": description}
        self._call("PATCH", "registered-models/update", json=body)

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        body = {"name": name, "key": key, "value": value}
        self._call("POST", "registered-models/set-tag", json=body)

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        self._call("DELETE", "registered-models/delete-tag", json={"name": name, "key": key})

    def create_model_version(
        self, name: str, source: str, run_id: str, tags: dict[str, str], description: str | None
    ) -> dict[str, Any]:
        """Not idempotent (Azure numbers versions); see `find_model_versions_by_tag`."""
        body: dict[str, Any] = {"name": name, "source": source, "run_id": run_id}
        body["tags"] = _kv(tags)
        if description:
            body["description"] = description
        answer = self._call("POST", "model-versions/create", json=body, idempotent=False)
        version: dict[str, Any] = answer["model_version"]
        return version

    def get_model_version(self, name: str, version: str) -> dict[str, Any]:
        answer = self._call("GET", "model-versions/get", params={"name": name, "version": version})
        found: dict[str, Any] = answer["model_version"]
        return found

    def find_model_versions_by_tag(self, name: str, key: str, value: str) -> list[dict[str, Any]]:
        """Versions of `name` carrying tag `key` = `value` (filtered here: Azure's search by
        tag is not documented), oldest first."""
        found: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            params: dict[str, Any] = {"filter": f"name='{name}'", "max_results": 200}
            if token:
                params["page_token"] = token
            body = self._call("GET", "model-versions/search", params=params) or {}
            for version in body.get("model_versions", []):
                tags = {t.get("key"): t.get("value") for t in version.get("tags", [])}
                if tags.get(key) == value:
                    found.append(version)
            token = body.get("next_page_token")
            if not token:
                return sorted(found, key=lambda v: int(v["version"]))

    def update_model_version(self, name: str, version: str, description: str) -> None:
        body = {"name": name, "version": version, "description": description}
        self._call("PATCH", "model-versions/update", json=body)

    def transition_stage(self, name: str, version: str, stage: str, archive: bool) -> None:
        body = {
            "name": name,
            "version": version,
            "stage": stage,
            "archive_existing_versions": archive,
        }
        self._call("POST", "model-versions/transition-stage", json=body)

    def set_model_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        body = {"name": name, "version": version, "key": key, "value": value}
        self._call("POST", "model-versions/set-tag", json=body)

    def delete_model_version_tag(self, name: str, version: str, key: str) -> None:
        body = {"name": name, "version": version, "key": key}
        self._call("DELETE", "model-versions/delete-tag", json=body)

    def delete_model_version(self, name: str, version: str) -> None:
        body = {"name": name, "version": version}
        self._call("DELETE", "model-versions/delete", json=body)
