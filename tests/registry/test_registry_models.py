"""Registered models, model versions, stages and aliases: Tether against `mlflow server`.

Every request goes to both servers; answers must match after normalisation (timestamps, run and
experiment ids; see `registry.helpers`). Rejected requests must change nothing on either side.

Deliberate deviations asserted here (MLflow's answer is an accident of its SQL store):
- transition-stage with archive_existing_versions to a non-active stage, and a `models:/name/
  <stage>` source naming a stage without versions: MLflow answers 500 INTERNAL_ERROR; Tether 400
  INVALID_PARAMETER_VALUE / 404 RESOURCE_DOES_NOT_EXIST with the same message.
- a version number beyond SQLite's INTEGER: MLflow 500, Tether 404 (no such version).
- renaming onto a taken name: MLflow appends the raw IntegrityError to the message.
- a `models:/<model_id>` source naming a missing logged model (with model_id): MLflow 500, Tether
  404 "Logged model with ID ... not found."
- a model name longer than 256 characters (its column): refused by Tether, stored by MLflow on
  SQLite (and a 500 on PostgreSQL).
- get-artifact of a `runs:/` version: MLflow's server fails (500) reading it back; Tether serves
  it. A version stored outside this server's artifact store: MLflow 500, Tether 501.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from compat.diff import Ref
from registry.helpers import RegistryPair
from support import unique_name

DOCS = " See the API docs for more information about request parameters."


def _timestamps(pair: RegistryPair, path: str, body: dict[str, Any], field: str) -> dict[str, int]:
    """The raw last_updated_timestamp of an entity on each side."""
    out = {}
    for side in ("ref", "tet"):
        answer = pair.raw(side, "GET", path, body)
        out[side] = answer[field]["last_updated_timestamp"]
    return out


def _bumped(before: dict[str, int], after: dict[str, int]) -> dict[str, bool]:
    return {side: after[side] > before[side] for side in before}


# ---------------------------------------------------------------------- registered models


def test_create_and_get(pair: RegistryPair) -> None:
    name = unique_name("rm-create")
    tags = [{"key": "b", "value": "2"}, {"key": "a", "value": "1"}, {"key": "a", "value": "3"}]
    created = pair.same(
        "POST",
        "registered-models/create",
        {"name": name, "tags": [*tags, {"key": "empty"}], "description": "about"},
        status=200,
    )
    expected = {
        "name": name,
        "creation_timestamp": "<ts>",
        "last_updated_timestamp": "<ts>",
        "description": "about",
        "tags": [  # in the order first given (a repeated key keeps its first place)
            {"key": "b", "value": "2"},
            {"key": "a", "value": "3"},
            {"key": "empty", "value": ""},
        ],
    }
    assert created == {"registered_model": expected}
    assert pair.get_model(name) == expected
    # The ajax prefix (the MLflow UI's) serves the same API.
    for rest in pair.rest.values():
        answer = rest.get("/ajax-api/2.0/mlflow/registered-models/get", {"name": name})
        assert answer.status == 200
    # Unicode, spaces and an empty description (not shown, as MLflow shows none).
    other = pair.model(unique_name("модель 模型 ✓"), description="")
    assert "description" not in pair.get_model(other)


def test_create_errors(pair: RegistryPair) -> None:
    create = "registered-models/create"
    pair.same_error("POST", create, {})
    pair.same_error("POST", create, {"name": ""})
    pair.same_error("POST", create, {"name": "   "})
    pair.same_error("POST", create, {"name": 5})
    pair.same_error("POST", create, {"name": "a/b"})
    pair.same_error("POST", create, {"name": "a:b"})
    pair.same_error("POST", create, {"name": "../x"})
    pair.same_error("POST", create, {"name": "x/.."})
    pair.same_error("POST", create, {"name": unique_name(), "tags": "x"})
    pair.same_error("POST", create, {"name": unique_name(), "tags": [{"value": "v"}]})
    pair.same_error("POST", create, {"name": unique_name(), "tags": [{"key": "a/../b"}]})
    pair.same_error("POST", create, {"name": unique_name(), "tags": [{"key": "k" * 251}]})
    pair.same_error(
        "POST", create, {"name": unique_name(), "tags": [{"key": "k", "value": "v" * 100_001}]}
    )
    pair.same_error("POST", create, {"name": unique_name(), "description": 3})
    # Deliberate deviation: a name longer than its column (MLflow's and ours: 256) is refused;
    # MLflow stores it on SQLite and fails on PostgreSQL.
    out = pair.send("POST", create, {"name": unique_name("x" * 250)})
    assert out.ref.status == 200
    assert out.tet_body == {
        "error_code": "INVALID_PARAMETER_VALUE",
        "message": "'name' exceeds the maximum length of 256 characters",
    }
    for rest in pair.rest.values():
        answer = rest.request("POST", "registered-models/create", content=b'{"name": "x"}')
        assert (answer.status, answer.error_code) == (400, "INVALID_PARAMETER_VALUE")
    # Nothing of the above was created.
    out = pair.same("GET", "registered-models/search", {"filter": "name LIKE 'a%b'"})
    assert out == {}


def test_duplicate_name(pair: RegistryPair) -> None:
    name = pair.model()
    out = pair.same_error(
        "POST", "registered-models/create", {"name": name}, code="RESOURCE_ALREADY_EXISTS"
    )
    assert out.tet_body["message"] == f"Registered Model (name={name}) already exists."
    # A prompt may not take a model's name (MLflow's wording for the clash).
    prompt_tag = [{"key": "mlflow.prompt.is_prompt", "value": "true"}]
    pair.same_error(
        "POST",
        "registered-models/create",
        {"name": name, "tags": prompt_tag},
        code="RESOURCE_ALREADY_EXISTS",
    )


def test_get_errors(pair: RegistryPair) -> None:
    pair.same_error("GET", "registered-models/get", {})
    pair.same_error("GET", "registered-models/get", {"name": "a/b"})
    pair.same_error(
        "GET",
        "registered-models/get",
        {"name": unique_name("missing")},
        status=404,
        code="RESOURCE_DOES_NOT_EXIST",
    )


def test_update(pair: RegistryPair) -> None:
    name = pair.model(description="first")
    before = _timestamps(pair, "registered-models/get", {"name": name}, "registered_model")
    time.sleep(0.005)
    body = pair.same(
        "PATCH", "registered-models/update", {"name": name, "description": "second"}, status=200
    )
    assert body["registered_model"]["description"] == "second"
    after = _timestamps(pair, "registered-models/get", {"name": name}, "registered_model")
    assert _bumped(before, after) == {"ref": True, "tet": True}
    # Without a description the description is cleared (MLflow stores "").
    body = pair.same("PATCH", "registered-models/update", {"name": name}, status=200)
    assert "description" not in body["registered_model"]
    pair.same_error("PATCH", "registered-models/update", {"description": "x"})
    pair.same_error("PATCH", "registered-models/update", {"name": name, "description": 1})
    pair.same_error(
        "PATCH",
        "registered-models/update",
        {"name": unique_name("missing"), "description": "x"},
        status=404,
        code="RESOURCE_DOES_NOT_EXIST",
    )
    # POST is not the update method.
    for rest in pair.rest.values():
        assert rest.post("registered-models/update", {"name": name}).status == 405


def test_model_tags(pair: RegistryPair) -> None:
    name = pair.model()
    set_tag, delete_tag = "registered-models/set-tag", "registered-models/delete-tag"
    before = _timestamps(pair, "registered-models/get", {"name": name}, "registered_model")
    time.sleep(0.005)
    pair.same("POST", set_tag, {"name": name, "key": "k", "value": "v"}, status=200)
    pair.same("POST", set_tag, {"name": name, "key": "k", "value": "v2"}, status=200)
    pair.same("POST", set_tag, {"name": name, "key": "no-value"}, status=200)
    pair.same("POST", set_tag, {"name": name, "key": "long", "value": "v" * 100_000})
    pair.same("POST", set_tag, {"name": name, "key": "ключ", "value": "✓"}, status=200)
    model = pair.get_model(name)
    assert [t["key"] for t in model["tags"]] == ["k", "no-value", "long", "ключ"]  # as set
    # Tags do not touch last_updated_timestamp.
    after = _timestamps(pair, "registered-models/get", {"name": name}, "registered_model")
    assert _bumped(before, after) == {"ref": False, "tet": False}

    for bad in (
        {"name": name, "key": "k" * 251, "value": "v"},
        {"name": name, "key": "x", "value": "v" * 100_001},
        {"name": name, "key": "../k", "value": "v"},
        {"name": name, "value": "v"},
        {"name": name, "key": "k", "value": 5},
        {"key": "k", "value": "v"},
        {"name": "a:b", "key": "k", "value": "v"},
    ):
        pair.same_error("POST", set_tag, bad)
    pair.same_error(
        "POST",
        set_tag,
        {"name": unique_name("missing"), "key": "k", "value": "v"},
        status=404,
        code="RESOURCE_DOES_NOT_EXIST",
    )
    assert pair.get_model(name) == model

    pair.same("DELETE", delete_tag, {"name": name, "key": "k"}, status=200)
    # Deleting a tag that is not there succeeds, as in MLflow.
    pair.same("DELETE", delete_tag, {"name": name, "key": "k"}, status=200)
    pair.same_error("DELETE", delete_tag, {"name": name})
    pair.same_error("DELETE", delete_tag, {"name": name, "key": "../k"})
    pair.same_error(
        "DELETE",
        delete_tag,
        {"name": unique_name("missing"), "key": "k"},
        status=404,
        code="RESOURCE_DOES_NOT_EXIST",
    )
    assert "k" not in [t["key"] for t in pair.get_model(name)["tags"]]


def test_rename_versions_follow(pair: RegistryPair) -> None:
    name = pair.model(tags=[{"key": "t", "value": "1"}], description="d")
    for _ in range(3):
        pair.version(name)
    pair.same(
        "POST",
        "model-versions/transition-stage",
        {"name": name, "version": "2", "stage": "Production"},
        status=200,
    )
    pair.same("POST", "registered-models/alias", {"name": name, "alias": "champ", "version": "2"})
    pair.same(
        "POST",
        "model-versions/set-tag",
        {"name": name, "version": "1", "key": "k", "value": "v"},
    )
    before = _timestamps(
        pair, "model-versions/get", {"name": name, "version": "1"}, "model_version"
    )
    time.sleep(0.005)
    new_name = unique_name("rm-renamed")
    renamed = pair.same(
        "POST", "registered-models/rename", {"name": name, "new_name": new_name}, status=200
    )
    model = renamed["registered_model"]
    assert model["name"] == new_name
    assert {v["name"] for v in model["latest_versions"]} == {new_name}
    assert model["aliases"] == [{"alias": "champ", "version": "2"}]
    assert pair.get_model(new_name) == model
    pair.same_error(
        "GET", "registered-models/get", {"name": name}, status=404, code="RESOURCE_DOES_NOT_EXIST"
    )
    # Versions, their tags and aliases follow; MLflow bumps every version's timestamp too.
    version = pair.get_version(new_name, "1")
    assert version["name"] == new_name and version["tags"] == [{"key": "k", "value": "v"}]
    after = _timestamps(
        pair, "model-versions/get", {"name": new_name, "version": "1"}, "model_version"
    )
    assert _bumped(before, after) == {"ref": True, "tet": True}
    body = pair.same("GET", "registered-models/alias", {"name": new_name, "alias": "champ"})
    assert body["model_version"]["version"] == "2"
    pair.same_error(
        "GET",
        "model-versions/get",
        {"name": name, "version": "1"},
        status=404,
        code="RESOURCE_DOES_NOT_EXIST",
    )
    # Renaming to its own name is fine; new versions continue the numbering.
    pair.same("POST", "registered-models/rename", {"name": new_name, "new_name": new_name})
    assert pair.version(new_name) == "4"


def test_rename_errors(pair: RegistryPair) -> None:
    name = pair.model()
    taken = pair.model()
    rename = "registered-models/rename"
    pair.same_error("POST", rename, {"name": name})
    pair.same_error("POST", rename, {"name": name, "new_name": ""})
    pair.same_error("POST", rename, {"name": name, "new_name": "  "})
    pair.same_error("POST", rename, {"name": name, "new_name": "a/b"})
    pair.same_error("POST", rename, {"name": name, "new_name": 3})
    pair.same_error("POST", rename, {"new_name": unique_name()})
    pair.same_error(
        "POST",
        rename,
        {"name": unique_name("missing"), "new_name": unique_name()},
        status=404,
        code="RESOURCE_DOES_NOT_EXIST",
    )
    out = pair.same_error(
        "POST",
        rename,
        {"name": name, "new_name": taken},
        code="RESOURCE_ALREADY_EXISTS",
        message=False,
        mentions=(f"Registered Model (name={taken}) already exists.",),
    )
    # Deliberate deviation: no SQL text in Tether's message.
    assert out.tet_body["message"] == f"Registered Model (name={taken}) already exists."
    pair.get_model(name)
    pair.get_model(taken)


def test_delete_model(pair: RegistryPair) -> None:
    name = pair.model(tags=[{"key": "t", "value": "v"}])
    pair.version(name)
    pair.same("POST", "registered-models/alias", {"name": name, "alias": "a1", "version": "1"})
    pair.same("DELETE", "registered-models/delete", {"name": name}, status=200)
    for path, body in (
        ("registered-models/get", {"name": name}),
        ("model-versions/get", {"name": name, "version": "1"}),
        ("registered-models/alias", {"name": name, "alias": "a1"}),
    ):
        pair.same_error("GET", path, body, status=404, code="RESOURCE_DOES_NOT_EXIST")
    pair.same_error(
        "DELETE",
        "registered-models/delete",
        {"name": name},
        status=404,
        code="RESOURCE_DOES_NOT_EXIST",
    )
    pair.same_error("DELETE", "registered-models/delete", {})
    # The name is free again; versions start from 1.
    pair.model(name)
    assert pair.version(name) == "1"


# ------------------------------------------------------------------------- model versions


def test_create_and_get_version(pair: RegistryPair) -> None:
    name = pair.model()
    exp = pair.experiment()
    run = pair.run(exp)
    body = pair.same(
        "POST",
        "model-versions/create",
        {
            "name": name,
            "source": "s3://bucket/models/m",
            "run_id": run,
            "tags": [{"key": "k", "value": "v"}, {"key": "k", "value": "w"}, {"key": "e"}],
            "run_link": "http://example.com/run",
            "description": "first version",
        },
        status=200,
    )
    version = body["model_version"]
    assert version == {
        "name": name,
        "version": "1",
        "creation_timestamp": "<ts>",
        "last_updated_timestamp": "<ts>",
        "current_stage": "None",
        "description": "first version",
        "source": "s3://bucket/models/m",
        "run_id": run.symbol,
        "status": "READY",
        "run_link": "http://example.com/run",
        "tags": [{"key": "k", "value": "w"}, {"key": "e", "value": ""}],  # first given first
    }
    assert pair.get_version(name, "1") == version
    # The registered model now lists it, and its timestamp moved.
    model = pair.get_model(name)
    assert model["latest_versions"] == [version]
    # Versions count up; a bare source gets MLflow's empty run_id / run_link / description.
    assert pair.version(name) == "2"
    second = pair.get_version(name, "2")
    assert (second["run_id"], second["run_link"], second["description"]) == ("", "", "")
    # Version numbers are read as Python reads integers.
    assert pair.get_version(name, " 2")["version"] == "2"
    assert pair.get_version(name, "02")["version"] == "2"


def test_version_errors(pair: RegistryPair) -> None:
    name = pair.model()
    pair.version(name)
    create = "model-versions/create"
    pair.same_error("POST", create, {"name": name})
    pair.same_error("POST", create, {"source": "s3://b/x"})
    pair.same_error("POST", create, {"name": name, "source": 1})
    pair.same_error("POST", create, {"name": "a/b", "source": "s3://b/x"})
    pair.same_error("POST", create, {"name": name, "source": "s3://b/x", "tags": [{"key": "/k"}]})
    pair.same_error(
        "POST",
        create,
        {"name": unique_name("missing"), "source": "s3://b/x"},
        status=404,
        code="RESOURCE_DOES_NOT_EXIST",
    )
    get = "model-versions/get"
    pair.same_error("GET", get, {"name": name})
    pair.same_error("GET", get, {"version": "1"})
    pair.same_error("GET", get, {"name": name, "version": "x"})
    pair.same_error("GET", get, {"name": name, "version": "1.0"})
    for version in ("7", "0", "-1"):
        pair.same_error(
            "GET",
            get,
            {"name": name, "version": version},
            status=404,
            code="RESOURCE_DOES_NOT_EXIST",
        )
    pair.same_error(
        "GET",
        get,
        {"name": unique_name("missing"), "version": "1"},
        status=404,
        code="RESOURCE_DOES_NOT_EXIST",
    )
    # MLflow fails to bind this number (500); Tether has no such version (404).
    out = pair.send("GET", get, {"name": name, "version": "99999999999999999999"})
    assert out.ref.status == 500
    assert (out.tet.status, out.tet.error_code) == (404, "RESOURCE_DOES_NOT_EXIST")
    # Only version 1 exists on both sides.
    assert pair.same("GET", "model-versions/search", {"filter": f"name = '{name}'"})[
        "model_versions"
    ] == [pair.get_version(name, "1")]


def test_update_version(pair: RegistryPair) -> None:
    name = pair.model()
    pair.version(name, description="d1")
    model_before = _timestamps(pair, "registered-models/get", {"name": name}, "registered_model")
    time.sleep(0.005)
    update = "model-versions/update"
    body = pair.same("PATCH", update, {"name": name, "version": "1", "description": "d2"})
    assert body["model_version"]["description"] == "d2"
    # Without a description MLflow clears it (and shows none).
    body = pair.same("PATCH", update, {"name": name, "version": "1"}, status=200)
    assert "description" not in body["model_version"]
    assert "description" not in pair.get_version(name, "1")
    # Updating a version does not touch the model's timestamp.
    model_after = _timestamps(pair, "registered-models/get", {"name": name}, "registered_model")
    assert _bumped(model_before, model_after) == {"ref": False, "tet": False}
    pair.same_error("PATCH", update, {"name": name, "description": "x"})
    pair.same_error("PATCH", update, {"name": name, "version": "1", "description": 5})
    pair.same_error(
        "PATCH",
        update,
        {"name": name, "version": "2", "description": "x"},
        status=404,
        code="RESOURCE_DOES_NOT_EXIST",
    )


def test_version_tags(pair: RegistryPair) -> None:
    name = pair.model()
    pair.version(name)
    set_tag, delete_tag = "model-versions/set-tag", "model-versions/delete-tag"
    key = {"name": name, "version": "1"}
    pair.same("POST", set_tag, {**key, "key": "k", "value": "v"}, status=200)
    pair.same("POST", set_tag, {**key, "key": "k", "value": "v2"}, status=200)
    pair.same("POST", set_tag, {**key, "key": "empty"}, status=200)
    version = pair.get_version(name, "1")
    assert version["tags"] == [{"key": "k", "value": "v2"}, {"key": "empty", "value": ""}]
    for bad in (
        {**key, "key": "../k", "value": "v"},
        {**key, "key": "k" * 251, "value": "v"},
        {**key, "key": "k", "value": "v" * 100_001},
        {**key, "value": "v"},
        {"name": name, "key": "k", "value": "v"},
        {"name": name, "version": "x", "key": "k", "value": "v"},
    ):
        pair.same_error("POST", set_tag, bad)
    pair.same_error(
        "POST",
        set_tag,
        {"name": name, "version": "5", "key": "k", "value": "v"},
        status=404,
        code="RESOURCE_DOES_NOT_EXIST",
    )
    pair.same("DELETE", delete_tag, {**key, "key": "k"}, status=200)
    pair.same("DELETE", delete_tag, {**key, "key": "k"}, status=200)  # not there: still OK
    pair.same_error("DELETE", delete_tag, {**key, "key": "a/../b"})
    pair.same_error("DELETE", delete_tag, {**key})
    pair.same_error(
        "DELETE",
        delete_tag,
        {"name": name, "version": "5", "key": "k"},
        status=404,
        code="RESOURCE_DOES_NOT_EXIST",
    )
    assert pair.get_version(name, "1")["tags"] == [{"key": "empty", "value": ""}]


def test_delete_version(pair: RegistryPair) -> None:
    name = pair.model()
    for _ in range(3):
        pair.version(name)
    pair.same("POST", "registered-models/alias", {"name": name, "alias": "a", "version": "3"})
    pair.same("POST", "registered-models/alias", {"name": name, "alias": "b", "version": "2"})
    pair.same("DELETE", "model-versions/delete", {"name": name, "version": "3"}, status=200)
    pair.same_error(
        "GET",
        "model-versions/get",
        {"name": name, "version": "3"},
        status=404,
        code="RESOURCE_DOES_NOT_EXIST",
    )
    # Its aliases went with it; the latest version is now 2.
    model = pair.get_model(name)
    assert model["aliases"] == [{"alias": "b", "version": "2"}]
    assert [v["version"] for v in model["latest_versions"]] == ["2"]
    pair.same_error(
        "GET",
        "registered-models/alias",
        {"name": name, "alias": "a"},
        code="INVALID_PARAMETER_VALUE",
    )
    # Numbers are never reused.
    assert pair.version(name) == "4"
    pair.same_error(
        "DELETE",
        "model-versions/delete",
        {"name": name, "version": "3"},
        status=404,
        code="RESOURCE_DOES_NOT_EXIST",
    )
    pair.same_error("DELETE", "model-versions/delete", {"name": name, "version": "x"})
    pair.same_error("DELETE", "model-versions/delete", {"name": name})
    # Deleting every version leaves the model without latest versions.
    for version in ("1", "2", "4"):
        pair.same("DELETE", "model-versions/delete", {"name": name, "version": version})
    assert "latest_versions" not in pair.get_model(name)
    assert pair.same("GET", "model-versions/search", {"filter": f"name = '{name}'"}) == {}
    pair.same_error(
        "GET",
        "registered-models/alias",
        {"name": name, "alias": "latest"},
        status=404,
        code="RESOURCE_DOES_NOT_EXIST",
    )


def test_download_uri(pair: RegistryPair) -> None:
    name = pair.model()
    pair.version(name, source="s3://bucket/a/model")
    uri = "model-versions/get-download-uri"
    body = pair.same("GET", uri, {"name": name, "version": "1"}, status=200)
    assert body == {"artifact_uri": "s3://bucket/a/model"}
    # A models:/ source: the version it names, with that version's location.
    pair.version(name, source=f"models:/{name}/1")
    body = pair.same("GET", uri, {"name": name, "version": "2"}, status=200)
    assert body == {"artifact_uri": "s3://bucket/a/model"}
    pair.same_error("GET", uri, {})
    pair.same_error("GET", uri, {"name": name})
    pair.same_error("GET", uri, {"name": name, "version": "x"})
    pair.same_error(
        "GET", uri, {"name": name, "version": "9"}, status=404, code="RESOURCE_DOES_NOT_EXIST"
    )


# -------------------------------------------------------------------------------- stages


def test_stage_transitions(pair: RegistryPair) -> None:
    name = pair.model()
    for _ in range(4):
        pair.version(name)
    transition = "model-versions/transition-stage"
    body = pair.same(
        "POST", transition, {"name": name, "version": "1", "stage": "production"}, status=200
    )
    assert body["model_version"]["current_stage"] == "Production"
    pair.same("POST", transition, {"name": name, "version": "2", "stage": "Production"})
    pair.same("POST", transition, {"name": name, "version": "3", "stage": "STAGING"})
    model = pair.get_model(name)
    assert [(v["version"], v["current_stage"]) for v in model["latest_versions"]] == [
        ("2", "Production"),
        ("3", "Staging"),
        ("4", "None"),
    ]
    # archive_existing_versions moves the stage's other versions to Archived.
    before = _timestamps(
        pair, "model-versions/get", {"name": name, "version": "1"}, "model_version"
    )
    time.sleep(0.005)
    pair.same(
        "POST",
        transition,
        {"name": name, "version": "4", "stage": "Production", "archive_existing_versions": True},
        status=200,
    )
    stages = {v: pair.get_version(name, v)["current_stage"] for v in ("1", "2", "3", "4")}
    assert stages == {"1": "Archived", "2": "Archived", "3": "Staging", "4": "Production"}
    after = _timestamps(pair, "model-versions/get", {"name": name, "version": "1"}, "model_version")
    assert _bumped(before, after) == {"ref": True, "tet": True}

    latest = "registered-models/get-latest-versions"
    all_latest = pair.same("POST", latest, {"name": name}, status=200)
    assert sorted(v["version"] for v in all_latest["model_versions"]) == ["2", "3", "4"]
    pair.same("POST", latest, {"name": name, "stages": ["production"]}, status=200)
    pair.same("POST", latest, {"name": name, "stages": ["None", "Archived"]}, status=200)
    pair.same("GET", latest, {"name": name, "stages": ["Staging", "Production"]}, status=200)
    pair.same("POST", latest, {"name": name, "stages": []}, status=200)
    pair.same_error("POST", latest, {"name": name, "stages": ["bogus"]})
    pair.same_error("POST", latest, {"name": name, "stages": "Staging"})
    pair.same_error("POST", latest, {})
    pair.same_error(
        "POST", latest, {"name": unique_name()}, status=404, code="RESOURCE_DOES_NOT_EXIST"
    )

    # Back to None, then the errors.
    pair.same("POST", transition, {"name": name, "version": "4", "stage": "None"})
    pair.same_error("POST", transition, {"name": name, "version": "1", "stage": "bogus"})
    pair.same_error("POST", transition, {"name": name, "version": "1"})
    pair.same_error("POST", transition, {"name": name, "version": "1", "stage": ""})
    pair.same_error("POST", transition, {"name": name, "version": "x", "stage": "Staging"})
    pair.same_error(
        "POST",
        transition,
        {"name": name, "version": "1", "stage": "Staging", "archive_existing_versions": "yes"},
    )
    pair.same_error(
        "POST",
        transition,
        {"name": name, "version": "9", "stage": "Staging"},
        status=404,
        code="RESOURCE_DOES_NOT_EXIST",
    )
    out = pair.send(
        "POST",
        transition,
        {"name": name, "version": "1", "stage": "Archived", "archive_existing_versions": True},
    )
    assert out.ref.status == 500  # MLflow: INTERNAL_ERROR; Tether: the same message, as a 400
    assert out.tet.status == 400 and out.tet_body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert out.tet_body["message"] == out.ref_body["message"]
    final = {v: pair.get_version(name, v)["current_stage"] for v in ("1", "2", "3", "4")}
    assert final == {"1": "Archived", "2": "Archived", "3": "Staging", "4": "None"}


# ------------------------------------------------------------------------------- aliases


def test_aliases(pair: RegistryPair) -> None:
    name = pair.model()
    for _ in range(3):
        pair.version(name)
    alias = "registered-models/alias"
    pair.same("POST", alias, {"name": name, "alias": "champion", "version": "1"}, status=200)
    pair.same("POST", alias, {"name": name, "alias": "challenger", "version": "1"})
    pair.same("POST", alias, {"name": name, "alias": "champion", "version": "2"})  # moves it
    pair.same("POST", alias, {"name": name, "alias": "Prod-2_x", "version": "3"})
    body = pair.same("GET", alias, {"name": name, "alias": "champion"}, status=200)
    assert body["model_version"]["version"] == "2"
    assert body["model_version"]["aliases"] == ["champion"]
    assert pair.get_version(name, "1")["aliases"] == ["challenger"]
    model = pair.get_model(name)
    assert model["aliases"] == [
        {"alias": "Prod-2_x", "version": "3"},
        {"alias": "challenger", "version": "1"},
        {"alias": "champion", "version": "2"},
    ]
    # "latest" (any case) is the newest version.
    for latest in ("latest", "LATEST"):
        body = pair.same("GET", alias, {"name": name, "alias": latest}, status=200)
        assert body["model_version"]["version"] == "3"
    # Aliases show on get-latest-versions but not in the model's latest_versions.
    versions = pair.same("POST", "registered-models/get-latest-versions", {"name": name})
    assert versions["model_versions"][0]["aliases"] == ["Prod-2_x"]
    assert "aliases" not in model["latest_versions"][0]

    for bad in ("latest", "Latest", "v1", "V12", "a b", "a.b", "x" * 256, ""):
        pair.same_error("POST", alias, {"name": name, "alias": bad, "version": "1"})
    pair.same_error("POST", alias, {"name": name, "alias": "ok"})
    pair.same_error("POST", alias, {"name": name, "alias": "ok", "version": "x"})
    pair.same_error(
        "POST",
        alias,
        {"name": name, "alias": "ok", "version": "7"},
        status=404,
        code="RESOURCE_DOES_NOT_EXIST",
    )
    pair.same_error(
        "POST",
        alias,
        {"name": unique_name(), "alias": "ok", "version": "1"},
        status=404,
        code="RESOURCE_DOES_NOT_EXIST",
    )
    pair.same_error("GET", alias, {"name": name, "alias": "nope"})  # MLflow: 400 here
    pair.same_error("GET", alias, {"name": name, "alias": "a b"})
    pair.same_error("GET", alias, {"name": name})
    pair.same_error(
        "GET",
        alias,
        {"name": unique_name(), "alias": "x"},
        status=404,
        code="RESOURCE_DOES_NOT_EXIST",
    )
    assert pair.get_model(name) == model

    pair.same("DELETE", alias, {"name": name, "alias": "champion"}, status=200)
    pair.same("DELETE", alias, {"name": name, "alias": "champion"}, status=200)  # not there
    pair.same_error("DELETE", alias, {"name": name, "alias": "a b"})
    pair.same_error("DELETE", alias, {"name": name})
    pair.same_error(
        "DELETE",
        alias,
        {"name": unique_name(), "alias": "x"},
        status=404,
        code="RESOURCE_DOES_NOT_EXIST",
    )
    assert [a["alias"] for a in pair.get_model(name)["aliases"]] == ["Prod-2_x", "challenger"]


# ------------------------------------------------------------------------------- sources


def test_run_sources(pair: RegistryPair) -> None:
    name = pair.model()
    exp = pair.experiment()
    run = pair.run(exp)
    other = pair.run(exp)
    create = "model-versions/create"

    def ok(source: Any, **extra: Any) -> dict[str, Any]:
        body: dict[str, Any] = pair.same(
            "POST", create, {"name": name, "source": source, **extra}, status=200
        )
        return body["model_version"]

    def refused(source: Any, **extra: Any) -> None:
        pair.same_error("POST", create, {"name": name, "source": source, **extra})

    runs_source = pair_source(pair, "runs:/{}/model", run)
    version = ok(runs_source, run_id=run)
    assert version["source"] == f"runs:/{run.symbol}/model"
    download = pair.same(
        "GET", "model-versions/get-download-uri", {"name": name, "version": version["version"]}
    )
    assert download == {"artifact_uri": f"runs:/{run.symbol}/model"}
    refused(runs_source)  # runs:/ needs the run_id
    refused(runs_source, run_id=other)
    refused(pair_source(pair, "runs://host/{}/model", run), run_id=run)
    refused(pair_source(pair, "runs:/{}/../model", run), run_id=run)

    # mlflow-artifacts sources must lie inside the run's artifact root.
    inside = pair_artifact_source(pair, exp, run, "/artifacts/model")
    ok(inside, run_id=run)
    refused(inside)
    refused(inside, run_id=other)
    refused("mlflow-artifacts:/elsewhere/model", run_id=run)
    refused("mlflow-artifacts://evil.example.com:80/x", run_id=run)
    # Local paths and relative references are refused; other schemes pass unchecked.
    refused("/tmp/model")
    refused("file:///tmp/model", run_id=run)
    refused("s3://bucket/../x")
    refused("s3://bucket/%2e%2e/x")
    refused("s3://bucket")
    refused("http://evil.example.com/x")
    version = ok("s3://bucket/x", run_id="not-a-known-run")
    assert version["run_id"] == "not-a-known-run"


def pair_source(pair: RegistryPair, template: str, run: Ref) -> Ref:
    """A per-side source string containing a run id."""
    return Ref("<src>", template.format(run.ref), template.format(run.tet))


def pair_artifact_source(pair: RegistryPair, exp: Ref, run: Ref, rest: str) -> Ref:
    return Ref(
        "<src>",
        f"mlflow-artifacts:/{exp.ref}/{run.ref}{rest}",
        f"mlflow-artifacts:/{exp.tet}/{run.tet}{rest}",
    )


def test_model_sources(pair: RegistryPair) -> None:
    name = pair.model()
    exp = pair.experiment()
    run = pair.run(exp)
    pair.version(name, source="s3://bucket/v1", run_id=run)
    pair.same("POST", "registered-models/alias", {"name": name, "alias": "champ", "version": "1"})
    pair.same(
        "POST",
        "model-versions/transition-stage",
        {"name": name, "version": "1", "stage": "Staging"},
    )
    create = "model-versions/create"
    # A models:/ source is pinned to the version it names and inherits its run.
    for source in (f"models:/{name}/1", f"models:/{name}@champ", f"models:/{name}/Staging"):
        body = pair.same("POST", create, {"name": name, "source": source}, status=200)
        version = body["model_version"]
        assert (version["source"], version["run_id"]) == (f"models:/{name}/1", run.symbol)
    body = pair.same("POST", create, {"name": name, "source": f"models:/{name}/latest"})
    assert body["model_version"]["source"] == f"models:/{name}/4"
    uri = pair.same("GET", "model-versions/get-download-uri", {"name": name, "version": "5"})
    assert uri == {"artifact_uri": "s3://bucket/v1"}
    # An explicit run_id must match the source version's.
    pair.same("POST", create, {"name": name, "source": f"models:/{name}/1", "run_id": run})
    pair.same_error(
        "POST", create, {"name": name, "source": f"models:/{name}/1", "run_id": "other"}
    )
    pair.same_error("POST", create, {"name": name, "source": f"models:/{name}@nope"})
    pair.same_error(
        "POST",
        create,
        {"name": name, "source": f"models:/{unique_name()}/1"},
        status=404,
        code="RESOURCE_DOES_NOT_EXIST",
    )
    pair.same_error(
        "POST",
        create,
        {"name": name, "source": f"models:/{name}/99"},
        status=404,
        code="RESOURCE_DOES_NOT_EXIST",
    )
    pair.same_error("POST", create, {"name": name, "source": f"models://x/{name}/1"})
    pair.same_error("POST", create, {"name": name, "source": f"models:/{name}"})
    pair.same_error("POST", create, {"name": name, "source": "models:/m-0123456789abcdef"})
    # A stage without versions: MLflow 500, Tether 404 with the same message.
    out = pair.send("POST", create, {"name": name, "source": f"models:/{name}/Production"})
    assert out.ref.status == 500 and out.tet.status == 404
    assert out.ref_body["message"] == out.tet_body["message"]
    # A logged model that does not exist.
    pair.same_error(
        "POST",
        create,
        {"name": name, "source": "s3://b/x", "model_id": "m-0123456789abcdef"},
        status=404,
        code="RESOURCE_DOES_NOT_EXIST",
    )
    out = pair.send(
        "POST",
        create,
        {"name": name, "source": "models:/m-0123", "model_id": "m-0123"},
    )
    assert out.ref.status == 500
    assert (out.tet.status, out.tet.error_code) == (404, "RESOURCE_DOES_NOT_EXIST")
    # Nothing was created by the refused requests.
    versions = pair.same("GET", "model-versions/search", {"filter": f"name = '{name}'"})
    assert sorted(int(v["version"]) for v in versions["model_versions"]) == [1, 2, 3, 4, 5, 6]


def test_prompts(pair: RegistryPair) -> None:
    """Prompts are registered models tagged `mlflow.prompt.is_prompt`; searches skip them."""
    prompt_tag = {"key": "mlflow.prompt.is_prompt", "value": "true"}
    name = pair.model(unique_name("prompt"), tags=[prompt_tag])
    create = "model-versions/create"
    pair.same(
        "POST",
        create,
        {"name": name, "source": "dummy-source", "tags": [prompt_tag]},
        status=200,
    )
    pair.same_error("POST", create, {"name": name, "source": "s3://b/x", "tags": [prompt_tag]})
    search = pair.same("GET", "registered-models/search", {"filter": f"name = '{name}'"})
    assert search == {}
    found = pair.same(
        "GET",
        "registered-models/search",
        {"filter": f"name = '{name}' AND tags.`mlflow.prompt.is_prompt` = 'true'"},
    )
    assert [m["name"] for m in found["registered_models"]] == [name]
    assert pair.same("GET", "model-versions/search", {"filter": f"name = '{name}'"}) == {}
    found = pair.same(
        "GET",
        "model-versions/search",
        {"filter": f"name = '{name}' AND tags.`mlflow.prompt.is_prompt` != 'false'"},
    )
    assert len(found["model_versions"]) == 1
    # A prompt version is no source for a model version.
    other = pair.model()
    pair.same_error("POST", create, {"name": other, "source": f"models:/{name}/1"})


def test_method_and_path_table(pair: RegistryPair) -> None:
    """Each endpoint answers on exactly the proto's methods (others: 405)."""
    table = {
        "registered-models/create": "POST",
        "registered-models/rename": "POST",
        "registered-models/update": "PATCH",
        "registered-models/delete": "DELETE",
        "registered-models/get": "GET",
        "registered-models/search": "GET",
        "registered-models/set-tag": "POST",
        "registered-models/delete-tag": "DELETE",
        "model-versions/create": "POST",
        "model-versions/update": "PATCH",
        "model-versions/transition-stage": "POST",
        "model-versions/delete": "DELETE",
        "model-versions/get": "GET",
        "model-versions/search": "GET",
        "model-versions/get-download-uri": "GET",
        "model-versions/set-tag": "POST",
        "model-versions/delete-tag": "DELETE",
    }
    for path, method in table.items():
        for other in ("GET", "POST", "PATCH", "DELETE"):
            if other == method:
                continue
            statuses = {
                side: rest.request(other, path, json={}).status for side, rest in pair.rest.items()
            }
            assert statuses == {"ref": 405, "tet": 405}, (path, other, statuses)


