"""logged-models/search: Tether against the reference `mlflow server` on one shared data set
(filters, datasets, order_by, paging, errors), on both backends.

Deliberate deviations (Tether-only checks below):
- Inputs MLflow answers with a 500 (an unknown attribute such as `foo` or `tags`, a quoted or
  bare-word value for a numeric field, a list where one value is expected, a broken page
  token) are refused with 400 INVALID_PARAMETER_VALUE.
- `attributes.creation_timestamp` (an alias after the `attributes.` prefix) works; MLflow 500s.
- Status filters also take names (`status = 'READY'` or 'LOGGED_MODEL_READY'); MLflow's
  integer column matches only the enum number (`status = '2'`), which Tether matches too.
- `datasets` entries with a name and no digest match that dataset with any digest, as MLflow
  documents; MLflow's store matches only metrics logged without a digest (which its Metric
  entity never allows with a name), i.e. nothing.
- Two comparisons without AND between them (`a = 'x' b = 'y'`) are refused; MLflow answers [].
- A negative max_results is refused (MLflow answers an empty page with a token).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from compat.diff import Ref
from logged_models.lmdiff import ModelPair
from support import ReferenceServer, TetherServer

TS = 1_700_000_000_000
NAMES = ["alpha", "beta", "Gamma", "delta"]


@dataclass
class World:
    pair: ModelPair
    exp: Ref
    other_exp: Ref
    models: dict[str, Ref]


@pytest.fixture(scope="module")
def world(reference_server: ReferenceServer, tether_server: TetherServer) -> Iterator[World]:
    with reference_server.rest() as ref, tether_server.rest() as tet:
        pair = ModelPair(ref, tet)
        exp, other_exp = pair.experiment(), pair.experiment()
        run = pair.run(exp)
        models: dict[str, Ref] = {}
        for i, name in enumerate(NAMES):
            model = pair.model(
                exp,
                name=name,
                model_type=f"t{i % 2}",
                source_run_id=run,
                params=[{"key": "p", "value": str(i)}],
                tags=[{"key": "t", "value": f"v{i}"}],
            )
            models[name] = model
            point = {"run_id": run, "model_id": model, "key": "acc", "step": 0}
            on_dataset = {"dataset_name": "ds", "dataset_digest": "d1"}
            first = {**point, **on_dataset, "value": i / 10, "timestamp": TS + i}
            pair.same("POST", "runs/log-metric", first, status=200)
            if i % 2 == 0:
                later = {**point, "value": 1 - i / 10, "timestamp": TS + 100, "step": 1}
                pair.same("POST", "runs/log-metric", later, status=200)
        models["eps"] = pair.model(exp, name="eps", model_type="t0")
        finalize = {"model_id": models["eps"], "status": 2}
        pair.same("PATCH", ("logged-models/", models["eps"]), finalize, status=200)
        gone = pair.model(exp, name="zeta", params=[{"key": "p", "value": "1"}])
        pair.same(
            "POST",
            "runs/log-metric",
            {"run_id": run, "model_id": gone, "key": "acc", "value": 5, "timestamp": TS},
            status=200,
        )
        pair.same("DELETE", ("logged-models/", gone), status=200)
        for name in ("other-1", "other-2"):
            models[name] = pair.model(other_exp, name=name)
        yield World(pair, exp, other_exp, models)


def search(world: World, **body: Any) -> Any:
    """Both servers answer the same (status and normalised body); returns Tether's body."""
    return world.pair.same("POST", "logged-models/search", {"experiment_ids": [world.exp]} | body)


def names(body: Any) -> list[str]:
    return [m["info"]["name"] for m in body.get("models", [])]


