"""Online endpoints of the stand-in (online.py): LROs, traffic, keys, failures, and a scoring
URI whose predictions are the model's own (loaded with mlflow.pyfunc from the workspace's
blobs). Facts: docs/azureml-deploy.md."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from standin.helpers import AzClient, unique
from standin.workspace import AzuremlWorkspace

API = {"api-version": "2025-12-01"}
PUT_HEADERS = {"x-ms-blob-type": "BlockBlob", "If-None-Match": "*"}
GOOD_ENV = ["mlflow<3", "scikit-learn", "azureml-ai-monitoring"]


def _model_folder(tmp_path: Path, pip: list[str]) -> tuple[str, Any]:
    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression

    X = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0], [3.0, 0.0]])
    model = LogisticRegression().fit(X, np.array([0, 0, 1, 1]))
    folder = str(tmp_path / f"model-{len(pip)}-{time.monotonic_ns()}")
    mlflow.sklearn.save_model(model, folder, pip_requirements=pip)
    return folder, model


def _register(az: AzClient, folder: str) -> str:
    """Upload `folder` into a run's artifacts, register it: the version's ARM model id."""
    run = az.run()
    files = {
        os.path.relpath(os.path.join(d, n), folder): os.path.join(d, n)
        for d, _, names in os.walk(folder)
        for n in names
    }
    paths = [f"model/{rel}" for rel in files]
    body = az.http.post(
        az.artifacts_url(run, "/batch/metadata"), json={"paths": [{"path": p} for p in paths]}
    ).json()
    for rel, local in files.items():
        sas = body["artifactContentInformation"][f"model/{rel}"]["contentUri"]
        with open(local, "rb") as f:
            put = httpx.put(sas, content=f.read(), headers=PUT_HEADERS, trust_env=False)
        assert put.status_code == 201, put.text
    name = unique("model")
    az.ok("POST", "registered-models/create", {"name": name})
    source = f"runs:/{run['info']['run_id']}/model"
    version = az.ok(
        "POST",
        "model-versions/create",
        {"name": name, "source": source, "run_id": run["info"]["run_id"]},
    )["model_version"]["version"]
    return f"{az.workspace.scope}/models/{name}/versions/{version}"


def _url(ws: AzuremlWorkspace, tail: str) -> str:
    return f"{ws.https_base}{ws.scope}/onlineEndpoints{tail}"


def _wait_lro(az: AzClient, response: httpx.Response) -> dict[str, Any]:
    """Follow Azure-AsyncOperation to a terminal status (D§2)."""
    assert response.status_code in (200, 201), response.text
    url = response.headers["Azure-AsyncOperation"]
    deadline = time.monotonic() + 60
    while True:
        body: dict[str, Any] = az.http.get(url).json()
        if body["status"] in ("Succeeded", "Failed", "Canceled"):
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.1)


def _wait_location(az: AzClient, response: httpx.Response) -> int:
    assert response.status_code == 202, response.text
    assert int(response.headers["Retry-After"]) >= 1
    deadline = time.monotonic() + 60
    while True:
        polled = az.http.get(response.headers["Location"])
        if polled.status_code != 202:
            return polled.status_code
        assert time.monotonic() < deadline
        time.sleep(0.1)


def _endpoint_body(ws: AzuremlWorkspace, traffic: dict[str, int] | None = None) -> dict[str, Any]:
    props: dict[str, Any] = {"authMode": "Key", "properties": {"tether.managed": "true"}}
    if traffic is not None:
        props["traffic"] = traffic
    return {"location": "standin", "identity": {"type": "SystemAssigned"}, "properties": props}


def _deployment_body(model_id: str, sku: str = "Standard_DS3_v2", n: int = 1) -> dict[str, Any]:
    return {
        "location": "standin",
        "sku": {"name": "Default", "capacity": n},
        "properties": {"endpointComputeType": "Managed", "instanceType": sku, "model": model_id},
    }


def test_deploy_score_traffic_and_delete(
    az: AzClient, azureml_workspace: AzuremlWorkspace, tmp_path: Path
) -> None:
    ws = azureml_workspace
    folder, model = _model_folder(tmp_path, GOOD_ENV)
    model_id = _register(az, folder)
    ep = unique("ep")[:20]
    created = az.http.put(_url(ws, f"/{ep}"), params=API, json=_endpoint_body(ws))
    assert created.status_code == 201
    assert created.json()["properties"]["provisioningState"] == "Creating"
    again = az.http.put(_url(ws, f"/{ep}"), params=API, json=_endpoint_body(ws))
    assert again.status_code == 409, "one operation at a time"
    assert _wait_lro(az, created)["status"] == "Succeeded"
    endpoint = az.http.get(_url(ws, f"/{ep}"), params=API).json()
    assert endpoint["properties"]["provisioningState"] == "Succeeded"
    scoring = endpoint["properties"]["scoringUri"]

    dep = az.http.put(
        _url(ws, f"/{ep}/deployments/blue"), params=API, json=_deployment_body(model_id)
    )
    assert dep.status_code == 201
    assert _wait_lro(az, dep)["status"] == "Succeeded"
    keys = az.http.post(_url(ws, f"/{ep}/listKeys"), params=API).json()
    auth = {"Authorization": f"Bearer {keys['primaryKey']}"}
    rows = [[0.5, 1.0], [2.5, 0.0], [3.0, 1.0]]
    payload = {"input_data": {"columns": [0, 1], "index": [0, 1, 2], "data": rows}}
    http = ws.client()
    assert http.post(scoring, json=payload, headers=auth).status_code == 404, "0 % traffic"
    direct = http.post(scoring, json=payload, headers={**auth, "azureml-model-deployment": "blue"})
    assert direct.status_code == 200, direct.text
    assert direct.json() == model.predict(np.array(rows)).tolist()
    assert http.post(scoring, json=payload).status_code == 401

    traffic = az.http.put(_url(ws, f"/{ep}"), params=API, json=_endpoint_body(ws, {"blue": 100}))
    assert _wait_lro(az, traffic)["status"] == "Succeeded"
    routed = http.post(scoring, json=payload, headers=auth)
    assert routed.status_code == 200 and routed.json() == direct.json()
    assert http.post(scoring, json={"data": rows}, headers=auth).status_code == 424

    refused = az.http.delete(_url(ws, f"/{ep}/deployments/blue"), params=API)
    assert refused.status_code == 400, "a deployment with traffic is not deleted"
    gone = az.http.delete(_url(ws, f"/{ep}"), params=API)
    assert _wait_location(az, gone) == 200
    assert az.http.get(_url(ws, f"/{ep}"), params=API).status_code == 404
    assert ws.online() == []


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("no-monitoring", "ResourceNotReady"),
        ("mlflow3", "BadArgument"),
        ("missing", "ModelRegistryError"),
    ],
)
def test_asynchronous_failures_show_in_the_operation_and_logs(
    az: AzClient, azureml_workspace: AzuremlWorkspace, tmp_path: Path, case: str, code: str
) -> None:
    ws = azureml_workspace
    pip = {
        "no-monitoring": ["mlflow<3", "scikit-learn"],
        "mlflow3": ["mlflow==3.17.2", "scikit-learn", "azureml-ai-monitoring"],
        "missing": GOOD_ENV,
    }[case]
    model_id = _register(az, _model_folder(tmp_path, pip)[0])
    if case == "missing":
        model_id = model_id.rsplit("/", 1)[0] + "/99"
    ep = unique("ep")[:20]
    assert _wait_lro(az, az.http.put(_url(ws, f"/{ep}"), params=API, json=_endpoint_body(ws)))
    dep = az.http.put(
        _url(ws, f"/{ep}/deployments/blue"), params=API, json=_deployment_body(model_id)
    )
    status = _wait_lro(az, dep)
    assert status["status"] == "Failed" and status["error"]["code"] == code, status
    got = az.http.get(_url(ws, f"/{ep}/deployments/blue"), params=API).json()
    assert got["properties"]["provisioningState"] == "Failed"
    logs = az.http.post(_url(ws, f"/{ep}/deployments/blue/getLogs"), params=API, json={"tail": 50})
    assert code in logs.json()["content"]


def test_synchronous_refusals(
    az: AzClient, azureml_workspace: AzuremlWorkspace, tmp_path: Path
) -> None:
    ws = azureml_workspace
    model_id = _register(az, _model_folder(tmp_path, GOOD_ENV)[0])
    bad = az.http.put(_url(ws, "/1-bad"), params=API, json=_endpoint_body(ws))
    assert bad.status_code == 400
    ws.quirks(endpoint_names_taken=["taken-name"])
    taken = az.http.put(_url(ws, "/taken-name"), params=API, json=_endpoint_body(ws))
    assert taken.status_code == 400 and "already an endpoint" in taken.json()["error"]["message"]
    ep = unique("ep")[:20]
    assert _wait_lro(az, az.http.put(_url(ws, f"/{ep}"), params=API, json=_endpoint_body(ws)))
    sku = az.http.put(
        _url(ws, f"/{ep}/deployments/blue"),
        params=API,
        json=_deployment_body(model_id, "Standard_Nope"),
    )
    assert sku.status_code == 400 and "Standard_Nope" in sku.json()["error"]["message"]
    ws.quirks(vcpu_quota=6)
    quota = az.http.put(
        _url(ws, f"/{ep}/deployments/blue"), params=API, json=_deployment_body(model_id)
    )
    assert quota.status_code == 400
    detail = quota.json()["error"]["details"][0]
    assert detail["code"] == "InferencingClientCreateDeploymentFailed"
    assert "Not enough quota available for Standard_DS3_v2" in detail["message"]
    assert [e["deployments"] for e in ws.online()] == [[]], "nothing created"
