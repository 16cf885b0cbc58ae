"""Property-based test of the whole committed OpenAPI document against a live `tether serve`.

Schemathesis generates valid and invalid requests for every operation of
openapi/openapi.json and checks each answer: never a 5xx (bad input is MLflow's 4xx error),
a documented status, and a body that matches the documented schema. A failure means the
server or the document is wrong (decide with the reference mlflow server's behaviour).

The server is first given real data (an experiment, a run with metrics, params, tags, a
dataset and an artifact, a logged model, a registered model with a version and an alias),
and generated requests use those ids half of the time, so the answers checked include full
objects, not only "does not exist" errors.

Reproduce a failure with the printed `curl`, or rerun the same command (`_command` below, with
the printed seed) against any server: `st --config-file tests/api/schemathesis.toml run ...`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from support import unique_name

if TYPE_CHECKING:
    from support import TetherServer, TetherServerStarter

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "openapi" / "openapi.json"
CONFIG = Path(__file__).with_name("schemathesis.toml")
CHECKS = "not_a_server_error,status_code_conformance,response_schema_conformance"
# Bounded so the run takes about a minute on 2 cores; the seed makes it repeatable.
MAX_EXAMPLES = int(os.environ.get("TETHER_SCHEMATHESIS_EXAMPLES", "60"))
SEED = int(os.environ.get("TETHER_SCHEMATHESIS_SEED", "20261126"))

pytestmark = pytest.mark.parametrize("backend_kind", ["sqlite"], indirect=True)


def _command(url: str, config: Path) -> list[str]:
    st = Path(sys.executable).parent / "st"
    return [
        str(st),
        "--config-file",
        str(config),
        "--no-color",
        "run",
        str(SCHEMA),
        "--url",
        url,
        "--checks",
        CHECKS,
        "--phases",
        "examples,coverage,fuzzing",
        "--mode",
        "all",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--workers",
        "1",  # hypothesis' lambda introspection is not thread-safe
        "--generation-database",
        "none",
        "--request-timeout",
        "60",
        "--output-truncate",
        "false",
    ]


def _seed(url: str) -> dict[str, list[str]]:
    """Real objects on the server; returns the values requests should draw, by dictionary."""
    api = "/api/2.0/mlflow"
    with httpx.Client(base_url=url, trust_env=False, timeout=60) as client:

        def call(method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
            response = client.request(method, api + path, json=body)
            assert response.status_code == 200, (path, response.text)
            answer: dict[str, Any] = response.json()
            return answer

        name = unique_name("st-exp")
        experiment = call("POST", "/experiments/create", {"name": name})["experiment_id"]
        run = call("POST", "/runs/create", {"experiment_id": experiment, "start_time": 1})
        run_id = run["run"]["info"]["run_id"]
        batch = {
            "run_id": run_id,
            "metrics": [{"key": "m", "value": 0.5, "timestamp": 1, "step": 0}],
            "params": [{"key": "p", "value": "v"}],
            "tags": [{"key": "t", "value": "v"}],
        }
        call("POST", "/runs/log-batch", batch)
        dataset = {"name": "d", "digest": "abc", "source_type": "local", "source": "s"}
        context = [{"key": "mlflow.data.context", "value": "train"}]
        call(
            "POST",
            "/runs/log-inputs",
            {"run_id": run_id, "datasets": [{"dataset": dataset, "tags": context}]},
        )
        model = call(
            "POST",
            "/logged-models",
            {"experiment_id": experiment, "name": "lm", "source_run_id": run_id},
        )["model"]["info"]["model_id"]
        call(
            "POST",
            f"/logged-models/{model}/params",
            {"model_id": model, "params": [{"key": "p", "value": "v"}]},
        )
        call(
            "POST",
            "/runs/log-metric",
            {"run_id": run_id, "key": "m", "value": 1.0, "timestamp": 2, "model_id": model},
        )
        call("POST", "/runs/outputs", {"run_id": run_id, "models": [{"model_id": model}]})
        registered = unique_name("st-model")
        call("POST", "/registered-models/create", {"name": registered})
        source = f"runs:/{run_id}/model"
        call(
            "POST",
            "/model-versions/create",
            {"name": registered, "source": source, "run_id": run_id},
        )
        call(
            "POST",
            "/registered-models/alias",
            {"name": registered, "alias": "champion", "version": "1"},
        )
        call(
            "POST",
            "/model-versions/set-tag",
            {"name": registered, "version": "1", "key": "t", "value": "v"},
        )
        artifact = f"{experiment}/{run_id}/artifacts/model/file.txt"
        uploaded = client.put(f"/api/2.0/mlflow-artifacts/artifacts/{artifact}", content=b"x")
        assert uploaded.status_code == 200, uploaded.text
    return {
        "run_ids": [run_id],
        "experiment_ids": [experiment, "0"],
        "experiment_names": [name, "Default"],
        "names": [registered],
        "versions": ["1"],
        "aliases": ["champion"],
        "model_ids": [model],
        "keys": ["m", "p", "t"],
        "artifact_paths": [artifact],
        "paths": ["model", "model/file.txt"],
    }


# Which request fields draw from which dictionary (`location.name`, as schemathesis binds).
_BINDINGS = {
    "run_ids": ["query.run_id", "body.run_id", "body.source_run_id"],
    "experiment_ids": ["query.experiment_id", "body.experiment_id", "body.experiment_ids[*]"],
    "experiment_names": ["query.experiment_name"],
    "names": ["query.name", "body.name"],
    "versions": ["query.version", "body.version"],
    "aliases": ["query.alias", "body.alias"],
    "model_ids": ["path.model_id", "body.model_id"],
    "keys": ["query.metric_key", "body.key", "path.tag_key"],
    "artifact_paths": ["path.artifact_path"],
    "paths": ["query.path"],
}


def _config(path: Path, values: dict[str, list[str]]) -> Path:
    """tests/api/schemathesis.toml plus the dictionaries of real values."""
    lines = [CONFIG.read_text(encoding="utf-8"), "", "[dictionaries]"]
    lines += [f"{name} = {{ values = {json.dumps(entries)} }}" for name, entries in values.items()]
    lines += ["", "[parameters]"]
    for name, keys in _BINDINGS.items():
        lines += [f'"{key}" = {{ dictionary = "{name}", probability = 0.5 }}' for key in keys]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_whole_api_conforms_to_the_committed_document(
    start_tether_server: TetherServerStarter, tmp_path: Path
) -> None:
    server = start_tether_server()
    config = _config(tmp_path / "schemathesis.toml", _seed(server.url))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TETHER_", "MLFLOW_"))}
    result = subprocess.run(
        _command(server.url, config),
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,  # its .hypothesis / report folders stay out of the repository
        env=env,
        check=False,
    )
    report = result.stdout[-30_000:] + result.stderr[-5_000:]
    assert result.returncode == 0, f"schemathesis found problems:\n{report}"
    assert "Tested: 0" not in report, report
    log = server.log_text()
    assert "Unhandled error" not in log, log[-20_000:]


# Each input below once answered 500; schemathesis found them. Now MLflow's 4xx, or what
# MLflow does (a status number in other digits, which int() reads, is still accepted).
def test_inputs_schemathesis_found_are_client_errors(tether_server: TetherServer) -> None:
    api = "/api/2.0/mlflow"
    with httpx.Client(base_url=tether_server.url, trust_env=False, timeout=60) as client:

        def refused(response: httpx.Response, status: int = 400) -> None:
            assert response.status_code == status, response.text
            assert response.json()["error_code"] in ("INVALID_PARAMETER_VALUE", "INVALID_STATE")

        experiment = client.post(f"{api}/experiments/create", json={"name": unique_name()})
        experiment_id = experiment.json()["experiment_id"]
        create = {"experiment_id": experiment_id, "start_time": 2**63}  # over int64
        refused(client.post(f"{api}/runs/create", json=create))
        run = client.post(f"{api}/runs/create", json={"experiment_id": experiment_id})
        run_id = run.json()["run"]["info"]["run_id"]
        huge = str(10**22)
        bulk = {"run_ids": run_id, "metric_key": "m", "start_step": huge, "end_step": huge}
        refused(client.get(f"{api}/metrics/get-history-bulk-interval", params=bulk))
        for point in ({"timestamp": 2**63, "step": 0}, {"timestamp": 1, "step": 2**63}):
            batch = {"run_id": run_id, "metrics": [{"key": "m", "value": 1.0, **point}]}
            refused(client.post(f"{api}/runs/log-batch", json=batch))  # found in review
        history = {"run_id": run_id, "metric_key": "m", "max_results": str(2**63 - 1)}
        assert client.get(f"{api}/metrics/get-history", params=history).status_code == 200
        # "\u00b2" (²) passes str.isdigit() but not int(); "\u0661" (Arabic-Indic one) passes
        # both, as in MLflow (protobuf reads an enum given as a string with int()).
        refused(client.post(f"{api}/runs/update", json={"run_id": run_id, "status": "²"}))
        update = client.post(f"{api}/runs/update", json={"run_id": run_id, "status": "\u0661"})
        assert update.json()["run_info"]["status"] == "RUNNING"
        refused(client.get(f"{api}/experiments/search", params={"view_type": "²"}))
        model = client.post(f"{api}/logged-models", json={"experiment_id": experiment_id})
        model_id = model.json()["model"]["info"]["model_id"]
        finalize = {"model_id": model_id, "status": "²"}
        refused(client.patch(f"{api}/logged-models/{model_id}", json=finalize))
        # A name longer than the file system takes (ENAMETOOLONG).
        long_path = f"/api/2.0/mlflow-artifacts/artifacts/{'a' * 300}"
        refused(client.put(long_path, content=b"x"))
        refused(client.get(long_path))
        refused(client.delete(long_path))
        # MLflow answers 500 INVALID_STATE here (and its client retries); Tether answers 400.
        client.post(f"{api}/experiments/delete", json={"experiment_id": experiment_id})
        rename = {"experiment_id": experiment_id, "new_name": unique_name()}
        refused(client.post(f"{api}/experiments/update", json=rename))