FILTERS: list[tuple[str, list[str] | None]] = [
    ("", ["eps", "delta", "Gamma", "beta", "alpha"]),
    ("name = 'alpha'", ["alpha"]),
    ("name='alpha'", ["alpha"]),
    ("name = alpha", ["alpha"]),
    ('name = "alpha"', []),
    ("attributes.name = 'alpha'", ["alpha"]),
    ("name != 'alpha'", ["eps", "delta", "Gamma", "beta"]),
    ("name LIKE 'a%'", ["alpha"]),
    ("name like '%a'", ["delta", "Gamma", "beta", "alpha"]),
    ("name LIKE 'g%'", []),
    ("name LIKE 'G%'", ["Gamma"]),
    ("name ILIKE 'g%'", ["Gamma"]),
    ("name LIKE '_eta'", ["beta"]),
    ("name IN ('alpha', 'beta')", ["beta", "alpha"]),
    ("name in ('alpha')", ["alpha"]),
    ("name IN ('alpha',)", ["alpha"]),
    ("name NOT IN ('alpha', 'eps')", ["delta", "Gamma", "beta"]),
    ("name IN ()", []),
    ("name IN (1, 2)", []),
    ("name = 1", []),
    ("model_type = 't1'", ["delta", "beta"]),
    ("model_type IN ('t0', 't1')", None),
    ("params.p = '1'", ["beta"]),
    ("params.p = 1", ["beta"]),
    ("params.p LIKE '%'", ["delta", "Gamma", "beta", "alpha"]),
    ("params.p ILIKE '1'", ["beta"]),
    ("params.p NOT IN ('0')", ["delta", "Gamma", "beta"]),
    ("params.`p` = '1'", ["beta"]),
    ("params.nope NOT IN ('x')", []),
    ("tags.t = 'v2'", ["Gamma"]),
    ("tags.t != 'v2'", ["delta", "beta", "alpha"]),
    ("tags.t IN ('v1', 'v2')", ["Gamma", "beta"]),
    ("tags.t LIKE 'V%'", []),
    ("tags.nope != 'x'", []),
    ("metrics.acc > 0.15", ["delta", "Gamma", "alpha"]),
    ("metrics.acc >= 0.8", ["Gamma", "alpha"]),
    ("metrics.acc = 0.1", ["beta"]),
    ("metrics.acc != 0.3", ["Gamma", "beta", "alpha"]),
    ("metrics.acc < 0", []),
    ("metrics.acc <= 0", ["alpha"]),
    ("metrics.acc > -1", ["delta", "Gamma", "beta", "alpha"]),
    ("metrics.acc > 1e-3", ["delta", "Gamma", "beta", "alpha"]),
    ("metrics.acc > .5", ["Gamma", "alpha"]),
    ("metrics.acc>0.5", ["Gamma", "alpha"]),
    ("metrics.`acc` > 0.5", ["Gamma", "alpha"]),
    ("metrics.acc > 1e400", []),
    ("metrics.a.b > 0", []),
    ("creation_timestamp > 0", None),
    ("creation_time > 0", None),
    ("creation_timestamp_ms > 0", None),
    ("last_updated_timestamp > 0", None),
    ("creation_timestamp = 1.5", []),
    ("creation_timestamp > 99999999999999999999999", []),
    ("status = '1'", ["delta", "Gamma", "beta", "alpha"]),
    ("status = 1", ["delta", "Gamma", "beta", "alpha"]),
    ("status = '2'", ["eps"]),
    ("status != '2'", ["delta", "Gamma", "beta", "alpha"]),
    ("status IN ('2', '3')", ["eps"]),
    ("status LIKE '2'", ["eps"]),
    ("model_id = 'x'", []),
    ("source_run_id = ''", ["eps"]),
    ("status_message = 'x'", []),
    ("artifact_location LIKE '%/models/%'", None),
    ("lifecycle_stage = 'active'", None),
    ("params.p = '1' AND tags.t = 'v1'", ["beta"]),
    ("params.p = '1' AND tags.t = 'v2'", []),
    ("name = 'alpha' and model_type = 't0'", ["alpha"]),
    ("name='alpha'AND model_type='t0'", ["alpha"]),
    ("name = 'alpha' AND", ["alpha"]),
    ("AND name = 'alpha'", ["alpha"]),
    ("name = 'alpha' AND AND metrics.acc > 0.5", ["alpha"]),
    ("  name = 'alpha'   ", ["alpha"]),
]


def test_filters(world: World) -> None:
    for filter_string, expected in FILTERS:
        body = search(world, filter=filter_string)
        if expected is not None:
            assert names(body) == expected, filter_string
        else:
            assert names(body) == ["eps", "delta", "Gamma", "beta", "alpha"], filter_string


def test_full_models_in_results(world: World) -> None:
    body = search(world, filter="name = 'Gamma'")
    (model,) = body["models"]
    assert model["info"]["tags"] == [{"key": "t", "value": "v2"}]
    assert model["data"]["params"] == [{"key": "p", "value": "2"}]
    assert sorted(m["value"] for m in model["data"]["metrics"]) == [0.2, 0.8]
    got = world.pair.same("GET", ("logged-models/", world.models["Gamma"]), status=200)
    assert got == {"model": model}


