"""Helpers of the deployment tests: train and register a model with the stock client, run
`mlflow deployments ... -t tether`, read and wait on a deployment through the REST API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

TRAIN = """
import sys, mlflow, numpy as np
from sklearn.linear_model import LogisticRegression
name, pip, flip = sys.argv[1], sys.argv[2].split(","), sys.argv[3] == "flip"
mlflow.set_experiment("deploy-e2e")
X = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0], [3.0, 0.0]]); y = np.array([0, 0, 1, 1])
y = 1 - y if flip else y  # a version that answers the opposite
with mlflow.start_run():
    mlflow.sklearn.log_model(LogisticRegression().fit(X, y), name="model",
                             registered_model_name=name, pip_requirements=pip)
"""
GOOD_PIP = "mlflow<3,scikit-learn,azureml-ai-monitoring"

CRASHY = """
import sys, mlflow
class Crashy(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        raise RuntimeError("cannot load the weights")
    def predict(self, context, model_input):
        return model_input
with mlflow.start_run():
    mlflow.pyfunc.log_model(name="model", python_model=Crashy(), registered_model_name=sys.argv[1],
                            pip_requirements=["mlflow<3", "azureml-ai-monitoring"])
"""
CLIENT = """
import json, sys, mlflow, numpy as np, pandas as pd
from mlflow.deployments import get_deploy_client
name, model, action = sys.argv[1:4]
client = get_deploy_client("tether")
rows = pd.DataFrame([[0.5, 1.0], [2.5, 0.0], [3.0, 1.0]], columns=["0", "1"])
if action == "predict":
    got = client.predict(name, rows)["predictions"]
    local = mlflow.pyfunc.load_model(model).predict(rows.to_numpy())
    print(json.dumps({"remote": got, "local": local.tolist()}))
elif action == "get":
    print(json.dumps(client.get_deployment(name)))
"""


def env(
    url: str, workspace: str | None = None, auth: tuple[str, str] | None = None
) -> dict[str, str]:
    found = {
        "MLFLOW_TRACKING_URI": url,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
        "PATH": os.path.dirname(sys.executable) + ":/usr/bin:/bin",
    }
    if workspace is not None:  # the stock client sends it as X-MLFLOW-WORKSPACE
        found["MLFLOW_WORKSPACE"] = workspace
    if auth is not None:  # a server with authentication on: the stock client signs in so
        found["MLFLOW_TRACKING_USERNAME"], found["MLFLOW_TRACKING_PASSWORD"] = auth
    return found


def run(
    args: list[str],
    url: str,
    timeout: float = 200,
    workspace: str | None = None,
    auth: tuple[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, capture_output=True, text=True, timeout=timeout, env=env(url, workspace, auth)
    )


def mlflow(*args: str, url: str, workspace: str | None = None) -> subprocess.CompletedProcess[str]:
    return run(
        [sys.executable, "-m", "mlflow", "deployments", *args, "-t", "tether"],
        url,
        workspace=workspace,
    )


def train(
    url: str,
    name: str,
    pip: str = GOOD_PIP,
    *,
    flip: bool = False,
    workspace: str | None = None,
    auth: tuple[str, str] | None = None,
) -> None:
    args = [sys.executable, "-c", TRAIN, name, pip, "flip" if flip else "same"]
    done = run(args, url, workspace=workspace, auth=auth)
    assert done.returncode == 0, done.stderr


def deployment(server: Any, name: str) -> dict[str, Any]:
    with server.rest() as rest:
        response = rest.get("/api/2.0/tether/deployments/get", {"name": name})
    assert response.status == 200, response.text
    found: dict[str, Any] = response.json["deployment"]
    return found


def wait_state(server: Any, name: str, states: set[str], timeout: float = 150) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        found = deployment(server, name)
        if found["state"] in states:
            return found
        assert time.monotonic() < deadline, found
        time.sleep(0.2)


def predictions(
    url: str, name: str, model_uri: str, workspace: str | None = None
) -> tuple[Any, Any]:
    """(what deployment `name` answers through the plugin, what `model_uri` predicts locally)
    for the same three rows, in `workspace` (MLFLOW_WORKSPACE) when given."""
    got = run([sys.executable, "-c", CLIENT, name, model_uri, "predict"], url, workspace=workspace)
    assert got.returncode == 0, got.stderr
    answer = json.loads(got.stdout.strip().splitlines()[-1])
    return answer["remote"], answer["local"]
