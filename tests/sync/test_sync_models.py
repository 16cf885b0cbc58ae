"""MLflow 3 logged models and the model registry into the stand-in workspace: the model's
files re-homed into its source run, a registered model and a READY version whose source is
the Azure run's artifacts, stages; a lost response on model-versions/create makes no
duplicate."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import select

from sync.sync_fidelity import InnerMlflow
from sync.sync_tether import Tether, _chunks
from tether.db.models import LoggedModel, OutboxEntry, RegisteredModel
from tether.sync.state import Key
from tether.sync.worker import drain_exit_code
from tether.tracking.logged_models.service import KeyValueIn

if TYPE_CHECKING:
    pass

pytestmark = pytest.mark.timeout(120)

MODEL_FILES = {"MLmodel": b"flavors:\n  sklearn: {}\n", "model.pkl": b"\x80\x04pickle" * 1000}


def _logged_model(tether: Tether, run_id: str, exp: str) -> str:
    models = tether.services.logged_models
    created = models.create(
        experiment_id=exp,
        name="clf",
        model_type=None,
        source_run_id=run_id,
        params=[KeyValueIn("alpha", "0.1")],
        tags=[KeyValueIn("flavor", "sklearn")],
    )
    model_id = str(created["info"]["model_id"])
    with tether.db.read() as session:
        row = session.get(LoggedModel, model_id)
        assert row is not None
        location = row.artifact_location
    artifacts = tether.services.artifacts
    for name, data in MODEL_FILES.items():
        asyncio.run(artifacts.upload(artifacts.resolve(location, name), _chunks(data)))
    models.finalize(model_id, "LOGGED_MODEL_READY")
    return model_id


def _register(tether: Tether, name: str, run_id: str, model_id: str) -> None:
    registry = tether.services.registry
    registry.create_model(name, [("team", "vision")], "a classifier")
    registry.create_version(
        name=name,
        source=f"models:/{model_id}",
        run_id=run_id,
        tags=[("git", "abc")],
        run_link="",
        description="first",
        model_id=model_id,
    )


def _versions(tether: Tether, name: str) -> list[dict[str, Any]]:
    inner = InnerMlflow(tether.ws.mlflow_url)
    found: list[dict[str, Any]] = inner.get("model-versions/search", filter=f"name='{name}'")[
        "model_versions"
    ]
    return found


def test_a_logged_model_is_rehomed_registered_and_staged(tether: Tether) -> None:
    exp = tether.experiment()
    run_id = tether.run(exp)
    model_id = _logged_model(tether, run_id, exp)
    name = f"clf-{run_id[:8]}"
    _register(tether, name, run_id, model_id)
    registry = tether.services.registry
    registry.transition_stage(name, "1", "Production", False)
    registry.set_alias(name, "champion", "1")

    assert drain_exit_code(tether.drain()) == 0

    azure_run = tether.azure_id(Key("run", run_id))
    for file, data in MODEL_FILES.items():
        assert tether.ws.artifacts.read(azure_run, f"models/{model_id}/{file}") == data
    versions = _versions(tether, name)
    assert len(versions) == 1
    version = versions[0]
    assert version["status"] == "READY" and version["current_stage"] == "Production"
    assert version["source"] == f"runs:/{azure_run}/models/{model_id}"
    assert version["run_id"] == azure_run
    tags = {t["key"]: t["value"] for t in version.get("tags", [])}
    assert tags["git"] == "abc" and tags["tether.source_version"].endswith("/1")
    inner = InnerMlflow(tether.ws.mlflow_url)
    model = inner.get("registered-models/get", name=name)["registered_model"]
    assert model["description"] == "a classifier"
    assert {t["key"]: t["value"] for t in model.get("tags", [])} == {"team": "vision"}

    model_report = tether.detail(Key("logged_model", model_id))["report"]
    assert {(r["kind"], r["subject"]) for r in model_report} == {
        ("skipped", "param:alpha"),
        ("skipped", "tag:flavor"),
        ("skipped", "tag:mlflow.modelVersions"),  # set by the registration
        ("mapped", "files"),
    }
    registered = tether.detail(Key("registered_model", _registered_id(tether, name)))
    assert [(r["kind"], r["subject"]) for r in registered["report"]] == [
        ("skipped", "alias:champion")
    ]


def _registered_id(tether: Tether, name: str) -> str:
    with tether.db.read() as session:
        return str(session.scalars(select(RegisteredModel.id).filter_by(name=name)).one())


def test_lost_response_on_version_create_makes_no_duplicate(tether: Tether) -> None:
    exp = tether.experiment()
    run_id = tether.run(exp)
    tether.put_file(run_id, "model/MLmodel", MODEL_FILES["MLmodel"])
    name = f"runs-{run_id[:8]}"
    tether.services.registry.create_model(name, [], "")
    tether.services.registry.create_version(
        name=name,
        source=f"runs:/{run_id}/model",
        run_id=run_id,
        tags=[],
        run_link="",
        description="",
        model_id=None,
    )
    tether.ws.quirks(registry_pending_gets=8)  # still pending after one pass of polling
    tether.ws.faults(path="model-versions/create$", action="lost_response", times=1)

    assert drain_exit_code(tether.drain()) == 0

    versions = _versions(tether, name)
    assert len(versions) == 1, versions
    azure_run = tether.azure_id(Key("run", run_id))
    assert versions[0]["source"] == f"runs:/{azure_run}/model"
    assert versions[0]["status"] == "READY"
    assert [r["hits"] for r in tether.ws.fault_rules()] == [1]
    version = tether.entity(Key("model_version", f"{_registered_id(tether, name)}/1"))
    assert version.azure_id == versions[0]["version"]
    creates = tether.ws.requests(path="model-versions/create$")
    assert len([r for r in creates if name in str(r["json"])]) == 1


def test_version_changes_and_deletes_follow(tether: Tether) -> None:
    exp = tether.experiment()
    run_id = tether.run(exp)
    tether.put_file(run_id, "model/MLmodel", MODEL_FILES["MLmodel"])
    name = f"del-{run_id[:8]}"
    registry = tether.services.registry
    registry.create_model(name, [], "")
    for _ in range(2):
        registry.create_version(
            name=name,
            source=f"mlflow-artifacts:/{exp}/{run_id}/artifacts/model",  # a location in the run
            run_id=run_id,
            tags=[],
            run_link="",
            description="",
            model_id=None,
        )
    assert drain_exit_code(tether.drain()) == 0
    registry.update_version(name, "2", "better")
    registry.set_version_tag(name, "2", "checked", "yes")
    registry.delete_version(name, "1")
    registry.delete_model(name)

    assert drain_exit_code(tether.drain()) == 0

    azure_run = tether.azure_id(Key("run", run_id))
    (version,) = _versions(tether, name)
    assert version["version"] == "2" and version["description"] == "better"
    assert version["source"] == f"runs:/{azure_run}/model"
    assert {t["key"]: t["value"] for t in version["tags"]}["checked"] == "yes"
    report = tether.detail(Key("registered_model", _registered_id_any(tether, name)))["report"]
    assert [(r["kind"], r["subject"]) for r in report] == [("skipped", "delete")]


def _registered_id_any(tether: Tether, name: str) -> str:
    """The id of a registered model that may be deleted locally: from its outbox rows."""
    with tether.db.read() as session:
        rows = session.scalars(
            select(OutboxEntry.entity_id).where(
                OutboxEntry.entity_type == "registered_model",
                OutboxEntry.payload.contains(f'"name":"{name}"'),
            )
        ).all()
    assert rows
    return str(rows[0])