DOCS = " See the API docs for more information about request parameters."
GENERIC = (
    "Expected a list of comparisons separated by 'AND' (e.g. 'metrics.loss > 0.1 AND "
    "params.lr = 0.01')."
)
ERRORS: list[str] = [
    "params.p > '1'",
    "metrics.acc LIKE 0.1",
    "metrics.acc IN (1, 2)",
    "creation_timestamp IN (1)",
    "name > 'b'",
    "name < 'b'",
    "name == 'alpha'",
    "name <> 'alpha'",
    "metrics.acc == 0.1",
    "metrics.acc <> 0.1",
    "name NOT LIKE 'a%'",
    "name RLIKE 'a'",
    "foo > 1",
    "Metrics.acc > 1",
    "metric.acc > 1",
    "name.x = 'a'",
    "params.p = '1' OR tags.t = 'v1'",
    "name = 'alpha' OR",
    "NOT name = 'a'",
    "name",
    "name =",
    "= 'a'",
    "(name = 'alpha')",
    "name = 'alpha';",
    "name = 'alpha'; name = 'b'",
    "name = 'a",
    "name IN 'alpha'",
    "name = 'a' 'b'",
    "name = 'alpha' AND model_type",
]


def test_filter_errors(world: World) -> None:
    for filter_string in ERRORS:
        world.pair.same_error(
            "POST",
            "logged-models/search",
            {"experiment_ids": [world.exp], "filter": filter_string},
        )
    for filter_string in ("name IS NULL", "params.p IS NOT NULL"):  # MLflow's message differs
        world.pair.same_error(
            "POST",
            "logged-models/search",
            {"experiment_ids": [world.exp], "filter": filter_string},
            message=False,
        )


def test_filter_errors_tether_only(world: World) -> None:
    """Where MLflow answers 500 (or a raw SQL error), Tether answers 400."""
    tet = world.pair.rest["tet"]
    for filter_string in (
        "metrics.acc > '0.1'",
        "metrics.acc > abc",
        "metrics.acc > nan",
        "creation_timestamp > 'x'",
        "foo = 'x'",
        "tags = 'x'",
        "`params`.p = '1'",
        "name IN ('a', ('b',))",
        "name IN (None)",
        "name = ('alpha')",
        "name = ('alpha', 'beta')",
        "name = 'alpha' name = 'beta'",
        "name = 'a\\' OR 1=1 --",
    ):
        response = tet.post(
            "logged-models/search", {"experiment_ids": [world.exp.tet], "filter": filter_string}
        )
        assert (response.status, response.error_code) == (400, "INVALID_PARAMETER_VALUE"), (
            filter_string,
            response.json,
        )


def test_filter_extensions_tether_only(world: World) -> None:
    tet = world.pair.rest["tet"]

    def tet_names(filter_string: str) -> list[str]:
        response = tet.post(
            "logged-models/search", {"experiment_ids": [world.exp.tet], "filter": filter_string}
        )
        assert response.status == 200, response.json
        return names(response.json)

    assert tet_names("attributes.creation_timestamp > 0") == tet_names("creation_time > 0")
    assert tet_names("status = 'READY'") == ["eps"]
    assert tet_names("status = 'LOGGED_MODEL_READY'") == ["eps"]
    assert tet_names("status IN ('PENDING')") == ["delta", "Gamma", "beta", "alpha"]
    assert tet_names(f"experiment_id = '{world.exp.tet}'") == tet_names("")
    assert tet_names(f"experiment_id = '{world.other_exp.tet}'") == []