# ---------------------------------------------------------------------------- get-artifact


def test_get_artifact(pair: RegistryPair) -> None:
    """The UI's `/model-versions/get-artifact`: a version's files through the artifact proxy."""
    name = pair.model()
    exp = pair.experiment()
    run = pair.run(exp)
    files = {"model/MLmodel": b"flavors: {}\n", "model/sub/data.json": b'{"a": 1}'}
    for side, rest in pair.rest.items():
        run_id, exp_id = run.side(side), exp.side(side)
        for path, content in files.items():
            url = f"/api/2.0/mlflow-artifacts/artifacts/{exp_id}/{run_id}/artifacts/{path}"
            assert rest.request("PUT", url, content=content).status == 200
    pair.version(name, source=pair_source(pair, "runs:/{}/model", run), run_id=run)
    pair.version(name, source=pair_artifact_source(pair, exp, run, "/artifacts/model"), run_id=run)
    pair.version(name, source="s3://bucket/elsewhere")

    def fetch(params: dict[str, str]) -> dict[str, Any]:
        answers = {}
        for side, rest in pair.rest.items():
            answer = rest.get("/model-versions/get-artifact", params)
            headers = {
                k: answer.headers.get(k)
                for k in ("content-type", "content-disposition", "content-length")
            }
            answers[side] = {"status": answer.status, "headers": headers, "text": answer.text}
        return answers

    for path, content in (("MLmodel", files["model/MLmodel"]), ("sub/data.json", b'{"a": 1}')):
        out = fetch({"name": name, "version": "2", "path": path})
        assert out["ref"] == out["tet"]
        assert out["tet"]["status"] == 200 and out["tet"]["text"].encode() == content
        assert out["tet"]["headers"]["content-type"] == "text/plain"
    # A runs:/ source: MLflow's server cannot read it back (500, it would have to call
    # itself); Tether resolves the run's artifact root.
    out = fetch({"name": name, "version": "1", "path": "MLmodel"})
    assert out["ref"]["status"] == 500
    assert out["tet"]["status"] == 200 and out["tet"]["text"] == "flavors: {}\n"

    for params, status in (
        ({"name": name, "version": "2", "path": "nope"}, 404),
        ({"name": name, "version": "2", "path": "sub"}, 400),
        ({"name": name, "version": "2", "path": "../../x"}, 400),
        ({"name": name, "version": "2", "path": "%2e%2e/x"}, 400),
        ({"name": name, "version": "9", "path": "MLmodel"}, 404),
        ({"version": "2", "path": "MLmodel"}, 400),
    ):
        out = fetch(params)
        assert out["ref"]["status"] == out["tet"]["status"] == status, (params, out)
        ref_body = pair.norm["ref"](json.loads(out["ref"]["text"]))
        tet_body = pair.norm["tet"](json.loads(out["tet"]["text"]))
        assert re.sub(r"'\d+/", "'", ref_body["message"]) == re.sub(
            r"'\d+/", "'", tet_body["message"]
        )
    # No path: Flask's HTML 400 on MLflow, a JSON 400 on Tether.
    out = fetch({"name": name, "version": "2"})
    assert out["ref"]["status"] == out["tet"]["status"] == 400
    # Files outside this server's artifact store cannot be served.
    out = fetch({"name": name, "version": "3", "path": "x"})
    assert out["ref"]["status"] == 500 and out["tet"]["status"] == 501
