"""Every route of the app declares who may call it (tether.api.access), and the rules that
matter most are the expected ones. Built with authentication and /metrics on, so every
optional route is there; in a subprocess, as `tether serve` builds it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

_LIST_ROUTES = """
import json, sys
from pathlib import Path
from tether.api.access import route_rules
from tether.app import create_app
from tether.config import Settings

tmp = Path(sys.argv[1])
settings = Settings(
    data_dir=tmp, app_name="basic-auth", expose_prometheus=str(tmp / "prom"), auto_migrate=False
)
app = create_app(settings)
print(json.dumps([[m, p, None if r is None else str(r)] for m, p, r in route_rules(app)]))
"""


@pytest.fixture(scope="module")
def routes(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], str | None]:
    tmp = tmp_path_factory.mktemp("routes")
    out = subprocess.run(
        [sys.executable, "-c", _LIST_ROUTES, str(tmp)],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parent,
    ).stdout
    return {(m, p): r for m, p, r in json.loads(out.splitlines()[-1])}


def test_every_route_has_a_rule(routes: dict[tuple[str, str], str | None]) -> None:
    missing = sorted(f"{method} {path}" for (method, path), rule in routes.items() if rule is None)
    assert not missing, (
        "routes without an access rule (add access=... to the route, see tether.api.access):\n  "
        + "\n  ".join(missing)
    )


# (method, path) -> the rule it must have (str(Rule)): reads READ, writes EDIT, deletes and
# permission changes MANAGE/DELETE, operators ADMIN, probes PUBLIC.
EXPECTED = {
    ("GET", "/health"): "public",
    ("GET", "/ready"): "public",
    ("GET", "/version"): "public",
    ("GET", "/metrics"): "public",
    ("GET", "/static-files/{path:path}"): "public",
    ("GET", "/api/3.0/mlflow/server-info"): "public",
    ("GET", "/"): "signed_in",
    ("GET", "/graphql"): "signed_in listing experiment,registered_model",
    ("POST", "/graphql"): "signed_in listing experiment,registered_model",
    ("GET", "/tether/"): "admin",
    ("GET", "/tether"): "admin",
    ("POST", "/tether/retry"): "admin",
    ("GET", "/api/2.0/tether/sync/status"): "admin",
    ("GET", "/get-artifact"): "read run(run_id)",
    ("GET", "/model-versions/get-artifact"): "read registered_model(name)",
    ("GET", "/ajax-api/2.0/mlflow/logged-models/{model_id}/artifacts/files"): (
        "read logged_model(path model_id)"
    ),
    ("GET", "/api/2.0/mlflow/logged-models/{model_id}/artifacts/directories"): (
        "read logged_model(path model_id)"
    ),
    ("PUT", "/api/2.0/mlflow-artifacts/artifacts/{artifact_path:path}"): (
        "update artifact_path(path artifact_path)"
    ),
    ("GET", "/ajax-api/2.0/mlflow-artifacts/artifacts/{artifact_path:path}"): (
        "read artifact_path(path artifact_path)"
    ),
    ("DELETE", "/api/2.0/mlflow-artifacts/artifacts/{artifact_path:path}"): (
        "manage artifact_path(path artifact_path)"
    ),
    ("GET", "/api/2.0/mlflow-artifacts/artifacts"): "read artifact_path(path)",
    ("POST", "/api/2.0/mlflow/runs/log-batch"): (
        "update run(run_id) + logged_model(metrics' model_id)"
    ),
    ("POST", "/ajax-api/2.0/mlflow/runs/log-metric"): (
        "update run(run_id) + logged_model(model_id)"
    ),
    ("POST", "/api/2.0/mlflow/runs/set-tag"): "update run(run_id)",
    ("POST", "/api/2.0/mlflow/runs/delete"): "delete run(run_id)",
    ("POST", "/api/2.0/mlflow/runs/create"): "update experiment(experiment_id)",
    ("POST", "/api/2.0/mlflow/runs/search"): "signed_in listing experiment",
    ("GET", "/api/2.0/mlflow/experiments/get"): "read experiment(experiment_id)",
    ("POST", "/api/2.0/mlflow/experiments/delete"): "delete experiment(experiment_id)",
    ("POST", "/api/2.0/mlflow/experiments/search"): "signed_in listing experiment",
    ("GET", "/api/2.0/mlflow/registered-models/search"): "signed_in listing registered_model",
    ("GET", "/api/2.0/mlflow/model-versions/search"): "signed_in listing registered_model",
    ("DELETE", "/api/2.0/mlflow/registered-models/delete"): "delete registered_model(name)",
    ("POST", "/api/2.0/mlflow/model-versions/create"): "update registered_model(name)",
    ("POST", "/api/2.0/mlflow/logged-models/search"): "signed_in listing experiment",
    ("DELETE", "/api/2.0/mlflow/logged-models/{model_id}"): "delete logged_model(path model_id)",
    ("GET", "/api/2.0/mlflow/metrics/get-history-bulk-interval"): "read run(each of run_ids)",
    ("GET", "/ajax-api/2.0/mlflow/metrics/get-history-bulk"): "read run(each of run_id)",
    ("POST", "/ajax-api/2.0/mlflow/upload-artifact"): "update run(run_uuid)",
    ("POST", "/ajax-api/2.0/mlflow/experiments/search-datasets"): (
        "read experiment(experiment_ids)"
    ),
    ("POST", "/api/3.0/mlflow/datasets/search"): "read experiment(experiment_ids)",
    ("GET", "/ajax-api/3.0/mlflow/assistant/config"): "signed_in",
    ("GET", "/ajax-api/3.0/mlflow/assistant/providers"): "signed_in",
    ("POST", "/ajax-api/2.0/mlflow/gateway-proxy"): "signed_in",
    ("POST", "/ajax-api/3.0/mlflow/ui-telemetry"): "signed_in",
    ("GET", "/ajax-api/3.0/mlflow/mcp-servers"): "signed_in",
    ("POST", "/api/2.0/mlflow/users/create"): "signed_in",
    ("GET", "/api/2.0/mlflow/users/current"): "signed_in",
    ("POST", "/api/3.0/mlflow/users/permissions/grant"): "signed_in",
    ("POST", "/api/3.0/mlflow/roles/create"): "signed_in",
    ("POST", "/api/2.0/tether/tokens/create"): "signed_in",
    # Only admins create, read one, change and delete workspaces; a user lists those they
    # have a role in (MLflow 3.17's basic-auth app with workspaces on, issue 17).
    ("GET", "/api/3.0/mlflow/workspaces"): "signed_in listing workspace",
    ("POST", "/api/3.0/mlflow/workspaces"): "admin",
    ("GET", "/ajax-api/3.0/mlflow/workspaces/{workspace_name}"): "admin",
    ("PATCH", "/api/3.0/mlflow/workspaces/{workspace_name}"): "admin",
    ("DELETE", "/api/3.0/mlflow/workspaces/{workspace_name}"): "admin",
}


@pytest.mark.parametrize(("method", "path"), sorted(EXPECTED))
def test_rule(routes: dict[tuple[str, str], str | None], method: str, path: str) -> None:
    assert (method, path) in routes, f"no route {method} {path}"
    assert routes[(method, path)] == EXPECTED[(method, path)]


def test_ajax_copies_have_the_same_rules(routes: dict[tuple[str, str], str | None]) -> None:
    for (method, path), rule in routes.items():
        if path.startswith("/ajax-api/"):
            twin = path.replace("/ajax-api/", "/api/", 1)
            if (method, twin) in routes:
                assert routes[(method, twin)] == rule, f"{method} {path}"
