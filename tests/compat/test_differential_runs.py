"""Runs API: Tether against the reference `mlflow server`, request by request.

Deliberate deviations asserted here:
- runs/update with an unknown status: MLflow ignores it silently and answers 200; Tether refuses
  with 400 INVALID_PARAMETER_VALUE and changes nothing.
- runs/create without start_time: MLflow stores 0, Tether the server's clock.
- runs/create validates its tags like set-tag does; MLflow stores any key ("", "/abs", 251 chars)
  and does not truncate values over 8000 characters there.
- runs/create without experiment_id: MLflow answers 400 BAD_REQUEST with a raw FOREIGN KEY error;
  Tether creates the run in the default experiment "0" (what MLflow's client does too).
- log-inputs: a dataset missing name/digest/source_type/source, or an input without a dataset,
  is refused (MLflow stores an all-empty dataset). (`models`: see tests/logged_models.)
- log-batch bodies over 1 MB: MLflow's size check measures the parsed dict and never fires, and
  its client sends such bodies; Tether accepts them too (it caps bodies at 32 MiB only).
- runs/search with a non-string experiment id or an unknown run_view_type: MLflow drops or
  ignores them; Tether refuses them with 400.
- a value of the wrong JSON type that MLflow has no validator for (a tag value 3, a timestamp
  `true`, `tags` as an object): MLflow keeps what protobuf parsed before the error and drops the
  rest (stores "" or 0); Tether refuses with 400 and MLflow's "Hint: Value was of type" wording.
- NaN / Infinity as bare JSON literals (what Python's json.dumps writes): MLflow stores value 0
  at timestamp 0 (its parse fails half-way); Tether stores the real point.
- log-batch with a non-object list item (`"metrics": [1]`): MLflow crashes with a 500 HTML page;
  Tether answers 400 INVALID_PARAMETER_VALUE.
- log-batch (and every write) is one transaction in Tether; a rejected batch changes nothing
  (MLflow's SQL store behaves the same for the rejections tested here).
"""

from __future__ import annotations

from typing import Any

from compat.diff import Pair, assert_same, is_random_run_name
from support import unique_name

DOCS = " See the API docs for more information about request parameters."
MISSING_RUN = {"status": 404, "code": "RESOURCE_DOES_NOT_EXIST"}
NO_RUN = "0" * 32