def test_order_by(world: World) -> None:
    cases: list[tuple[list[dict[str, Any]], list[str] | None]] = [
        ([{"field_name": "name"}], ["Gamma", "alpha", "beta", "delta", "eps"]),
        ([{"field_name": "name", "ascending": False}], ["eps", "delta", "beta", "alpha", "Gamma"]),
        ([{"field_name": "metrics.acc"}], ["beta", "delta", "Gamma", "alpha", "eps"]),
        (
            [{"field_name": "metrics.acc", "ascending": False}],
            ["alpha", "Gamma", "delta", "beta", "eps"],
        ),
        (
            [{"field_name": "metrics.acc", "dataset_name": "ds"}],
            ["alpha", "beta", "Gamma", "delta", "eps"],
        ),
        (
            [{"field_name": "metrics.acc", "dataset_name": "ds", "dataset_digest": "d1"}],
            ["alpha", "beta", "Gamma", "delta", "eps"],
        ),
        (
            [{"field_name": "metrics.acc", "dataset_digest": "d1"}],
            ["alpha", "beta", "Gamma", "delta", "eps"],
        ),
        (
            [{"field_name": "metrics.acc", "dataset_name": "other"}],
            ["eps", "delta", "Gamma", "beta", "alpha"],
        ),
        ([{"field_name": "metrics.nope"}], ["eps", "delta", "Gamma", "beta", "alpha"]),
        ([{"field_name": "metrics."}], ["eps", "delta", "Gamma", "beta", "alpha"]),
        ([{"field_name": "creation_time"}], ["alpha", "beta", "Gamma", "delta", "eps"]),
        ([{"field_name": "creation_timestamp_ms", "ascending": False}], None),
        ([{"field_name": "last_updated_timestamp"}], None),
        ([{"field_name": "model_type"}, {"field_name": "name"}], None),
        ([{"field_name": "model_type", "ascending": False}, {"field_name": "metrics.acc"}], None),
        ([{"field_name": "status"}], ["delta", "Gamma", "beta", "alpha", "eps"]),
        (
            [{"field_name": "status", "ascending": False}],
            ["eps", "delta", "Gamma", "beta", "alpha"],
        ),
        ([{"field_name": "experiment_id"}], None),
        ([{"field_name": "source_run_id"}], None),
        ([{"field_name": "status_message"}], None),
        ([{"field_name": "name", "dataset_name": "ignored"}], None),
        (
            [{"field_name": "metrics.acc"}, {"field_name": "metrics.acc", "ascending": False}],
            ["beta", "delta", "Gamma", "alpha", "eps"],
        ),
    ]
    for order_by, expected in cases:
        body = search(world, order_by=order_by)
        if expected is not None:
            assert names(body) == expected, order_by
    # Filter and order together.
    body = search(world, filter="metrics.acc > 0.15", order_by=[{"field_name": "metrics.acc"}])
    assert names(body) == ["delta", "Gamma", "alpha"]


def test_order_by_errors(world: World) -> None:
    for order_by in (
        [{"field_name": "params.p"}],
        [{"field_name": "tags.t"}],
        [{"field_name": "attributes.name"}],
        [{"field_name": "foo"}],
        [{}],
    ):
        world.pair.same_error(
            "POST",
            "logged-models/search",
            {"experiment_ids": [world.exp], "order_by": order_by},
        )
    # Not an object: both refuse (MLflow parses it into an empty field name).
    world.pair.same_error(
        "POST",
        "logged-models/search",
        {"experiment_ids": [world.exp], "order_by": ["name"]},
        message=False,
    )
    tet = world.pair.rest["tet"]
    response = tet.post(  # MLflow: 500
        "logged-models/search",
        {"experiment_ids": [world.exp.tet], "order_by": [{"field_name": "tags"}]},
    )
    assert (response.status, response.error_code) == (400, "INVALID_PARAMETER_VALUE")
    # Ordering by model id (random per server): Tether-only.
    response = tet.post(
        "logged-models/search",
        {"experiment_ids": [world.exp.tet], "order_by": [{"field_name": "model_id"}]},
    )
    ids = [m["info"]["model_id"] for m in response.json["models"]]
    assert ids == sorted(ids) and len(ids) == 5


def test_datasets(world: World) -> None:
    ds = {"dataset_name": "ds", "dataset_digest": "d1"}
    assert names(search(world, datasets=[ds])) == ["delta", "Gamma", "beta", "alpha"]
    assert names(search(world, datasets=[ds | {"dataset_digest": "zz"}])) == []
    assert names(search(world, datasets=[{"dataset_name": "nope", "dataset_digest": "d1"}])) == []
    body = search(world, datasets=[ds], filter="metrics.acc > 0.15")
    assert names(body) == ["delta", "Gamma"]  # alpha's 1.0 is not on the dataset
    body = search(world, datasets=[ds, {"dataset_name": "x", "dataset_digest": "y"}])
    assert names(body) == ["delta", "Gamma", "beta", "alpha"]
    world.pair.same_error(
        "POST",
        "logged-models/search",
        {"experiment_ids": [world.exp], "datasets": [{"dataset_digest": "d1"}]},
    )
    world.pair.same_error(
        "POST",
        "logged-models/search",
        {"experiment_ids": [world.exp], "datasets": "x"},
        mentions=("'datasets'",),
    )
    # Tether-only: a dataset named without a digest matches any digest (see the docstring).
    tet = world.pair.rest["tet"]
    response = tet.post(
        "logged-models/search",
        {"experiment_ids": [world.exp.tet], "datasets": [{"dataset_name": "ds"}]},
    )
    assert names(response.json) == ["delta", "Gamma", "beta", "alpha"]


