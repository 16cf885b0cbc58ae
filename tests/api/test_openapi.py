"""The committed OpenAPI document (openapi/openapi.json) is the one the code generates, and it
describes every MLflow endpoint with real request and response schemas."""

from __future__ import annotations

import difflib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tether.app import create_app
from tether.cli import openapi_document
from tether.config import Settings

COMMITTED = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"
REGENERATE = "tether openapi --output openapi/openapi.json"
_METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture(scope="module")
def generated() -> str:
    return openapi_document()


@pytest.fixture(scope="module")
def spec(generated: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(generated)
    return document


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in _METHODS
    ]


def test_committed_document_is_current(generated: str) -> None:
    committed = COMMITTED.read_text(encoding="utf-8") if COMMITTED.exists() else ""
    if committed == generated:
        return
    diff = "".join(
        list(
            difflib.unified_diff(
                committed.splitlines(keepends=True),
                generated.splitlines(keepends=True),
                "openapi/openapi.json (committed)",
                "openapi/openapi.json (generated)",
            )
        )[:80]
    )
    pytest.fail(
        "openapi/openapi.json is out of date with the HTTP API. Regenerate it with\n"
        f"    {REGENERATE}\nand commit the result. First lines of the difference:\n{diff}",
        pytrace=False,
    )


def test_generation_is_deterministic(generated: str) -> None:
    """The command gives the same text in another process (other hash seed, TETHER_* set)."""
    env = {**os.environ, "PYTHONHASHSEED": "12345", "TETHER_SERVE_ARTIFACTS": "false"}
    command = [sys.executable, "-m", "tether.cli", "openapi"]
    output = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    assert output.stdout == generated
    canonical = json.dumps(json.loads(generated), indent=2, sort_keys=True, ensure_ascii=False)
    assert generated == canonical + "\n"


def test_served_document_is_the_generated_one(tmp_path: Path, spec: dict[str, Any]) -> None:
    """/openapi.json (and /docs) serve `app.openapi()`: the complete document."""
    app = create_app(Settings.model_construct(data_dir=tmp_path, auto_migrate=False))
    assert app.openapi() == spec


def test_only_the_api_prefix_is_documented(spec: dict[str, Any]) -> None:
    paths = list(spec["paths"])
    assert not [p for p in paths if p.startswith("/ajax-api/")]
    assert "/api/2.0/mlflow/runs/log-batch" in paths
    assert "/api/2.0/mlflow-artifacts/artifacts/{artifact_path}" in paths
    assert "/api/2.0/tether/sync/status" in paths


def _real(schema: dict[str, Any] | None) -> bool:
    """A named schema, or a choice of named schemas (sync status: summary or one entity)."""
    if not schema:
        return False
    return "$ref" in schema or all("$ref" in option for option in schema.get("anyOf", [{}]))


def test_every_api_operation_has_real_schemas(spec: dict[str, Any]) -> None:
    """Each /api/ operation documents its 200 body (a schema, not "any") and MLflow's error
    body; each operation that reads JSON documents its request (body, or query on GET)."""
    vague = []
    for path, method, operation in _operations(spec):
        if not path.startswith("/api/") or "presigned" in path:
            continue
        responses = operation["responses"]
        ok = responses.get("200") or responses.get("201") or responses["204"]  # MLflow's
        content = ok.get("content", {})
        schemas = [c.get("schema") for c in content.values()]
        binary = "application/octet-stream" in content
        no_body = path.startswith("/api/2.0/mlflow-artifacts/artifacts/") and method == "put"
        if not no_body and not binary and not all(_real(s) for s in schemas):
            vague.append(f"{method.upper()} {path}: 200 {schemas}")
        errors = operation["responses"].get("default", {}).get("content", {})
        if errors.get("application/json", {}).get("schema") != {
            "$ref": "#/components/schemas/ErrorResponse"
        }:
            vague.append(f"{method.upper()} {path}: no MLflow error body")
    assert not vague, (
        "operations without real schemas; give the endpoint a request-model parameter and a "
        "TypedDict return type (tether.api.routing.Router):\n" + "\n".join(vague)
    )


def test_request_shapes_follow_the_mlflow_handlers(spec: dict[str, Any]) -> None:
    paths = spec["paths"]
    schemas = spec["components"]["schemas"]
    # GET: the fields are query parameters; lists repeat their key (?run_ids=a&run_ids=b).
    bulk = paths["/api/2.0/mlflow/metrics/get-history-bulk-interval"]["get"]
    params = {p["name"]: p for p in bulk["parameters"]}
    assert params["run_ids"]["required"] is True
    assert params["run_ids"]["schema"]["type"] == "array"
    assert (params["run_ids"]["style"], params["run_ids"]["explode"]) == ("form", True)
    assert params["start_step"]["schema"] == {
        "type": "integer",
        "format": "int64",
        "minimum": -(2**63),
        "maximum": 2**63 - 1,
    }
    assert "requestBody" not in bulk
    # Other methods: a required JSON body; MLflow's required fields are required there too.
    batch = paths["/api/2.0/mlflow/runs/log-batch"]["post"]
    body = batch["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/LogBatch"}
    assert schemas["LogBatch"]["required"] == ["run_id"]
    assert schemas["MetricPoint"]["required"] == ["key", "value", "timestamp"]
    assert schemas["MetricPoint"]["properties"]["key"] == {
        "minLength": 1,
        "title": "Key",
        "type": "string",
    }
    assert "413" in batch["responses"]
    # Registry deletes take a JSON body, as MLflow's client sends it.
    delete = paths["/api/2.0/mlflow/registered-models/delete"]["delete"]
    assert "application/json" in delete["requestBody"]["content"]
    # Artifact bodies are byte streams both ways.
    upload = paths["/api/2.0/mlflow-artifacts/artifacts/{artifact_path}"]["put"]
    assert list(upload["requestBody"]["content"]) == ["application/octet-stream"]
    download = paths["/api/2.0/mlflow-artifacts/artifacts/{artifact_path}"]["get"]
    assert list(download["responses"]["200"]["content"]) == ["application/octet-stream"]


def test_response_models_match_mlflow_json(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    run_info = schemas["RunInfo"]
    assert set(run_info["required"]) == {
        "run_id",
        "run_uuid",
        "experiment_id",
        "status",
        "lifecycle_stage",
    }
    assert run_info["additionalProperties"] is False
    # Non-finite doubles are strings in protobuf's JSON.
    value = schemas["Metric"]["properties"]["value"]
    assert {"type": "number"} in value["anyOf"]
    assert {"enum": ["NaN", "Infinity", "-Infinity"], "type": "string"} in value["anyOf"]
    # No FastAPI validation errors: a bad request is MLflow's 400.
    assert "HTTPValidationError" not in schemas
    for _, _, operation in _operations(spec):
        assert "422" not in operation["responses"]
