"""Each Azure quirk of docs/azureml-protocol.md §8.2 behaves as specified, and can be switched
off (§n: sections of that file)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from standin.helpers import AzClient, unique
from standin.workspace import AzuremlWorkspace


def _limit_error(response: httpx.Response, field: str, limit: int, size: int) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert body["Error"]["Code"] == "ValidationError"
    assert f"FieldName={field}, Limit={limit}, Size={size}." in body["Error"]["Message"]


# ----------------------------------------------------------------- §8.2.1 logged models


def test_logged_models_and_api_3_are_404_empty(
    az: AzClient, azureml_workspace: AzuremlWorkspace
) -> None:
    experiment_id = az.experiment()
    v3 = az.api.replace("/api/2.0/mlflow", "/api/3.0/mlflow")
    calls = [
        az.post("logged-models", {"experiment_id": experiment_id}),
        az.post("logged-models/search", {"experiment_ids": [experiment_id]}),
        az.get("logged-models/m-0123"),
        az.http.post(f"{v3}/traces/search", json={}),
    ]
    assert [(r.status_code, r.content) for r in calls] == [(404, b"")] * 4
    azureml_workspace.quirks(logged_models_404=False)
    created = az.post("logged-models", {"experiment_id": experiment_id})
    assert created.status_code == 200, created.text  # real MLflow behind it


# --------------------------------------------------------------- §8.2.2 experiment names


@pytest.mark.parametrize("name", ["with space", "dotted.name", "_leading", "slash/name"])
def test_experiment_name_charset(
    az: AzClient, azureml_workspace: AzuremlWorkspace, name: str
) -> None:
    refused = az.post("experiments/create", {"name": f"{name}-{unique('x')}"})
    assert refused.status_code == 400
    assert refused.json()["Error"]["Message"].startswith("Experiment name must be 1-256")
    azureml_workspace.quirks(experiment_name_charset=False)
    assert az.post("experiments/create", {"name": f"{name}-{unique('x')}"}).status_code == 200


def test_slash_names_created_but_not_found(
    az: AzClient, azureml_workspace: AzuremlWorkspace
) -> None:
    azureml_workspace.quirks(slash_names_unfindable=True)
    name = f"team/{unique()}"
    experiment_id = az.experiment(name)
    assert az.get("experiments/get", {"experiment_id": experiment_id}).status_code == 200
    by_name = az.get("experiments/get-by-name", {"experiment_name": name})
    assert by_name.status_code == 404
    found = az.ok("POST", "experiments/search", {"max_results": 1000})["experiments"]
    assert experiment_id not in {e["experiment_id"] for e in found}


def test_experiment_rename_refused(az: AzClient, azureml_workspace: AzuremlWorkspace) -> None:
    experiment_id = az.experiment()
    body = {"experiment_id": experiment_id, "new_name": unique()}
    refused = az.post("experiments/update", body)
    assert refused.status_code == 400 and refused.json()["error_code"] == "BAD_REQUEST"
    azureml_workspace.quirks(no_experiment_rename=False)
    assert az.post("experiments/update", body).status_code == 200


# -------------------------------------------------------------------------- §8.2.3 limits


def _metrics(n: int) -> list[dict[str, Any]]:
    return [{"key": f"m{i % 7}", "value": 1.0, "timestamp": 1, "step": i} for i in range(n)]


def test_metrics_per_log_batch(az: AzClient, azureml_workspace: AzuremlWorkspace) -> None:
    run_id = az.run()["info"]["run_id"]
    _limit_error(
        az.post("runs/log-batch", {"run_id": run_id, "metrics": _metrics(251)}),
        "MetricV2Dto.Value/Count",
        250,
        251,
    )
    az.ok("POST", "runs/log-batch", {"run_id": run_id, "metrics": _metrics(250)})
    azureml_workspace.quirks(max_metrics_per_batch=None)
    az.ok("POST", "runs/log-batch", {"run_id": run_id, "metrics": _metrics(300)})


def test_params_per_run(az: AzClient) -> None:
    run_id = az.run()["info"]["run_id"]
    for start in (0, 100):
        params = [{"key": f"p{i}", "value": "v"} for i in range(start, start + 100)]
        az.ok("POST", "runs/log-batch", {"run_id": run_id, "params": params})
    # Re-logging an existing param (same value) adds nothing; a new key is one too many.
    az.ok("POST", "runs/log-batch", {"run_id": run_id, "params": [{"key": "p0", "value": "v"}]})
    _limit_error(
        az.post("runs/log-batch", {"run_id": run_id, "params": [{"key": "new", "value": "v"}]}),
        "Parameters",
        200,
        201,
    )
    _limit_error(
        az.post("runs/log-parameter", {"run_id": run_id, "key": "new", "value": "v"}),
        "Parameters",
        200,
        201,
    )


def test_tags_per_run_count_the_system_tags(az: AzClient) -> None:
    tags = [{"key": f"t{i}", "value": "v"} for i in range(50)]
    # 50 tags + mlflow.runName, which MLflow adds on create (docs/azureml-protocol.md §4.3).
    _limit_error(
        az.post("runs/create", {"experiment_id": az.experiment(), "tags": tags}), "Tags", 50, 51
    )
    run_id = az.run(tags=tags[:49])["info"]["run_id"]
    az.ok("POST", "runs/set-tag", {"run_id": run_id, "key": "t0", "value": "overwrite"})
    _limit_error(
        az.post("runs/set-tag", {"run_id": run_id, "key": "one-more", "value": "v"}),
        "Tags",
        50,
        51,
    )
    _limit_error(
        az.post("runs/log-batch", {"run_id": run_id, "tags": [{"key": "x", "value": "v"}]}),
        "Tags",
        50,
        51,
    )


def test_tag_value_and_key_length(az: AzClient, azureml_workspace: AzuremlWorkspace) -> None:
    run_id = az.run()["info"]["run_id"]
    az.ok("POST", "runs/set-tag", {"run_id": run_id, "key": "ok", "value": "x" * 1000})
    _limit_error(
        az.post("runs/set-tag", {"run_id": run_id, "key": "long", "value": "x" * 1001}),
        "Tags.Value",
        1000,
        1001,
    )
    _limit_error(
        az.post("runs/log-batch", {"run_id": run_id, "tags": [{"key": "k" * 101, "value": "v"}]}),
        "Tags.Key",
        100,
        101,
    )
    azureml_workspace.quirks(max_tag_value_length=None)
    az.ok("POST", "runs/set-tag", {"run_id": run_id, "key": "long", "value": "x" * 1001})


def test_metric_history_max_results(az: AzClient, azureml_workspace: AzuremlWorkspace) -> None:
    run_id = az.run()["info"]["run_id"]
    az.ok("POST", "runs/log-batch", {"run_id": run_id, "metrics": _metrics(3)})
    params = {"run_id": run_id, "metric_key": "m0", "max_results": 1000}
    refused = az.get("metrics/get-history", params)
    assert refused.status_code == 400
    body = refused.json()
    assert body["error_code"] == "BAD_REQUEST" and body["Error"]["Code"] == "UserError"
    assert body["Error"]["Message"] == (
        "MaxResults = 1000 is invalid: MaxResults must be less than 1000."
    )
    assert az.get("metrics/get-history", {**params, "max_results": 999}).status_code == 200
    azureml_workspace.quirks(history_max_results_below=None)
    assert az.get("metrics/get-history", params).status_code == 200


# ------------------------------------------------------------------ §8.2.10 runs/search


@pytest.mark.parametrize(
    "body",
    [
        {"filter": "metrics.a > 1 OR metrics.b > 1"},
        {"filter": "tags.team != 'x'"},
        {"order_by": ["metrics.loss DESC"]},
        {"order_by": ["params.lr"]},
    ],
)
def test_search_restrictions(
    az: AzClient, azureml_workspace: AzuremlWorkspace, body: dict[str, Any]
) -> None:
    experiment_id = az.experiment()
    request = {"experiment_ids": [experiment_id], "max_results": 10, **body}
    refused = az.post("runs/search", request)
    assert refused.status_code == 400 and refused.json()["error_code"] == "BAD_REQUEST"
    if "order_by" in body:
        azureml_workspace.quirks(search_restrictions=False)
        assert az.post("runs/search", request).status_code == 200


def test_allowed_searches_pass(az: AzClient) -> None:
    experiment_id = az.experiment()
    az.run(experiment_id, tags=[{"key": "src", "value": "a OR b"}])
    found = az.ok(
        "POST",
        "runs/search",
        {
            "experiment_ids": [experiment_id],
            "filter": "tags.src = 'a OR b'",
            "order_by": ["attributes.start_time DESC"],
            "max_results": 10,
        },
    )
    assert len(found["runs"]) == 1


# -------------------------------------------------------------------- §8.2.9 registry


def _model_version(az: AzClient, source: str | None = None) -> tuple[str, dict[str, Any]]:
    run_id = az.run()["info"]["run_id"]
    name = unique("model")
    az.ok("POST", "registered-models/create", {"name": name})
    created = az.post(
        "model-versions/create",
        {"name": name, "source": source or f"runs:/{run_id}/model", "run_id": run_id},
    )
    assert created.status_code == 200, created.text
    version: dict[str, Any] = created.json()["model_version"]
    return name, version


def test_model_version_pending_then_ready_after_gets(az: AzClient) -> None:
    name, version = _model_version(az)
    assert version["status"] == "PENDING_REGISTRATION"
    key = {"name": name, "version": version["version"]}
    statuses = [
        az.ok("GET", "model-versions/get", key)["model_version"]["status"] for _ in range(3)
    ]
    assert statuses == ["PENDING_REGISTRATION", "PENDING_REGISTRATION", "READY"]


def test_model_version_pending_for_a_delay(
    az: AzClient, azureml_workspace: AzuremlWorkspace
) -> None:
    azureml_workspace.quirks(registry_pending_gets=0, registry_pending_seconds=60)
    name, version = _model_version(az)
    key = {"name": name, "version": version["version"]}
    assert az.ok("GET", "model-versions/get", key)["model_version"]["status"] == PENDING
    searched = az.ok("GET", "model-versions/search", {"filter": f"name = '{name}'"})
    assert [v["status"] for v in searched["model_versions"]] == [PENDING]
    # The delay is read when asked: shortening it lets the version become READY.
    azureml_workspace.quirks(registry_pending_seconds=0.2)
    time.sleep(0.25)
    assert az.ok("GET", "model-versions/get", key)["model_version"]["status"] == "READY"
    azureml_workspace.quirks(registry_pending_seconds=0)
    assert _model_version(az)[1]["status"] == "READY"


PENDING = "PENDING_REGISTRATION"


def test_model_sources(az: AzClient, azureml_workspace: AzuremlWorkspace) -> None:
    run = az.run()
    _model_version(az, f"{run['info']['artifact_uri']}/model")
    _model_version(az, "azureml://artifacts/LocalUpload/240101T000000-abcd1234/model")
    name = unique("model")
    az.ok("POST", "registered-models/create", {"name": name})
    refused = az.post("model-versions/create", {"name": name, "source": "s3://bucket/model"})
    assert refused.status_code == 400
    assert refused.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_aliases_rename_delete(az: AzClient, azureml_workspace: AzuremlWorkspace) -> None:
    name, version = _model_version(az)
    alias = {"name": name, "alias": "champion", "version": version["version"]}
    set_alias = az.post("registered-models/alias", alias)
    assert (set_alias.status_code, set_alias.content) == (404, b"")
    get_alias = az.get("registered-models/alias", {"name": name, "alias": "champion"})
    assert (get_alias.status_code, get_alias.content) == (404, b"")
    renamed = az.post("registered-models/rename", {"name": name, "new_name": unique("model")})
    assert renamed.status_code == 400
    deleted = az.http.request("DELETE", f"{az.api}/registered-models/delete", json={"name": name})
    assert deleted.status_code == 400
    transition = az.post(
        "model-versions/transition-stage",
        {
            "name": name,
            "version": version["version"],
            "stage": "Staging",
            "archive_existing_versions": False,
        },
    )
    assert transition.status_code == 200, transition.text
    azureml_workspace.quirks(registry_aliases_404=False, registry_no_rename_delete=False)
    assert az.post("registered-models/alias", alias).status_code == 200