def test_experiments(world: World) -> None:
    body = world.pair.same(
        "POST", "logged-models/search", {"experiment_ids": [world.exp, world.other_exp]}
    )
    assert names(body) == ["other-2", "other-1", "eps", "delta", "Gamma", "beta", "alpha"]
    assert world.pair.same("POST", "logged-models/search", {"experiment_ids": []}) == {}
    assert world.pair.same("POST", "logged-models/search", {"experiment_ids": ["987654"]}) == {}
    for body in ({}, {"experiment_ids": ["abc"]}, {"filter": "name = 'alpha'"}):
        world.pair.same_error("POST", "logged-models/search", body)
    for body in ({"experiment_ids": "1"}, {"experiment_ids": [world.exp], "filter": 5}):
        world.pair.same_error("POST", "logged-models/search", body, message=False)


def test_paging(world: World) -> None:
    for request in (
        {},
        {"order_by": [{"field_name": "metrics.acc", "ascending": False}]},
        {"filter": "metrics.acc > -1", "order_by": [{"field_name": "name"}]},
        {"datasets": [{"dataset_name": "ds", "dataset_digest": "d1"}]},
    ):
        expected = names(search(world, **request))
        seen: list[str] = []
        token = None
        while True:
            pages = {
                side: world.pair.rest[side].post(
                    "logged-models/search",
                    {"experiment_ids": [world.exp.side(side)], "max_results": 2}
                    | request
                    | ({"page_token": token[side]} if token else {}),
                )
                for side in ("ref", "tet")
            }
            normalised = {side: world.pair.norm[side](pages[side].json) for side in pages}
            assert normalised["ref"] == normalised["tet"], request
            seen.extend(names(pages["tet"].json))
            if "next_page_token" not in pages["tet"].json:
                break
            token = {side: pages[side].json["next_page_token"] for side in pages}
        assert seen == expected, request
    # max_results 0 means the default (100).
    assert names(search(world, max_results=0)) == ["eps", "delta", "Gamma", "beta", "alpha"]


def test_page_token_errors(world: World) -> None:
    pair = world.pair
    first = {
        side: pair.rest[side]
        .post(
            "logged-models/search",
            {"experiment_ids": [world.exp.side(side)], "max_results": 2},
        )
        .json["next_page_token"]
        for side in ("ref", "tet")
    }
    token = Ref("<token>", first["ref"], first["tet"])
    # A token only serves the search that made it.
    for body in (
        {"experiment_ids": [world.other_exp], "page_token": token},
        {"experiment_ids": [world.exp], "page_token": token, "filter": "name = 'x'"},
        {
            "experiment_ids": [world.exp],
            "page_token": token,
            "order_by": [{"field_name": "name"}],
        },
        {"experiment_ids": [world.exp], "page_token": "e30="},
    ):
        pair.same_error("POST", "logged-models/search", body, message=False)
    pair.same_error(
        "POST",
        "logged-models/search",
        {"experiment_ids": [world.exp], "max_results": "x"},
        mentions=("'max_results'",),
    )
    tet = pair.rest["tet"]
    bad_tokens = [
        "garbage!",
        base64.b64encode(b"[1]").decode(),
        base64.b64encode(b"not json").decode(),
        base64.b64encode(
            json.dumps({"experiment_ids": [world.exp.tet], "offset": -5}).encode()
        ).decode(),
    ]
    for page_token in bad_tokens:  # MLflow: 500, or a silently ignored offset
        response = tet.post(
            "logged-models/search",
            {"experiment_ids": [world.exp.tet], "page_token": page_token},
        )
        assert (response.status, response.error_code) == (400, "INVALID_PARAMETER_VALUE"), (
            page_token,
            response.json,
        )
    for max_results in (-1, 2**31):
        response = tet.post(
            "logged-models/search", {"experiment_ids": [world.exp.tet], "max_results": max_results}
        )
        assert (response.status, response.error_code) == (400, "INVALID_PARAMETER_VALUE")
    # Tokens are MLflow's format: base64 JSON of the request and the offset.
    decoded = json.loads(base64.b64decode(first["tet"]))
    assert decoded == {
        "experiment_ids": [world.exp.tet],
        "filter_string": None,
        "order_by": None,
        "offset": 2,
    }
