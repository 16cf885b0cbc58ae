"""Tether-only registry guarantees: the sync outbox record of every write (and none for a
rejected one), version numbering under concurrent creates, and MLflow 3 logged-model sources.

Checked against a real server by reading the store it wrote, on both backends.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import text

from support import MlflowRest, TetherServer, unique_name
from support.outbox import last_outbox_id, outbox_after
from tether.clock import now_ms
from tether.db.engine import Database
from tether.db.models import LoggedModel


def _model_id(db: Database, name: str) -> str:
    with db.read() as session:
        value = session.execute(
            text("SELECT id FROM registered_models WHERE name = :n"), {"n": name}
        ).scalar()
    return str(value)


def _call(rest: MlflowRest, method: str, path: str, body: dict[str, Any]) -> Any:
    response = rest.get(path, body) if method == "GET" else rest.request(method, path, json=body)
    assert response.status == 200, (path, response.json)
    return response.json


def test_each_write_appends_one_record(tether_rest: MlflowRest, tether_store: Database) -> None:
    name = unique_name("ob")
    last = last_outbox_id(tether_store)
    _call(tether_rest, "POST", "registered-models/create", {"name": name, "description": "d"})
    rm_id = _model_id(tether_store, name)
    (created,) = outbox_after(tether_store, last)
    assert created["entity"] == ("registered_model", rm_id)
    assert created["op"] == "create"
    assert created["payload"] == {"name": name, "description": "d", "tags": {}}

    model = ("registered_model", rm_id)
    version = ("model_version", f"{rm_id}/1")
    steps: list[tuple[str, str, dict[str, Any], tuple[str, str], str]] = [
        ("POST", "model-versions/create", {"source": "s3://b/m"}, version, "create"),
        ("PATCH", "registered-models/update", {"description": "x"}, model, "update"),
        ("POST", "registered-models/set-tag", {"key": "k", "value": "v"}, model, "set_tag"),
        ("DELETE", "registered-models/delete-tag", {"key": "k"}, model, "delete_tag"),
        ("PATCH", "model-versions/update", {"version": "1", "description": "y"}, version, "update"),
        (
            "POST",
            "model-versions/set-tag",
            {"version": "1", "key": "k", "value": "v"},
            version,
            "set_tag",
        ),
        (
            "DELETE",
            "model-versions/delete-tag",
            {"version": "1", "key": "k"},
            version,
            "delete_tag",
        ),
        (
            "POST",
            "model-versions/transition-stage",
            {"version": "1", "stage": "Staging"},
            version,
            "transition_stage",
        ),
        ("POST", "registered-models/alias", {"alias": "a", "version": "1"}, model, "set_alias"),
        ("DELETE", "registered-models/alias", {"alias": "a"}, model, "delete_alias"),
        ("POST", "registered-models/rename", {"new_name": name + "-r"}, model, "rename"),
    ]
    current = name
    for method, path, body, entity, op in steps:
        last = last_outbox_id(tether_store)
        _call(tether_rest, method, path, {"name": current, **body})
        rows = outbox_after(tether_store, last)
        assert [(r["entity"], r["op"]) for r in rows] == [(entity, op)], path
        assert rows[0]["payload"]["name"] == (name + "-r" if op == "rename" else current)
        if op == "rename":
            assert rows[0]["payload"]["old_name"] == name
            current = name + "-r"

    # Archiving the stage's other versions is part of the one transition record.
    _call(tether_rest, "POST", "model-versions/create", {"name": current, "source": "s3://b/2"})
    last = last_outbox_id(tether_store)
    _call(
        tether_rest,
        "POST",
        "model-versions/transition-stage",
        {"name": current, "version": "2", "stage": "Staging", "archive_existing_versions": True},
    )
    (row,) = outbox_after(tether_store, last)
    assert row["entity"] == ("model_version", f"{rm_id}/2")
    assert row["payload"]["archived_versions"] == ["1"]

    # Deleting a tag or alias that is not there succeeds and has nothing to sync.
    last = last_outbox_id(tether_store)
    _call(tether_rest, "DELETE", "registered-models/delete-tag", {"name": current, "key": "zz"})
    _call(tether_rest, "DELETE", "registered-models/alias", {"name": current, "alias": "zz"})
    assert outbox_after(tether_store, last) == []

    for method, path, body, entity, op in [
        ("DELETE", "model-versions/delete", {"version": "1"}, version, "delete"),
        ("DELETE", "registered-models/delete", {}, model, "delete"),
    ]:
        last = last_outbox_id(tether_store)
        _call(tether_rest, method, path, {"name": current, **body})
        assert [(r["entity"], r["op"]) for r in outbox_after(tether_store, last)] == [(entity, op)]


def test_rejected_writes_append_nothing(tether_rest: MlflowRest, tether_store: Database) -> None:
    name = unique_name("ob-rej")
    _call(tether_rest, "POST", "registered-models/create", {"name": name})
    _call(tether_rest, "POST", "model-versions/create", {"name": name, "source": "s3://b/m"})
    last = last_outbox_id(tether_store)
    rejected = [
        ("POST", "registered-models/create", {"name": name}),
        ("POST", "registered-models/create", {"name": "a/b"}),
        ("POST", "registered-models/rename", {"name": name, "new_name": ""}),
        ("POST", "registered-models/set-tag", {"name": name, "key": "../k", "value": "v"}),
        ("POST", "model-versions/create", {"name": name, "source": "/etc/passwd"}),
        ("POST", "model-versions/create", {"name": unique_name(), "source": "s3://b/m"}),
        ("POST", "model-versions/create", {"name": name, "source": "s3://b/m", "model_id": "m-x"}),
        (
            "POST",
            "model-versions/transition-stage",
            {"name": name, "version": "1", "stage": "None", "archive_existing_versions": True},
        ),
        ("POST", "model-versions/transition-stage", {"name": name, "version": "1", "stage": "x"}),
        ("POST", "registered-models/alias", {"name": name, "alias": "v1", "version": "1"}),
        ("POST", "registered-models/alias", {"name": name, "alias": "ok", "version": "2"}),
        ("DELETE", "model-versions/delete", {"name": name, "version": "2"}),
        ("PATCH", "model-versions/update", {"name": name, "version": "x"}),
    ]
    for method, path, body in rejected:
        response = tether_rest.request(method, path, json=body)
        assert 400 <= response.status < 500, (path, response.json)
    assert outbox_after(tether_store, last) == []
    # ... and changed nothing.
    model = tether_rest.get("registered-models/get", {"name": name}).json["registered_model"]
    assert [v["version"] for v in model["latest_versions"]] == ["1"]
    assert model["latest_versions"][0]["current_stage"] == "None"
    assert "aliases" not in model and "tags" not in model


def test_concurrent_version_creation(tether_server: TetherServer) -> None:
    """Concurrent creates on one model get distinct, consecutive version numbers."""
    name = unique_name("ob-conc")
    with tether_server.rest() as rest:
        _call(rest, "POST", "registered-models/create", {"name": name})

    def create(i: int) -> str:
        with tether_server.rest() as rest:
            body = {"name": name, "source": f"s3://b/{i}"}
            version: str = _call(rest, "POST", "model-versions/create", body)["model_version"][
                "version"
            ]
            return version

    with ThreadPoolExecutor(max_workers=6) as pool:
        versions = list(pool.map(create, range(12)))
    assert sorted(int(v) for v in versions) == list(range(1, 13))


def test_logged_model_source(tether_rest: MlflowRest, tether_store: Database) -> None:
    """`models:/<model_id>`: the logged model's location and run; the model lists the version."""
    exp_id = _call(tether_rest, "POST", "experiments/create", {"name": unique_name()})[
        "experiment_id"
    ]
    run_id = _call(tether_rest, "POST", "runs/create", {"experiment_id": exp_id})["run"]["info"][
        "run_id"
    ]
    model_id = f"m-{unique_name('lm').replace('-', '')}"
    location = f"mlflow-artifacts:/{exp_id}/models/{model_id}/artifacts"
    with tether_store.write() as session:
        now = now_ms()
        session.add(
            LoggedModel(
                model_id=model_id,
                experiment_id=int(exp_id),
                name="model",
                artifact_location=location,
                creation_time=now,
                last_updated_time=now,
                status="READY",
                lifecycle_stage="active",
                source_run_id=run_id,
            )
        )
    name = unique_name("ob-lm")
    _call(tether_rest, "POST", "registered-models/create", {"name": name})
    last = last_outbox_id(tether_store)
    body = {"name": name, "source": f"models:/{model_id}", "model_id": model_id}
    version = _call(tether_rest, "POST", "model-versions/create", body)["model_version"]
    assert version["source"] == f"models:/{model_id}"
    assert version["run_id"] == run_id  # inherited from the logged model
    uri = _call(
        tether_rest, "GET", "model-versions/get-download-uri", {"name": name, "version": "1"}
    )
    assert uri == {"artifact_uri": location}
    rows = outbox_after(tether_store, last)
    assert [(r["entity"][0], r["op"]) for r in rows] == [
        ("logged_model", "set_tag"),
        ("model_version", "create"),
    ]
    assert rows[1]["payload"]["model_id"] == model_id
    # A second version from the same logged model: the tag lists both.
    source = f"{location}/sub"
    body = {"name": name, "source": source, "model_id": model_id}
    _call(tether_rest, "POST", "model-versions/create", body)
    with tether_store.read() as session:
        tag = session.execute(
            text("SELECT value FROM logged_model_tags WHERE model_id = :m AND key = :k"),
            {"m": model_id, "k": "mlflow.modelVersions"},
        ).scalar()
    assert json.loads(tag) == [{"name": name, "version": 1}, {"name": name, "version": 2}]
    # A source outside the logged model's location, or a run's, is refused.
    for source in (f"mlflow-artifacts:/{exp_id}/elsewhere", f"runs:/{run_id}/model"):
        response = tether_rest.post(
            "model-versions/create", {"name": name, "source": source, "model_id": model_id}
        )
        assert (response.status, response.error_code) == (400, "INVALID_PARAMETER_VALUE")
