"""Every acknowledged write appends its outbox record; a rejected write appends nothing.

Checked against a real server by reading the store it wrote, so the guarantee covers the
whole path: request -> validation -> one transaction (data + outbox row) -> response.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from support import MlflowRest, unique_name
from support.outbox import last_outbox_id, outbox_after
from tether.db.engine import Database


def _expect_one(db: Database, last: int, entity: tuple[str, str], op: str) -> dict[str, Any]:
    rows = outbox_after(db, last)
    assert [(r["entity"], r["op"]) for r in rows] == [(entity, op)]
    return rows[0]["payload"]


def test_each_write_appends_exactly_one_record(
    tether_rest: MlflowRest, tether_store: Database
) -> None:
    last = last_outbox_id(tether_store)
    exp = tether_rest.post("experiments/create", {"name": unique_name(), "tags": []}).json
    exp_id = exp["experiment_id"]
    assert _expect_one(tether_store, last, ("experiment", exp_id), "create")["artifact_location"]

    steps: list[tuple[str, dict[str, Any], str]] = [
        ("experiments/set-experiment-tag", {"key": "team", "value": "vision"}, "set_tag"),
        ("experiments/delete-experiment-tag", {"key": "team"}, "delete_tag"),
        ("experiments/update", {"new_name": unique_name()}, "rename"),
    ]
    for path, body, op in steps:
        last = last_outbox_id(tether_store)
        response = tether_rest.post(path, {"experiment_id": exp_id, **body})
        assert response.status == 200, response.json
        _expect_one(tether_store, last, ("experiment", exp_id), op)

    last = last_outbox_id(tether_store)
    run = tether_rest.post("runs/create", {"experiment_id": exp_id, "start_time": 5}).json["run"]
    run_id = run["info"]["run_id"]
    created = _expect_one(tether_store, last, ("run", run_id), "create")
    assert created["tags"]["mlflow.runName"] == run["info"]["run_name"]

    last = last_outbox_id(tether_store)
    metrics = [{"key": "loss", "value": i / 10, "timestamp": 1000 + i, "step": i} for i in range(7)]
    batch = {
        "run_id": run_id,
        "metrics": metrics,
        "params": [{"key": "lr", "value": "0.1"}],
        "tags": [{"key": "stage", "value": "train"}],
    }
    assert tether_rest.post("runs/log-batch", batch).status == 200
    payload = _expect_one(tether_store, last, ("run", run_id), "log_batch")
    assert payload["params"] == {"lr": "0.1"} and payload["tags"] == {"stage": "train"}
    covered = sum(hi - lo + 1 for lo, hi in payload["metric_ids"])
    assert covered == len(metrics)
    with tether_store.read() as session:
        ids = [
            row[0]
            for row in session.execute(
                text("SELECT id FROM metrics WHERE run_uuid = :r"), {"r": run_id}
            )
        ]
    assert sorted(ids) == [i for lo, hi in payload["metric_ids"] for i in range(lo, hi + 1)]

    for path, body, op in [
        ("runs/log-metric", {"key": "acc", "value": 0.9, "timestamp": 1, "step": 0}, "log_batch"),
        ("runs/log-parameter", {"key": "depth", "value": "3"}, "log_batch"),
        ("runs/set-tag", {"key": "k", "value": "v"}, "set_tag"),
        ("runs/delete-tag", {"key": "k"}, "delete_tag"),
        ("runs/update", {"status": "FINISHED", "end_time": 99}, "update"),
        ("runs/delete", {}, "delete"),
        ("runs/restore", {}, "restore"),
    ]:
        last = last_outbox_id(tether_store)
        response = tether_rest.post(path, {"run_id": run_id, **body})
        assert response.status == 200, (path, response.json)
        _expect_one(tether_store, last, ("run", run_id), op)


def test_rejected_writes_append_nothing(tether_rest: MlflowRest, tether_store: Database) -> None:
    exp_id = tether_rest.post("experiments/create", {"name": unique_name()}).json["experiment_id"]
    run_id = tether_rest.post("runs/create", {"experiment_id": exp_id}).json["run"]["info"][
        "run_id"
    ]
    assert (
        tether_rest.post("runs/log-parameter", {"run_id": run_id, "key": "p", "value": "1"}).status
        == 200
    )
    last = last_outbox_id(tether_store)
    rejected = [
        ("runs/log-parameter", {"run_id": run_id, "key": "p", "value": "2"}),
        (
            "runs/log-batch",
            {
                "run_id": run_id,
                "metrics": [{"key": "m", "value": 1, "timestamp": 1}],
                "params": [{"key": "p", "value": "changed"}],
            },
        ),
        ("runs/log-metric", {"run_id": run_id, "key": "../x", "value": 1, "timestamp": 1}),
        ("runs/log-metric", {"run_id": "0" * 32, "key": "m", "value": 1, "timestamp": 1}),
        ("experiments/create", {"name": ""}),
        ("runs/create", {"experiment_id": "99999999"}),
    ]
    for path, body in rejected:
        response = tether_rest.post(path, body)
        assert 400 <= response.status < 500, (path, response.json)
        assert response.error_code in ("INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST")
    assert outbox_after(tether_store, last) == []
    history = tether_rest.get("metrics/get-history", {"run_id": run_id, "metric_key": "m"})
    assert history.json.get("metrics", []) == []


def test_idempotent_relog_appends_nothing(tether_rest: MlflowRest, tether_store: Database) -> None:
    """Re-logging an identical param is a no-op for the store, so nothing is to be synced."""
    exp_id = tether_rest.post("experiments/create", {"name": unique_name()}).json["experiment_id"]
    run_id = tether_rest.post("runs/create", {"experiment_id": exp_id}).json["run"]["info"][
        "run_id"
    ]
    body = {"run_id": run_id, "key": "p", "value": "same"}
    assert tether_rest.post("runs/log-parameter", body).status == 200
    last = last_outbox_id(tether_store)
    assert tether_rest.post("runs/log-parameter", body).status == 200
    assert outbox_after(tether_store, last) == []


def test_logged_model_inputs_of_unknown_models_append_nothing(
    tether_rest: MlflowRest, tether_store: Database
) -> None:
    """Model inputs naming no stored logged model are refused (404), and nothing is synced."""
    exp_id = tether_rest.post("experiments/create", {"name": unique_name()}).json["experiment_id"]
    run_id = tether_rest.post("runs/create", {"experiment_id": exp_id}).json["run"]["info"][
        "run_id"
    ]
    last = last_outbox_id(tether_store)
    response = tether_rest.post(
        "runs/log-inputs", {"run_id": run_id, "models": [{"model_id": "m-123"}]}
    )
    assert response.status == 404
    assert response.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert outbox_after(tether_store, last) == []
