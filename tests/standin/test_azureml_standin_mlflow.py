"""The MLflow REST API through the workspace prefixes, ARM discovery, and error shapes
(docs/azureml-protocol.md §2.1, §2.3, §4.1, §5.1, §7.2)."""

from __future__ import annotations

import ssl
import time
from urllib.parse import urlsplit

import httpx
import pytest

from standin.helpers import AzClient, unique
from standin.workspace import AzuremlWorkspace


def test_arm_discovery_gives_the_tracking_uri(
    az: AzClient, azureml_workspace: AzuremlWorkspace
) -> None:
    ws = azureml_workspace
    response = az.http.get(
        f"{ws.arm_endpoint}{ws.scope}",
        params={"api-version": "2024-10-01"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["properties"]["mlFlowTrackingUri"] == ws.tracking_uri
    assert body["properties"]["workspaceId"] == ws.workspace_id
    assert body["id"] == ws.scope
    # The worker keeps only the netloc and builds https://<netloc> (docs/azureml-protocol.md §2.3).
    assert f"https://{urlsplit(ws.tracking_uri).netloc}" == ws.https_base


def test_arm_errors(az: AzClient, azureml_workspace: AzuremlWorkspace) -> None:
    ws = azureml_workspace
    missing_version = az.http.get(ws.scope)
    assert missing_version.status_code == 400
    assert missing_version.json()["error"]["code"] == "MissingApiVersionParameter"
    other = az.http.get(ws.scope.replace(ws.workspace_name, "nope"), params={"api-version": "1"})
    assert other.status_code == 404
    assert other.json()["error"]["code"] == "ResourceNotFound"
    # Resource ids are case-insensitive in ARM.
    assert az.http.get(ws.scope.lower(), params={"api-version": "1"}).status_code == 200


@pytest.mark.parametrize("version", ["v1.0", "v2.0"])
def test_tracking_round_trip_through_both_prefixes(
    azureml_workspace: AzuremlWorkspace, token: str, version: str
) -> None:
    az = AzClient(azureml_workspace, token, version)
    try:
        experiment_id = az.experiment()
        run = az.run(experiment_id, run_name="first", start_time=1_700_000_000_000)
        run_id = run["info"]["run_id"]
        az.ok(
            "POST",
            "runs/log-batch",
            {
                "run_id": run_id,
                "metrics": [
                    {"key": "loss", "value": 0.5, "timestamp": 1_700_000_000_100, "step": s}
                    for s in range(3)
                ],
                "params": [{"key": "lr", "value": "0.1"}],
                "tags": [{"key": "team", "value": "tether"}],
            },
        )
        got = az.ok("GET", "runs/get", {"run_id": run_id})["run"]
        assert {p["key"]: p["value"] for p in got["data"]["params"]} == {"lr": "0.1"}
        assert {"key": "team", "value": "tether"} in got["data"]["tags"]
        history = az.ok("GET", "metrics/get-history", {"run_id": run_id, "metric_key": "loss"})
        assert [m["step"] for m in history["metrics"]] == [0, 1, 2]
    finally:
        az.close()


def test_fidelity_with_the_inner_mlflow(az: AzClient, azureml_workspace: AzuremlWorkspace) -> None:
    """Apart from the artifact URI, the front returns what MLflow returns."""
    run = az.run(run_name="same")
    run_id = run["info"]["run_id"]
    front = az.ok("GET", "runs/get", {"run_id": run_id})["run"]
    inner = httpx.get(
        f"{azureml_workspace.mlflow_url}/api/2.0/mlflow/runs/get", params={"run_id": run_id}
    ).json()["run"]
    assert inner["info"]["artifact_uri"].startswith(azureml_workspace.placeholder_root)
    front["info"].pop("artifact_uri")
    inner["info"].pop("artifact_uri")
    assert front == inner


def test_ids_are_server_assigned_and_artifact_uri_is_azures(
    az: AzClient, azureml_workspace: AzuremlWorkspace
) -> None:
    experiment_id = az.experiment()
    run = az.run(experiment_id)["info"]
    assert len(run["run_id"]) == 32 and run["run_id"] != az.run(experiment_id)["info"]["run_id"]
    assert run["artifact_uri"] == (
        f"azureml://{azureml_workspace.netloc}/mlflow/v2.0{azureml_workspace.scope}"
        f"/experiments/{experiment_id}/runs/{run['run_id']}/artifacts"
    )
    experiment = az.ok("GET", "experiments/get", {"experiment_id": experiment_id})["experiment"]
    assert experiment["artifact_location"].endswith(f"/experiments/{experiment_id}")
    azureml_workspace.quirks(rewrite_artifact_uri=False)
    plain = az.ok("GET", "runs/get", {"run_id": run["run_id"]})["run"]["info"]["artifact_uri"]
    assert plain.startswith(azureml_workspace.placeholder_root)


def test_mlflow_errors_are_azure_shaped(az: AzClient, azureml_workspace: AzuremlWorkspace) -> None:
    missing = az.get("runs/get", {"run_id": "0" * 32})
    assert missing.status_code == 404
    body = missing.json()
    assert body["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert "message" not in body  # MLflow clients print "<code>: Response: {...}" (§7.2)
    assert set(body) >= {"Error", "Correlation", "Environment", "Location", "Time", "ComponentName"}
    assert body["statusCode"] == 404 and body["Error"]["Message"]
    name = unique()
    az.experiment(name)
    duplicate = az.post("experiments/create", {"name": name})
    assert duplicate.status_code == 400
    assert duplicate.json()["error_code"] == "RESOURCE_ALREADY_EXISTS"

    azureml_workspace.quirks(azure_error_bodies=False)
    plain = az.get("runs/get", {"run_id": "0" * 32}).json()
    assert plain["error_code"] == "RESOURCE_DOES_NOT_EXIST" and "message" in plain


def test_unknown_routes_are_404_with_an_empty_body(
    az: AzClient, azureml_workspace: AzuremlWorkspace
) -> None:
    ws = azureml_workspace
    for url in [
        f"{az.api}/no-such-endpoint",
        f"{ws.https_base}/mlflow/v2.0{ws.scope}/ajax-api/2.0/mlflow/runs/search",
        f"{ws.https_base}/not-azure-at-all",
    ]:
        response = az.http.get(url)
        assert (response.status_code, response.content) == (404, b""), url


def test_another_workspace_is_not_found(az: AzClient, azureml_workspace: AzuremlWorkspace) -> None:
    other = az.api.replace(azureml_workspace.workspace_name, "other-ws")
    response = az.http.post(f"{other}/experiments/search", json={"max_results": 1})
    assert response.status_code == 404
    assert response.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def test_tls_is_real_and_plain_http_serves_the_same(
    azureml_workspace: AzuremlWorkspace, token: str
) -> None:
    ws = azureml_workspace
    with (
        httpx.Client(verify=ssl.create_default_context(), trust_env=False) as untrusting,
        pytest.raises(httpx.ConnectError),
    ):
        untrusting.get(f"{ws.https_base}/health")
    headers = {"Authorization": f"Bearer {token}"}
    response = httpx.post(
        f"{ws.mlflow_api(base=ws.http_base)}/experiments/search",
        json={"max_results": 1},
        headers=headers,
        trust_env=False,
    )
    assert response.status_code == 200, response.text


def test_async_logging(az: AzClient, azureml_workspace: AzuremlWorkspace) -> None:
    run_id = az.run()["info"]["run_id"]
    preview = az.api.replace("/api/2.0/mlflow", "/api/2.0/preview/mlflow")
    metrics = [{"key": "m", "value": float(i), "timestamp": 1, "step": i} for i in range(5)]
    azureml_workspace.quirks(async_logging_delay=60)
    started = az.http.post(
        f"{preview}/runs/log-batch-async", json={"run_id": run_id, "metrics": metrics}
    )
    assert started.status_code == 200, started.text
    tracking_id = started.json()["batch_tracking_id"]
    status_url = f"{preview}/runs/get-run-data-status"
    params = {"run_id": run_id, "batch_tracking_id": tracking_id}
    assert az.http.get(status_url, params=params).json() == {"is_complete": False}
    azureml_workspace.quirks(async_logging_delay=0.1)  # read when asked, like the registry's
    time.sleep(0.15)
    assert az.http.get(status_url, params=params).json() == {"is_complete": True}
    history = az.ok("GET", "metrics/get-history", {"run_id": run_id, "metric_key": "m"})
    assert len(history["metrics"]) == 5
    unknown = az.http.get(status_url, params={"run_id": run_id, "batch_tracking_id": "x"})
    assert unknown.status_code == 404


def test_the_real_mlflow_client_meets_azures_limits(
    monkeypatch: pytest.MonkeyPatch, azureml_workspace: AzuremlWorkspace, token: str
) -> None:
    """MLflow's own client through the prefix, failing where users report it fails on Azure:
    get_metric_history pages with max_results=25000 (mlflow#10694), and a log_batch of more
    than 250 metrics (mlflow#11462)."""
    from mlflow.entities import Metric
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    ws = azureml_workspace
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token)
    monkeypatch.setenv("MLFLOW_TRACKING_SERVER_CERT_PATH", ws.ca_file)
    client = MlflowClient(tracking_uri=f"{ws.https_base}/mlflow/v2.0{ws.scope}")
    experiment_id = client.create_experiment(unique())
    run = client.create_run(experiment_id, run_name="via-mlflow")
    client.log_metric(run.info.run_id, "loss", 0.25, step=1)
    assert client.get_run(run.info.run_id).data.metrics == {"loss": 0.25}
    assert run.info.artifact_uri.startswith(f"azureml://{ws.netloc}/mlflow/v2.0/")
    with pytest.raises(MlflowException, match="MaxResults = 25000 is invalid"):
        client.get_metric_history(run.info.run_id, "loss")
    metrics = [Metric("m", 1.0, 1, step) for step in range(251)]
    with pytest.raises(MlflowException, match="Limit=250, Size=251"):
        client.log_batch(run.info.run_id, metrics=metrics)
