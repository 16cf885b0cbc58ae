"""Helpers of the deployment tests: train and register a model with the stock client, run
`mlflow deployments ... -t tether`, read and wait on a deployment through the REST API."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

TRAIN = """
import sys, mlflow, numpy as np
from sklearn.linear_model import LogisticRegression
name, pip = sys.argv[1], sys.argv[2].split(",")
mlflow.set_experiment("deploy-e2e")
X = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0], [3.0, 0.0]]); y = np.array([0, 0, 1, 1])
with mlflow.start_run():
    mlflow.sklearn.log_model(LogisticRegression().fit(X, y), name="model",
                             registered_model_name=name, pip_requirements=pip)
"""
GOOD_PIP = "mlflow<3,scikit-learn,azureml-ai-monitoring"


def env(url: str) -> dict[str, str]:
    return {
        "MLFLOW_TRACKING_URI": url,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
        "PATH": os.path.dirname(sys.executable) + ":/usr/bin:/bin",
    }


def run(args: list[str], url: str, timeout: float = 200) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env(url))


def mlflow(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "mlflow", "deployments", *args, "-t", "tether"], url)


def train(url: str, name: str, pip: str = GOOD_PIP) -> None:
    done = run([sys.executable, "-c", TRAIN, name, pip], url)
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
