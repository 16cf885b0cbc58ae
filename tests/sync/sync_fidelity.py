"""The fidelity check of the sync tests: Tether's store against what the stand-in workspace's
inner MLflow ended up with, modulo the documented mappings and what the report lists.

Read straight from the inner `mlflow server` (`AzuremlWorkspace.mlflow_url`: no auth, no
quirks), so the check does not go through the code under test. Exactly-once delivery of metric
points is checked on the stand-in's request log: MLflow's store silently drops duplicate
points, so only the applied requests tell whether a point was sent twice.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
from sqlalchemy import select

from tether.db.engine import Database
from tether.db.models import (
    Experiment,
    ExperimentTag,
    Metric,
    Param,
    Run,
    RunTag,
    SyncEntity,
    SyncReport,
)

SOURCE_TAG = "tether.source_run_id"
PARENT_TAG = "mlflow.parentRunId"


def _mapping(db: Database) -> dict[tuple[str, str], str | None]:
    with db.read() as session:
        return {
            (e.entity_type, e.entity_id): e.azure_id for e in session.scalars(select(SyncEntity))
        }


def _reports(db: Database) -> dict[tuple[str, str], dict[str, str]]:
    """(entity type, id) -> {subject: kind}."""
    out: dict[tuple[str, str], dict[str, str]] = {}
    with db.read() as session:
        for r in session.scalars(select(SyncReport)):
            out.setdefault((r.entity_type, r.entity_id), {})[r.subject] = r.kind
    return out


def _point(key: str, step: int, timestamp: int, value: Any) -> tuple[str, int, int, str]:
    if value == "NaN" or (isinstance(value, float) and value != value):
        return key, int(step), int(timestamp), "NaN"
    return key, int(step), int(timestamp), repr(float(value))


class InnerMlflow:
    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=f"{url}/api/2.0/mlflow", timeout=60, trust_env=False)

    def get(self, endpoint: str, **params: Any) -> Any:
        response = self.http.get(endpoint, params=params)
        assert response.status_code == 200, (endpoint, params, response.text)
        return response.json()

    def post(self, endpoint: str, body: dict[str, Any]) -> Any:
        response = self.http.post(endpoint, json=body)
        assert response.status_code == 200, (endpoint, body, response.text)
        return response.json()

    def runs_with_source(self, experiment_id: str, local_run: str) -> list[str]:
        body = {
            "experiment_ids": [experiment_id],
            "filter": f"tags.`{SOURCE_TAG}` = '{local_run}'",
            "run_view_type": "ALL",
            "max_results": 100,
        }
        return [r["info"]["run_id"] for r in self.post("runs/search", body).get("runs", [])]

    def history(self, run_id: str, key: str) -> list[tuple[str, int, int, str]]:
        body = self.get("metrics/get-history", run_id=run_id, metric_key=key, max_results=100000)
        return [
            _point(key, m.get("step", 0), m.get("timestamp", 0), m.get("value", 0.0))
            for m in body.get("metrics", [])
        ]


def assert_fidelity(db: Database, mlflow_url: str, *, runs: list[str] | None = None) -> None:
    """Every synced experiment and run of `db` (or just `runs`) equals its Azure copy."""
    inner = InnerMlflow(mlflow_url)
    mapping = _mapping(db)
    reports = _reports(db)
    with db.read() as session:
        experiments = {str(e.experiment_id): e for e in session.scalars(select(Experiment))}
        exp_tags: dict[str, dict[str, str | None]] = {}
        for t in session.scalars(select(ExperimentTag)):
            exp_tags.setdefault(str(t.experiment_id), {})[t.key] = t.value
        query = select(Run) if runs is None else select(Run).where(Run.run_uuid.in_(runs))
        local_runs = list(session.scalars(query))
    used_experiments = {str(r.experiment_id) for r in local_runs} if runs else set(experiments)
    for exp_id in sorted(used_experiments):
        _check_experiment(inner, experiments[exp_id], exp_tags.get(exp_id, {}), mapping, reports)
    for run in local_runs:
        _check_run(inner, db, run, mapping, reports)


def _check_experiment(
    inner: InnerMlflow,
    local: Experiment,
    tags: dict[str, str | None],
    mapping: dict[tuple[str, str], str | None],
    reports: dict[tuple[str, str], dict[str, str]],
) -> None:
    key = ("experiment", str(local.experiment_id))
    azure_id = mapping.get(key)
    assert azure_id, f"experiment {local.name!r} was not synced"
    azure = inner.get("experiments/get", experiment_id=azure_id)["experiment"]
    report = reports.get(key, {})
    if "name" not in report and "rename" not in report:
        assert azure["name"] == local.name
    assert azure["lifecycle_stage"] == local.lifecycle_stage, local.name
    expected = {k: v for k, v in tags.items() if f"tag:{k}" not in report}
    got = {t["key"]: t["value"] for t in azure.get("tags", [])}
    assert {k: got.get(k) for k in expected} == expected, local.name


def _check_run(
    inner: InnerMlflow,
    db: Database,
    run: Run,
    mapping: dict[tuple[str, str], str | None],
    reports: dict[tuple[str, str], dict[str, str]],
) -> None:
    key = ("run", run.run_uuid)
    azure_id = mapping.get(key)
    assert azure_id, f"run {run.run_uuid} was not synced"
    azure_exp = mapping[("experiment", str(run.experiment_id))]
    assert azure_exp is not None
    assert inner.runs_with_source(azure_exp, run.run_uuid) == [azure_id], "duplicate runs"
    azure = inner.get("runs/get", run_id=azure_id)["run"]
    info, data = azure["info"], azure.get("data", {})
    assert info["experiment_id"] == azure_exp
    for field, value in [
        ("status", run.status),
        ("start_time", run.start_time),
        ("end_time", run.end_time),
        ("run_name", run.name),
        ("lifecycle_stage", run.lifecycle_stage),
    ]:
        assert info.get(field) == value, (field, info.get(field), value)
    report = reports.get(key, {})
    with db.read() as session:
        params = {
            p.key: p.value for p in session.scalars(select(Param).filter_by(run_uuid=run.run_uuid))
        }
        tags = {
            t.key: t.value for t in session.scalars(select(RunTag).filter_by(run_uuid=run.run_uuid))
        }
        points = sorted(
            _point(m.key, m.step, m.timestamp, "NaN" if m.is_nan else m.value)
            for m in session.scalars(select(Metric).filter_by(run_uuid=run.run_uuid))
        )
    expected_params = {k: v for k, v in params.items() if f"param:{k}" not in report}
    assert {p["key"]: p["value"] for p in data.get("params", [])} == expected_params
    expected_tags: dict[str, str | None] = {SOURCE_TAG: run.run_uuid}
    for k, v in tags.items():
        kind = report.get(f"tag:{k}")
        if kind == "skipped":
            continue
        if k == PARENT_TAG and v is not None:
            v = mapping[("run", v)]
        expected_tags[k] = v[:1000] if kind == "truncated" and v is not None else v
    assert {t["key"]: t["value"] for t in data.get("tags", [])} == expected_tags
    keys = sorted({p[0] for p in points})
    azure_points = sorted(p for k in keys for p in inner.history(azure_id, k))
    assert azure_points == points, f"metric histories differ for run {run.run_uuid}"
    assert sorted(m["key"] for m in data.get("metrics", [])) == keys


def sent_points(requests: list[dict[str, Any]], azure_run: str) -> Counter[tuple[Any, ...]]:
    """Metric points in the log-batch requests Azure applied (200, or a lost 200 response)."""
    sent: Counter[tuple[Any, ...]] = Counter()
    for entry in requests:
        body = entry.get("json") or {}
        if entry["status"] == 200 and body.get("run_id") == azure_run:
            for m in body.get("metrics", []):
                sent[_point(m["key"], m.get("step", 0), m["timestamp"], m["value"])] += 1
    return sent