def _data(snapshot: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = snapshot["run"]["data"]
    return data


def test_create_and_get(pair: Pair) -> None:
    exp = pair.experiment()
    body = {
        "experiment_id": exp,
        "start_time": 1_700_000_000_123,
        "run_name": "named-run",
        "user_id": "alice",
        "tags": [{"key": "b", "value": "2"}, {"key": "a", "value": ""}],
    }
    out = pair.send("POST", "runs/create", body)
    assert_same(out, 200)
    run = pair.register(
        "run", out.ref.json["run"]["info"]["run_id"], out.tet.json["run"]["info"]["run_id"]
    )
    # Normalise again now the ids are registered, so they show as the run's symbol.
    created = pair.norm["tet"](out.tet.json)
    run_id = run.symbol
    assert created == {
        "run": {
            "info": {
                "run_id": run_id,
                "run_uuid": run_id,
                "run_name": "named-run",
                "experiment_id": exp.symbol,
                "user_id": "alice",
                "status": "RUNNING",
                "start_time": 1_700_000_000_123,
                "artifact_uri": f"mlflow-artifacts:/{exp.symbol}/{run_id}/artifacts",
                "lifecycle_stage": "active",
            },
            "data": {
                "tags": [  # in the order given, then the name both servers add
                    {"key": "b", "value": "2"},
                    {"key": "a", "value": ""},
                    {"key": "mlflow.runName", "value": "named-run"},
                ]
            },
            "inputs": {},
        }
    }
    got = pair.snapshot(run)
    # runs/get adds the (empty) outputs runs/create leaves out.
    assert got == {"run": {**created["run"], "outputs": {}}}


def test_run_name_from_tag_and_random(pair: Pair) -> None:
    exp = pair.experiment()
    tagged = pair.same(
        "POST",
        "runs/create",
        {"experiment_id": exp, "start_time": 5, "tags": [{"key": "mlflow.runName", "value": "t"}]},
    )
    assert tagged["run"]["info"]["run_name"] == "t"
    pair.same_error(
        "POST",
        "runs/create",
        {
            "experiment_id": exp,
            "run_name": "a",
            "tags": [{"key": "mlflow.runName", "value": "b"}],
        },
    )
    # A random name when none is given: compare its shape, not its value.
    out = pair.send("POST", "runs/create", {"experiment_id": exp, "start_time": 5})
    assert out.ref.status == out.tet.status == 200
    names = [b["run"]["info"]["run_name"] for b in (out.ref_body, out.tet_body)]
    assert all(is_random_run_name(n) for n in names), names
    for body, name in zip((out.ref_body, out.tet_body), names, strict=True):
        assert body["run"]["data"]["tags"] == [{"key": "mlflow.runName", "value": name}]
        body["run"]["info"]["run_name"] = body["run"]["data"]["tags"][0]["value"] = "<random>"
    assert out.ref_body == out.tet_body


def test_create_defaults_deviate(pair: Pair) -> None:
    exp = pair.experiment()
    out = pair.send("POST", "runs/create", {"experiment_id": exp, "run_name": "x"})
    assert out.ref.status == out.tet.status == 200
    assert out.ref.json["run"]["info"]["start_time"] == 0
    assert out.tet.json["run"]["info"]["start_time"] > 1_600_000_000_000
    no_exp = pair.send("POST", "runs/create", {"run_name": "x", "start_time": 1})
    assert (no_exp.ref.status, no_exp.ref.error_code) == (400, "BAD_REQUEST")
    assert no_exp.tet.status == 200
    assert no_exp.tet.json["run"]["info"]["experiment_id"] == "0"


def test_create_errors(pair: Pair) -> None:
    exp = pair.experiment()
    pair.same_error("POST", "runs/create", {"experiment_id": "987654321"}, **MISSING_RUN)
    pair.same_error("POST", "runs/create", {"experiment_id": "abc"})
    pair.same_error("POST", "runs/create", {"experiment_id": 1})
    pair.same_error("POST", "runs/create", {"experiment_id": exp, "start_time": "abc"})


def test_create_validates_tags(pair: Pair) -> None:
    """MLflow's runs/create stores any tag key (even "", "/abs" or 251 characters); Tether
    applies set-tag's rules."""
    exp = pair.experiment()
    for key in ("/abs", "k" * 251, ""):
        body = {"experiment_id": exp, "start_time": 1, "tags": [{"key": key, "value": "v"}]}
        out = pair.send("POST", "runs/create", body)
        assert out.ref.status == 200
        assert (out.tet.status, out.tet.error_code) == (400, "INVALID_PARAMETER_VALUE")
    # Over-long values: MLflow stores all 8001 characters here (a PostgreSQL store would fail);
    # Tether truncates them to 8000 as set-tag does on both.
    long_value = {"key": "long", "value": "v" * 8001}
    body = {"experiment_id": exp, "start_time": 1, "run_name": "n", "tags": [long_value]}
    out = pair.send("POST", "runs/create", body)
    assert out.ref.status == out.tet.status == 200
    for answer, length in ((out.ref, 8001), (out.tet, 8000)):
        tags = {t["key"]: t["value"] for t in answer.json["run"]["data"]["tags"]}
        assert tags["long"] == "v" * length


def test_update(pair: Pair) -> None:
    run = pair.run(pair.experiment())
    update = "runs/update"
    info = pair.same("POST", update, {"run_id": run, "status": "FINISHED", "end_time": 2000})
    assert info["run_info"]["status"] == "FINISHED" and info["run_info"]["end_time"] == 2000
    info = pair.same("POST", update, {"run_id": run, "run_name": "renamed"})
    assert info["run_info"]["run_name"] == "renamed"
    # The status enum by number, as protobuf's JSON mapping allows (5 = KILLED).
    info = pair.same("POST", update, {"run_id": run, "status": 5})
    assert info["run_info"]["status"] == "KILLED"
    info = pair.same("POST", update, {"run_id": run, "status": "4"})
    assert info["run_info"]["status"] == "FAILED"
    info = pair.same("POST", update, {"run_id": run})
    assert info["run_info"]["status"] == "FAILED"
    for number in (0, 6):
        pair.same_error("POST", update, {"run_id": run, "status": number})
    assert {"key": "mlflow.runName", "value": "renamed"} in _data(pair.snapshot(run))["tags"]
    pair.same_error("POST", update, {"run_id": NO_RUN, "status": "FAILED"}, **MISSING_RUN)
    pair.same_error("POST", update, {"status": "FAILED"})
    pair.same_error("POST", update, {"run_id": run, "end_time": "soon"})
    pair.same_error("POST", update, {"run_id": run, "status": ["FAILED"]})


def test_update_unknown_status_is_refused(pair: Pair) -> None:
    run = pair.run(pair.experiment())
    before = pair.snapshot(run)
    out = pair.send("POST", "runs/update", {"run_id": run, "status": "BOGUS"})
    assert out.ref.status == 200  # MLflow ignores it
    assert (out.tet.status, out.tet.error_code) == (400, "INVALID_PARAMETER_VALUE")
    assert "BOGUS" in out.tet.json["message"]
    assert pair.snapshot(run) == before


def test_get_errors(pair: Pair) -> None:
    pair.same_error("GET", "runs/get", {})
    pair.same_error("GET", "runs/get", {"run_id": NO_RUN}, **MISSING_RUN)
    pair.same_error("GET", "runs/get", {"run_id": "not-a-run"}, **MISSING_RUN)


def test_get_by_run_uuid(pair: Pair) -> None:
    run = pair.run(pair.experiment())
    assert pair.same("GET", "runs/get", {"run_uuid": run}) == pair.snapshot(run)


def test_delete_restore(pair: Pair) -> None:
    run = pair.run(pair.experiment())
    pair.same("POST", "runs/delete", {"run_id": run}, status=200)
    deleted = pair.snapshot(run)
    assert deleted["run"]["info"]["lifecycle_stage"] == "deleted"
    for path, body in (
        ("runs/log-metric", {"key": "m", "value": 1, "timestamp": 1}),
        ("runs/log-parameter", {"key": "p", "value": "1"}),
        ("runs/set-tag", {"key": "t", "value": "1"}),
        ("runs/delete-tag", {"key": "mlflow.runName"}),
        ("runs/update", {"status": "FAILED"}),
        ("runs/log-batch", {"params": [{"key": "p", "value": "1"}]}),
    ):
        pair.same_error("POST", path, {"run_id": run, **body})
    assert pair.snapshot(run) == deleted
    # Deleting twice is fine, as is restoring twice.
    pair.same("POST", "runs/delete", {"run_id": run}, status=200)
    pair.same("POST", "runs/restore", {"run_id": run}, status=200)
    pair.same("POST", "runs/restore", {"run_id": run}, status=200)
    assert pair.snapshot(run)["run"]["info"]["lifecycle_stage"] == "active"
    pair.same_error("POST", "runs/delete", {"run_id": NO_RUN}, **MISSING_RUN)
    pair.same_error("POST", "runs/restore", {"run_id": NO_RUN}, **MISSING_RUN)
    pair.same_error("POST", "runs/delete", {})


def test_tags(pair: Pair) -> None:
    run = pair.run(pair.experiment())
    set_tag = "runs/set-tag"
    pair.same("POST", set_tag, {"run_id": run, "key": "t", "value": "v"}, status=200)
    pair.same("POST", set_tag, {"run_id": run, "key": "t", "value": "v2"}, status=200)
    pair.same("POST", set_tag, {"run_id": run, "key": "no-value"}, status=200)
    pair.same("POST", set_tag, {"run_id": run, "key": "ключ/ü", "value": "значение ✓"})
    pair.same("POST", set_tag, {"run_id": run, "key": "k" * 250, "value": "x"})
    # Over-long values are truncated to 8000 characters, not refused.
    pair.same("POST", set_tag, {"run_id": run, "key": "long", "value": "x" * 8000})
    pair.same("POST", set_tag, {"run_id": run, "key": "longer", "value": "y" * 9000})
    pair.same("POST", set_tag, {"run_id": run, "key": "mlflow.runName", "value": "via-tag"})
    snap = pair.snapshot(run)
    tags = {t["key"]: t.get("value") for t in _data(snap)["tags"]}
    assert tags["t"] == "v2" and tags["no-value"] == "" and len(tags["longer"]) == 8000
    assert snap["run"]["info"]["run_name"] == "via-tag"

    pair.same_error("POST", set_tag, {"run_id": run, "key": "k" * 251, "value": "x"})
    pair.same_error("POST", set_tag, {"run_id": run, "key": "a/../b", "value": "x"})
    pair.same_error("POST", set_tag, {"run_id": run, "key": "/lead", "value": "x"})
    pair.same_error("POST", set_tag, {"run_id": run, "key": "bad\nname", "value": "x"})
    pair.same_error("POST", set_tag, {"run_id": run, "value": "x"})
    pair.same_error("POST", set_tag, {"run_id": run, "key": "i", "value": 7})
    pair.same_error("POST", set_tag, {"run_id": NO_RUN, "key": "k", "value": "x"}, **MISSING_RUN)
    assert pair.snapshot(run) == snap

    pair.same("POST", "runs/delete-tag", {"run_id": run, "key": "t"}, status=200)
    pair.same_error("POST", "runs/delete-tag", {"run_id": run, "key": "t"}, **MISSING_RUN)
    pair.same_error("POST", "runs/delete-tag", {"run_id": NO_RUN, "key": "t"}, **MISSING_RUN)
    pair.same_error("POST", "runs/delete-tag", {"run_id": run})
    assert "t" not in {t["key"] for t in _data(pair.snapshot(run))["tags"]}


def test_insertion_order(pair: Pair) -> None:
    """A run's params, tags and metrics come in the order they were first written (MLflow's
    row order), not by key: an overwritten tag or an updated metric keeps its place, a tag
    deleted and set again goes last. The compare-runs view picks its default axes from it."""
    exp = pair.experiment()
    run = pair.run(exp, tags=[{"key": "zeta", "value": "1"}, {"key": "alpha", "value": "1"}])
    batch = {
        "run_id": run,
        "params": [{"key": k, "value": "1"} for k in ("solver", "alpha", "mid")],
        "metrics": [
            {"key": key, "value": value, "timestamp": 1, "step": 0}
            for key, value in (("zz", 1), ("loss", 2), ("zz", 3), ("acc", 4))
        ],
        "tags": [
            {"key": "t2", "value": "a"},
            {"key": "t1", "value": "b"},
            {"key": "t2", "value": "c"},
        ],
    }
    pair.same("POST", "runs/log-batch", batch, status=200)
    pair.same("POST", "runs/log-parameter", {"run_id": run, "key": "beta", "value": "2"})
    metric = {"run_id": run, "timestamp": 5, "step": 1}
    pair.same("POST", "runs/log-metric", {**metric, "key": "aaa", "value": 1}, status=200)
    pair.same("POST", "runs/log-metric", {**metric, "key": "zz", "value": 9}, status=200)
    pair.same("POST", "runs/set-tag", {"run_id": run, "key": "alpha", "value": "2"})
    pair.same("POST", "runs/set-tag", {"run_id": run, "key": "b", "value": "x"})
    pair.same("POST", "runs/delete-tag", {"run_id": run, "key": "zeta"}, status=200)
    pair.same("POST", "runs/set-tag", {"run_id": run, "key": "zeta", "value": "again"})
    pair.same("POST", "runs/update", {"run_id": run, "run_name": "renamed"}, status=200)
    data = _data(pair.snapshot(run))
    assert [p["key"] for p in data["params"]] == ["solver", "alpha", "mid", "beta"]
    assert [(m["key"], m["value"]) for m in data["metrics"]] == [
        ("zz", 9.0),
        ("loss", 2.0),
        ("acc", 4.0),
        ("aaa", 1.0),
    ]
    keys = [t["key"] for t in data["tags"]]
    assert keys == ["alpha", "mlflow.runName", "t2", "t1", "b", "zeta"]
    body = pair.same("POST", "runs/search", {"experiment_ids": [exp]}, status=200)
    assert body["runs"][0]["data"] == data


def test_params(pair: Pair) -> None:
    run = pair.run(pair.experiment())
    log = "runs/log-parameter"
    pair.same("POST", log, {"run_id": run, "key": "p", "value": "1"}, status=200)
    pair.same("POST", log, {"run_id": run, "key": "p", "value": "1"}, status=200)  # same value
    pair.same("POST", log, {"run_id": run, "key": "empty"}, status=200)
    pair.same("POST", log, {"run_id": run, "key": "ключ", "value": "значение 🚀"}, status=200)
    pair.same("POST", log, {"run_id": run, "key": "max", "value": "a" * 6000}, status=200)
    # 6001 characters: truncated to 6000, not refused.
    pair.same("POST", log, {"run_id": run, "key": "over", "value": "b" * 6001}, status=200)
    pair.same("POST", log, {"run_id": run, "key": "k" * 250, "value": "v"}, status=200)
    snap = pair.snapshot(run)
    params = {p["key"]: p.get("value") for p in _data(snap)["params"]}
    assert params["over"] == "b" * 6000 and params["max"] == "a" * 6000 and params["empty"] == ""
    # Re-logging the truncated value is the same value.
    pair.same("POST", log, {"run_id": run, "key": "over", "value": "b" * 7000}, status=200)

    out = pair.same_error("POST", log, {"run_id": run, "key": "p", "value": "2"})
    assert "Changing param values is not allowed" in out.tet_body["message"]
    pair.same_error("POST", log, {"run_id": run, "key": "k" * 251, "value": "v"})
    pair.same_error("POST", log, {"run_id": run, "key": "a/../b", "value": "v"})
    pair.same_error("POST", log, {"run_id": run, "key": "/p", "value": "v"})
    pair.same_error("POST", log, {"run_id": run, "key": "x", "value": 5})
    pair.same_error("POST", log, {"run_id": run, "key": 5, "value": "v"})
    pair.same_error("POST", log, {"run_id": run, "value": "v"})
    pair.same_error("POST", log, {"key": "x", "value": "v"})
    pair.same_error("POST", log, {"run_id": NO_RUN, "key": "x", "value": "v"}, **MISSING_RUN)
    assert pair.snapshot(run) == snap


def test_log_metric(pair: Pair) -> None:
    run = pair.run(pair.experiment())
    log = "runs/log-metric"
    points = [
        {"key": "m", "value": 1.5, "timestamp": 10, "step": 2},
        {"key": "m", "value": 0.5, "timestamp": 20, "step": 1},
        {"key": "str-numbers", "value": "2.5", "timestamp": "30", "step": "3"},
        {"key": "no-step", "value": 1, "timestamp": 1},
        {"key": "nan", "value": "NaN", "timestamp": 1},
        {"key": "inf", "value": "Infinity", "timestamp": 1},
        {"key": "ninf", "value": "-Infinity", "timestamp": 1},
        {"key": "big", "value": 1e308, "timestamp": 1},
        {"key": "ключ/ü", "value": -3, "timestamp": 1},
        {"key": "k" * 250, "value": 1, "timestamp": 1},
        {"key": "zero-ts", "value": 1, "timestamp": 0},
    ]
    for point in points:
        pair.same("POST", log, {"run_id": run, **point}, status=200)
    snap = pair.snapshot(run)
    latest = {m["key"]: m for m in _data(snap)["metrics"]}
    assert latest["m"] == {"key": "m", "value": 1.5, "timestamp": 10, "step": 2}
    assert latest["nan"]["value"] == "NaN"
    assert latest["inf"]["value"] == 1.7976931348623157e308
    assert latest["ninf"]["value"] == -1.7976931348623157e308

    pair.same_error("POST", log, {"run_id": run, "key": "m", "value": 1})
    pair.same_error("POST", log, {"run_id": run, "key": "m", "timestamp": 1})
    pair.same_error("POST", log, {"run_id": run, "value": 1, "timestamp": 1})
    pair.same_error("POST", log, {"run_id": run, "key": "m", "value": "abc", "timestamp": 1})
    pair.same_error("POST", log, {"run_id": run, "key": "m", "value": 1, "timestamp": "x"})
    pair.same_error("POST", log, {"run_id": run, "key": "m", "value": 1, "timestamp": -1})
    pair.same_error("POST", log, {"run_id": run, "key": "k" * 251, "value": 1, "timestamp": 1})
    pair.same_error("POST", log, {"run_id": run, "key": "a/../b", "value": 1, "timestamp": 1})
    pair.same_error("POST", log, {"run_id": run, "key": "/m", "value": 1, "timestamp": 1})
    pair.same_error("POST", log, {"key": "m", "value": 1, "timestamp": 1})
    pair.same_error(
        "POST", log, {"run_id": NO_RUN, "key": "m", "value": 1, "timestamp": 1}, **MISSING_RUN
    )
    assert pair.snapshot(run) == snap


def test_non_finite_json_literals(pair: Pair) -> None:
    """Python's json.dumps writes NaN/Infinity as bare literals; what do the servers keep?"""
    run = pair.run(pair.experiment())
    literals = {"lit-nan": "NaN", "lit-inf": "Infinity", "lit-ninf": "-Infinity"}
    for key, literal in literals.items():

        def body(side: str, key: str = key, literal: str = literal) -> bytes:
            run_id = run.side(side)
            return (
                f'{{"run_id": "{run_id}", "key": "{key}", "value": {literal}, '
                f'"timestamp": 7, "step": 1}}'
            ).encode()

        out = pair.send_raw("runs/log-metric", body, **{"Content-Type": "application/json"})
        assert out.ref.status == out.tet.status == 200
    got = pair.rest["tet"].get("runs/get", {"run_id": run.tet}).json
    tether = {m["key"]: m for m in got["run"]["data"]["metrics"]}
    # Deliberate deviation: MLflow keeps value 0 at timestamp 0 for these; Tether the real point.
    assert tether["lit-nan"] == {"key": "lit-nan", "value": "NaN", "timestamp": 7, "step": 1}
    assert tether["lit-inf"]["value"] == 1.7976931348623157e308
    assert tether["lit-ninf"]["value"] == -1.7976931348623157e308


def test_log_batch(pair: Pair) -> None:
    run = pair.run(pair.experiment())
    batch = {
        "run_id": run,
        "metrics": [
            {"key": "loss", "value": 1.0 / (i + 1), "timestamp": 100 + i, "step": i}
            for i in range(50)
        ]
        + [{"key": "nan", "value": "NaN", "timestamp": 1}],
        "params": [{"key": f"p{i}", "value": str(i)} for i in range(20)]
        + [{"key": "long", "value": "z" * 6001}, {"key": "ключ", "value": "✓"}],
        "tags": [{"key": f"t{i}", "value": "v"} for i in range(20)]
        + [{"key": "long", "value": "z" * 8001}, {"key": "mlflow.runName", "value": "b"}],
    }
    pair.same("POST", "runs/log-batch", batch, status=200)
    # Logging the same params again is fine.
    pair.same("POST", "runs/log-batch", {"run_id": run, "params": batch["params"]}, status=200)
    pair.same("POST", "runs/log-batch", {"run_id": run}, status=200)
    snap = pair.snapshot(run)
    assert snap["run"]["info"]["run_name"] == "b"
    assert len(_data(snap)["params"]) == 22 and len(_data(snap)["tags"]) == 22


def test_log_batch_limits(pair: Pair) -> None:
    run = pair.run(pair.experiment())
    before = pair.snapshot(run)

    def metrics(n: int) -> list[dict[str, Any]]:
        return [{"key": "m", "value": i, "timestamp": i, "step": i} for i in range(n)]

    def kvs(n: int) -> list[dict[str, str]]:
        return [{"key": f"k{i}", "value": "v"} for i in range(n)]

    batch = "runs/log-batch"
    pair.same_error("POST", batch, {"run_id": run, "metrics": metrics(1001)})
    pair.same_error("POST", batch, {"run_id": run, "params": kvs(101)})
    pair.same_error("POST", batch, {"run_id": run, "tags": kvs(101)})
    pair.same_error("POST", batch, {"run_id": run, "metrics": metrics(1000), "tags": kvs(1)})
    assert pair.snapshot(run) == before
    # Exactly at the limits is fine.
    pair.same("POST", batch, {"run_id": run, "metrics": metrics(1000)}, status=200)
    pair.same("POST", batch, {"run_id": run, "params": kvs(100), "tags": kvs(100)}, status=200)


def test_log_batch_over_one_megabyte(pair: Pair) -> None:
    """The MLflow client splits batches by count only, so 1.4 MB bodies are normal."""
    run = pair.run(pair.experiment())
    body = {
        "run_id": run,
        "params": [{"key": f"p{i}", "value": "p" * 6000} for i in range(100)],
        "tags": [{"key": f"t{i}", "value": "t" * 8000} for i in range(100)],
    }
    pair.same("POST", "runs/log-batch", body, status=200)
    assert len(_data(pair.snapshot(run))["params"]) == 100


def test_log_batch_rejections_change_nothing(pair: Pair) -> None:
    run = pair.run(pair.experiment())
    pair.same("POST", "runs/log-parameter", {"run_id": run, "key": "a", "value": "1"})
    pair.same("POST", "runs/log-metric", {"run_id": run, "key": "m", "value": 1, "timestamp": 1})
    before = pair.snapshot(run)
    batch = "runs/log-batch"
    good_metric = {"key": "new", "value": 1, "timestamp": 1}
    rejected: list[dict[str, Any]] = [
        # A changed param next to new data: nothing of it is kept.
        {
            "params": [{"key": "b", "value": "1"}, {"key": "a", "value": "2"}],
            "metrics": [good_metric],
            "tags": [{"key": "zt", "value": "x"}],
        },
        {"params": [{"key": "c", "value": "1"}, {"key": "c", "value": "2"}]},
        {"params": [{"key": "c", "value": "1"}, {"key": "c", "value": "1"}]},
        {"metrics": [good_metric, {"key": "bad", "value": 1}]},
        {"metrics": [good_metric, {"key": "bad", "timestamp": 1}]},
        {"metrics": [good_metric, {"value": 1, "timestamp": 1}]},
        {"metrics": [good_metric, {"key": "", "value": 1, "timestamp": 1}]},
        {"metrics": [good_metric, {"key": "neg", "value": 1, "timestamp": -5}]},
        {"metrics": [good_metric, {"key": "k" * 251, "value": 1, "timestamp": 1}]},
        {"metrics": [good_metric], "params": [{"value": "v"}]},
        {"metrics": [good_metric], "params": [{"key": "../p", "value": "v"}]},
        {"metrics": [good_metric], "params": [{"key": "k" * 251, "value": "v"}]},
        {"metrics": [good_metric], "tags": [{"value": "v"}]},
        {"metrics": [good_metric], "tags": [{"key": "k" * 251, "value": "v"}]},
        {"metrics": "not-a-list"},
        {"params": {"a": "1"}},
    ]
    for extra in rejected:
        pair.same_error("POST", batch, {"run_id": run, **extra})
    pair.same_error("POST", batch, {"metrics": [good_metric]})
    pair.same_error("POST", batch, {"run_id": NO_RUN, "metrics": [good_metric]}, **MISSING_RUN)
    assert pair.snapshot(run) == before


def test_log_batch_non_object_items(pair: Pair) -> None:
    run = pair.run(pair.experiment())
    before = pair.snapshot(run)
    out = pair.send("POST", "runs/log-batch", {"run_id": run, "metrics": [1]})
    # Deliberate deviation: MLflow crashes (500, an HTML page); Tether says what is wrong.
    assert out.ref.status == 500
    assert out.tet_body == {
        "error_code": "INVALID_PARAMETER_VALUE",
        "message": "Invalid value 1 for parameter 'metrics[0]' supplied:  Hint: Value was of type"
        " 'int'." + DOCS,
    }
    assert out.tet.status == 400
    assert pair.snapshot(run) == before


def test_log_inputs(pair: Pair) -> None:
    run = pair.run(pair.experiment())
    dataset = {
        "name": "train",
        "digest": "abc123",
        "source_type": "local",
        "source": '{"uri": "/data"}',
        "schema": '{"mlflow_colspec": []}',
        "profile": '{"num_rows": 3}',
    }
    inputs = "runs/log-inputs"
    pair.same(
        "POST",
        inputs,
        {
            "run_id": run,
            "datasets": [
                {"tags": [{"key": "mlflow.data.context", "value": "train"}], "dataset": dataset}
            ],
        },
        status=200,
    )
    minimal = {"name": "val", "digest": "d2", "source_type": "local", "source": "{}"}
    pair.same("POST", inputs, {"run_id": run, "datasets": [{"dataset": minimal}]}, status=200)
    # The same dataset again is not a second input.
    pair.same("POST", inputs, {"run_id": run, "datasets": [{"dataset": minimal}]}, status=200)
    pair.same("POST", inputs, {"run_id": run}, status=200)
    snap = pair.snapshot(run)
    assert [d["dataset"]["name"] for d in snap["run"]["inputs"]["dataset_inputs"]] == [
        "train",
        "val",
    ]
    too_long = {**minimal, "digest": "x" * 37}
    pair.same_error("POST", inputs, {"run_id": run, "datasets": [{"dataset": too_long}]})
    pair.same_error(
        "POST", inputs, {"run_id": NO_RUN, "datasets": [{"dataset": minimal}]}, **MISSING_RUN
    )
    pair.same_error("POST", inputs, {"datasets": [{"dataset": minimal}]})
    assert pair.snapshot(run) == snap


def test_log_inputs_incomplete_dataset_is_refused(pair: Pair) -> None:
    run = pair.run(pair.experiment())
    before = pair.snapshot(run)
    for item in ({"dataset": {"name": "d", "digest": "x"}}, {"tags": []}):
        out = pair.send("POST", "runs/log-inputs", {"run_id": run, "datasets": [item]})
        assert out.ref.status == 200  # MLflow stores a dataset of empty strings
        assert (out.tet.status, out.tet.error_code) == (400, "INVALID_PARAMETER_VALUE")
        assert pair.rest["tet"].get("runs/get", {"run_id": run.tet}).json["run"]["inputs"] == {}
    assert before["run"]["inputs"] == {}


def _names(body: dict[str, Any]) -> list[str]:
    return [r["info"]["run_name"] for r in body.get("runs", [])]


def test_search(pair: Pair) -> None:
    exp, other = pair.experiment(), pair.experiment()
    runs = [pair.run(exp, run_name=f"r{i}", start_time=1000 + i) for i in range(4)]
    pair.run(other, run_name="elsewhere", start_time=5000)
    for i, run in enumerate(runs):
        pair.same(
            "POST", "runs/log-metric", {"run_id": run, "key": "acc", "value": i, "timestamp": 1}
        )
        pair.same("POST", "runs/log-parameter", {"run_id": run, "key": "lr", "value": str(i % 2)})
    pair.same("POST", "runs/delete", {"run_id": runs[3]})
    search = "runs/search"
    body = pair.same("POST", search, {"experiment_ids": [exp]}, status=200)
    assert _names(body) == ["r2", "r1", "r0"]
    body = pair.same("POST", search, {"experiment_ids": [exp, other]})
    assert _names(body) == ["elsewhere", "r2", "r1", "r0"]
    body = pair.same("POST", search, {"experiment_ids": [exp], "run_view_type": "ALL"})
    assert _names(body) == ["r3", "r2", "r1", "r0"]
    body = pair.same("POST", search, {"experiment_ids": [exp], "run_view_type": "DELETED_ONLY"})
    assert _names(body) == ["r3"]
    body = pair.same(
        "POST", search, {"experiment_ids": [exp], "filter": "metrics.acc >= 1 AND params.lr = '1'"}
    )
    assert _names(body) == ["r1"]
    body = pair.same("POST", search, {"experiment_ids": [exp], "order_by": ["metrics.acc ASC"]})
    assert _names(body) == ["r0", "r1", "r2"]
    body = pair.same("POST", search, {"experiment_ids": [exp], "filter": "tags.nope = 'x'"})
    assert body == {}
    assert pair.same("POST", search, {"experiment_ids": ["987654321"]}) == {}
    assert pair.same("POST", search, {}) == {}


def test_search_paging(pair: Pair) -> None:
    exp = pair.experiment()
    for i in range(5):
        pair.run(exp, run_name=f"p{i}", start_time=100 + i)
    tokens: dict[str, str | None] = {"ref": None, "tet": None}
    seen: list[str] = []
    for _ in range(3):
        pages = {}
        for side, rest in pair.rest.items():
            body: dict[str, Any] = {"experiment_ids": [exp.side(side)], "max_results": 2}
            if tokens[side]:
                body["page_token"] = tokens[side]
            pages[side] = rest.post("runs/search", body)
        normalised = {side: pair.norm[side](pages[side].json) for side in pages}
        assert normalised["ref"] == normalised["tet"]
        seen += _names(normalised["tet"])
        tokens = {side: pages[side].json.get("next_page_token") for side in pages}
    assert seen == ["p4", "p3", "p2", "p1", "p0"]
    assert tokens == {"ref": None, "tet": None}


def test_search_errors(pair: Pair) -> None:
    exp = pair.experiment()
    search = "runs/search"
    base = {"experiment_ids": [exp]}
    pair.same_error("POST", search, {**base, "max_results": 0})
    pair.same_error("POST", search, {**base, "max_results": -1})
    pair.same_error("POST", search, {**base, "max_results": 50001})
    pair.same_error("POST", search, {**base, "max_results": "abc"})
    pair.same_error("POST", search, {**base, "page_token": "garbage"})
    pair.same_error("POST", search, {**base, "page_token": "eyJmb28iOiAxfQ=="})
    pair.same_error("POST", search, {**base, "filter": "metrics.m >"})
    pair.same_error("POST", search, {**base, "filter": "foo = 'a'"}, message=False)
    pair.same_error("POST", search, {**base, "filter": "params.p = 1"}, message=False)
    pair.same_error("POST", search, {**base, "order_by": ["bogus"]}, message=False)
    pair.same_error("POST", search, {**base, "order_by": "start_time"})
    pair.same_error("POST", search, {"experiment_ids": ["abc"]})
    pair.same_error("POST", search, {"experiment_ids": "1"})


def test_search_lenient_inputs_are_refused(pair: Pair) -> None:
    exp = pair.experiment()
    pair.run(exp)
    for body in (
        {"experiment_ids": [1]},
        {"experiment_ids": [exp], "run_view_type": "BOGUS"},
    ):
        out = pair.send("POST", "runs/search", body)
        assert out.ref.status == 200
        assert (out.tet.status, out.tet.error_code) == (400, "INVALID_PARAMETER_VALUE")


def test_unicode_everything(pair: Pair) -> None:
    name = unique_name("юникод")
    exp = pair.experiment(name)
    run = pair.run(exp, run_name="запуск 🚀", tags=[{"key": "δ", "value": "ε"}])
    batch = {
        "run_id": run,
        "metrics": [{"key": "μ", "value": 1, "timestamp": 1}],
        "params": [{"key": "π", "value": "3.14 ≈"}],
        "tags": [{"key": "标签", "value": "值"}],
    }
    pair.same("POST", "runs/log-batch", batch, status=200)
    snap = pair.snapshot(run)
    assert snap["run"]["info"]["run_name"] == "запуск 🚀"


def test_wrong_types_mlflow_drops_are_refused(pair: Pair) -> None:
    """MLflow keeps what protobuf parsed before a type error and drops the rest silently."""
    exp = pair.experiment()
    run = pair.run(exp)
    before = pair.snapshot(run)
    cases = [
        ("runs/create", {"experiment_id": exp, "tags": {"a": "b"}}),  # MLflow: tags dropped
        ("runs/log-metric", {"run_id": run, "key": "b", "value": True, "timestamp": 1}),
        ("runs/log-metric", {"run_id": run, "key": "t", "value": 1, "timestamp": True}),  # ts 0
        ("runs/log-metric", {"run_id": run, "key": "f", "value": 1, "timestamp": 1.5}),
        ("runs/log-metric", {"run_id": run, "key": "s", "value": 1, "timestamp": 1, "step": 0.5}),
        ("runs/log-batch", {"run_id": run, "tags": [{"key": "t", "value": 3}]}),  # stored ""
    ]
    for path, body in cases:
        out = pair.send("POST", path, body)
        assert out.ref.status == 200, (path, body)
        assert (out.tet.status, out.tet.error_code) == (400, "INVALID_PARAMETER_VALUE")
        assert "Hint: Value was of type" in out.tet.json["message"]
    tether = pair.rest["tet"].get("runs/get", {"run_id": run.tet})
    assert pair.norm["tet"](tether.json) == before
