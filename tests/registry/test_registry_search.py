"""search-registered-models / search-model-versions: Tether against `mlflow server`.

One data set per backend (models named `<prefix>-...` so the shared reference server's other
models stay out of every filter), then filters, orderings and paging, compared page by page.

Deliberate deviations asserted here (MLflow fails inside its SQL layer):
- `name = ('a')` (a list with =): MLflow answers BAD_REQUEST with SQL text, Tether refuses it
  with INVALID_PARAMETER_VALUE; `name IS NULL`: MLflow 500, Tether 400.
- duplicate order_by fields: MLflow 500, Tether 400 with the same message.
- `version_number = <beyond SQLite's INTEGER>`: MLflow 500, Tether matches nothing.
- registered-models max_results of 0 or less: MLflow answers a page token that goes nowhere
  (offset 0 or negative); Tether refuses it as MLflow refuses it for model versions.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from compat.diff import Ref
from registry.helpers import RegistryPair
from support import ReferenceServer, TetherServer, unique_name

RM_SEARCH = "registered-models/search"
MV_SEARCH = "model-versions/search"


@dataclass
class Data:
    pair: RegistryPair
    prefix: str
    runs: dict[str, Ref]

    def both(self, template: str) -> Ref:
        """A filter string with `{run1}`-style run placeholders filled in per side."""
        return Ref(
            "<filter>",
            template.format(prefix=self.prefix, **{k: r.ref for k, r in self.runs.items()}),
            template.format(prefix=self.prefix, **{k: r.tet for k, r in self.runs.items()}),
        )


def _pause() -> None:
    time.sleep(0.003)  # distinct millisecond timestamps on both servers


@pytest.fixture(scope="module")
def data(reference_server: ReferenceServer, tether_server: TetherServer) -> Iterator[Data]:
    with reference_server.rest() as ref, tether_server.rest() as tet:
        pair = RegistryPair(ref, tet)
        prefix = unique_name("srch")
        exp = pair.experiment()
        runs = {"run1": pair.run(exp), "run2": pair.run(exp)}
        models = {
            "a": [{"key": "team", "value": "vision"}, {"key": "env", "value": "prod"}],
            "b": [{"key": "team", "value": "nlp"}, {"key": "env", "value": "prod"}],
            "Ab": [{"key": "team", "value": "Vision"}],
            "c": [],
            "d_x": [{"key": "team", "value": "vision"}],
        }
        for suffix, tags in models.items():
            pair.model(f"{prefix}-{suffix}", tags=tags)
            _pause()
        run1, run2 = runs["run1"], runs["run2"]
        versions: list[tuple[str, str, dict[str, Any]]] = [
            ("a", "s3://bucket/a/1", {"run_id": run1, "tags": [{"key": "k", "value": "v1"}]}),
            ("a", "s3://bucket/a/2", {"run_id": run2, "tags": [{"key": "k", "value": "v2"}]}),
            ("a", "s3://other/a/3", {"run_id": run1}),
            ("b", "s3://bucket/b/1", {"run_id": run2, "tags": [{"key": "k", "value": "V1"}]}),
            ("b", "gs://bucket/b/2", {}),
            ("c", "s3://bucket/c/1", {"tags": [{"key": "k", "value": "v1"}]}),
            ("Ab", "s3://bucket/Ab/1", {"run_id": run1}),
        ]
        for suffix, source, extra in versions:
            pair.version(f"{prefix}-{suffix}", source=source, **extra)
            _pause()
        transition = "model-versions/transition-stage"
        for suffix, version, stage in (("a", "2", "Production"), ("b", "1", "Staging")):
            body = {"name": f"{prefix}-{suffix}", "version": version, "stage": stage}
            pair.same("POST", transition, body, status=200)
            _pause()
        pair.same("DELETE", "model-versions/delete", {"name": f"{prefix}-a", "version": "3"})
        _pause()
        pair.same(
            "PATCH",
            "registered-models/update",
            {"name": f"{prefix}-c", "description": "touched last"},
        )
        yield Data(pair, prefix, runs)


def _pages(data: Data, path: str, body: dict[str, Any], max_results: int) -> list[Any]:
    """Every page of a search on both servers (pages compared one by one)."""
    pages = []
    token: dict[str, str] = {}
    while True:
        request = {**body, "max_results": max_results}
        if token:
            request["page_token"] = Ref("<token>", token["ref"], token["tet"])
        out = data.pair.send("GET", path, request)
        assert (out.ref.status, out.ref_body) == (out.tet.status, out.tet_body)
        assert out.tet.status == 200, out.tet.json
        pages.append(out.tet_body)
        if "next_page_token" not in out.tet.json:
            assert "next_page_token" not in out.ref.json
            return pages
        token = {"ref": out.ref.json["next_page_token"], "tet": out.tet.json["next_page_token"]}


def _names(body: dict[str, Any]) -> list[str]:
    return [m["name"] for m in body.get("registered_models", [])]


# ------------------------------------------------------------------- registered models

MODEL_FILTERS = [
    "",
    "name = '{prefix}-a'",
    "name != '{prefix}-a'",
    "name LIKE '{prefix}-a%'",
    "name like '%-b'",
    "name ILIKE '{prefix}-A%'",
    "name LIKE '{prefix}-d_x'",
    "name IN ('{prefix}-a', '{prefix}-c', 'nope')",
    "name NOT IN ('{prefix}-a')",
    "attribute.name = '{prefix}-b'",
    'name = "{prefix}-b"',
    "tags.team = 'vision'",
    "tags.team != 'vision'",
    "tags.team LIKE 'vis%'",
    "tags.team ILIKE 'VIS%'",
    "tags.`team` = 'nlp' AND tags.env = 'prod'",
    "tags.\"env\" = 'prod' and tags.team = 'vision'",
    "tags.missing = 'x'",
    "tags.`mlflow.prompt.is_prompt` = 'false'",
    "tags.`mlflow.prompt.is_prompt` != 'true'",
]


@pytest.mark.parametrize("filter_string", MODEL_FILTERS)
def test_model_filters(data: Data, filter_string: str) -> None:
    scoped = "name LIKE '{prefix}%'" + (f" AND {filter_string}" if filter_string else "")
    body = data.pair.same("GET", RM_SEARCH, {"filter": data.both(scoped)}, status=200)
    if filter_string == "":
        assert len(_names(body)) == 5
    # Every result carries its latest versions, tags and aliases as `get` shows them.
    for model in body.get("registered_models", []):
        assert data.pair.get_model(model["name"]) == model


def test_model_filter_results(data: Data) -> None:
    p = data.prefix

    def names(filter_string: str) -> list[str]:
        scoped = f"name LIKE '{p}%' AND {filter_string}"
        return _names(data.pair.same("GET", RM_SEARCH, {"filter": scoped}, status=200))

    assert names("tags.team = 'vision'") == [f"{p}-a", f"{p}-d_x"]
    assert names("tags.team ILIKE 'vision'") == [f"{p}-Ab", f"{p}-a", f"{p}-d_x"]
    assert names(f"name LIKE '{p}-A%'") == [f"{p}-Ab"]  # LIKE is case-sensitive
    assert names(f"name ILIKE '{p}-A%'") == [f"{p}-Ab", f"{p}-a"]


@pytest.mark.parametrize(
    "order_by",
    [
        ["name DESC"],
        ["name"],
        ["timestamp"],
        ["timestamp DESC"],
        ["last_updated_timestamp DESC", "name ASC"],
        ["`name` desc"],
        ['"name" DESC'],
    ],
    ids=str,
)
def test_model_order_by(data: Data, order_by: list[str]) -> None:
    body = {"filter": f"name LIKE '{data.prefix}%'", "order_by": order_by}
    full = data.pair.same("GET", RM_SEARCH, body, status=200)
    assert len(_names(full)) == 5
    pages = _pages(data, RM_SEARCH, body, max_results=2)
    assert [len(_names(p)) for p in pages] == [2, 2, 1]
    assert [n for p in pages for n in _names(p)] == _names(full)


def test_model_order_by_timestamp(data: Data) -> None:
    p = data.prefix
    body = data.pair.same(
        "GET",
        RM_SEARCH,
        {"filter": f"name LIKE '{p}%'", "order_by": ["last_updated_timestamp DESC"]},
    )
    assert _names(body)[:3] == [f"{p}-c", f"{p}-a", f"{p}-b"]


def test_model_paging(data: Data) -> None:
    body = {"filter": f"name LIKE '{data.prefix}%'"}
    for size in (1, 3, 5, 6):
        pages = _pages(data, RM_SEARCH, body, max_results=size)
        assert sum(len(_names(p)) for p in pages) == 5
    # The default page size is 100; max_results is bounded by 1000.
    data.pair.same("GET", RM_SEARCH, {**body, "max_results": 1000}, status=200)


@pytest.mark.parametrize(
    "request_body",
    [
        {"filter": "name > 'a'"},
        {"filter": "name = 1"},
        {"filter": "name = a"},
        {"filter": "tags.t = 1"},
        {"filter": "tags.t > 'a'"},
        {"filter": "tags.t IN ('a')"},
        {"filter": "creation_timestamp > 1"},
        {"filter": "run_id = 'x'"},
        {"filter": "foo.bar = 'x'"},
        {"filter": "name = 'a' OR name = 'b'"},
        {"filter": "name IN ()"},
        {"filter": "name = 'a'; name = 'b'"},
        {"filter": "   "},
        {"order_by": ["name DESCENDING"]},
        {"order_by": ["tags.t"]},
        {"order_by": ["name DESC x"]},
        {"page_token": "abc"},
        {"page_token": "eyJvZmZzZXQiOiAieCJ9"},
        {"max_results": 1001},
        {"max_results": "abc"},
    ],
    ids=str,
)
def test_model_search_errors(data: Data, request_body: dict[str, Any]) -> None:
    data.pair.same_error_sets("GET", RM_SEARCH, request_body)


def test_model_search_deviations(data: Data) -> None:
    pair = data.pair
    # Sets in messages print in hash order on the reference server.
    pair.same_error_sets("GET", RM_SEARCH, {"order_by": ["creation_timestamp"]})
    out = pair.send("GET", RM_SEARCH, {"filter": "name = ('a')"})
    assert (out.ref.status, out.ref.error_code) == (400, "BAD_REQUEST")
    assert (out.tet.status, out.tet.error_code) == (400, "INVALID_PARAMETER_VALUE")
    out = pair.send("GET", RM_SEARCH, {"filter": "name IS NULL"})
    assert out.ref.status == 500
    assert (out.tet.status, out.tet.error_code) == (400, "INVALID_PARAMETER_VALUE")
    out = pair.send("GET", RM_SEARCH, {"order_by": ["timestamp", "last_updated_timestamp"]})
    assert out.ref.status == 500
    assert (out.tet.status, out.tet.error_code) == (400, "INVALID_PARAMETER_VALUE")
    assert out.tet_body["message"] == out.ref_body["message"]
    for bad in (0, -1):
        out = pair.send("GET", RM_SEARCH, {"max_results": bad})
        assert out.ref.status == 200
        assert (out.tet.status, out.tet.error_code) == (400, "INVALID_PARAMETER_VALUE")
    # POST is not a search method.
    for rest in pair.rest.values():
        assert rest.post(RM_SEARCH, {}).status == 405


# ----------------------------------------------------------------------- model versions

VERSION_FILTERS = [
    "",
    "name = '{prefix}-a'",
    "name IN ('{prefix}-a', '{prefix}-b')",
    "name NOT IN ('{prefix}-a')",
    "name ILIKE '{prefix}-a%'",
    "run_id = '{run1}'",
    "run_id != '{run1}'",
    "run_id IN ('{run1}', '{run2}')",
    "run_id NOT IN ('{run1}')",
    "run_id LIKE '{run2}%'",
    "source_path = 's3://bucket/a/1'",
    "source_path LIKE 's3://bucket/%'",
    "source_path ILIKE 'S3://%/1'",
    "source_path != 's3://bucket/a/1'",
    "version_number = 1",
    "version_number > 1",
    "version_number >= 2",
    "version_number < 2",
    "version_number <= 1",
    "version_number != 1",
    "version_number = '2'",
    "version_number = 99999999999999999999",
    "version_number > -5",
    "tags.k = 'v1'",
    "tags.k != 'v1'",
    "tags.k LIKE 'v%'",
    "tags.k ILIKE 'V1'",
    "name = '{prefix}-a' AND version_number = 2 AND tags.k = 'v2'",
    "attribute.run_id = '{run1}' and version_number < 5",
]


@pytest.mark.parametrize("filter_string", VERSION_FILTERS)
def test_version_filters(data: Data, filter_string: str) -> None:
    scoped = "name LIKE '{prefix}%'" + (f" AND {filter_string}" if filter_string else "")
    if "99999999999999999999" in filter_string:
        out = data.pair.send("GET", MV_SEARCH, {"filter": data.both(scoped)})
        assert out.ref.status == 500  # MLflow cannot bind the number
        assert (out.tet.status, out.tet_body) == (200, {})
        return
    body = data.pair.same("GET", MV_SEARCH, {"filter": data.both(scoped)}, status=200)
    if filter_string == "":
        # 7 created, one deleted.
        assert len(body["model_versions"]) == 6


def test_version_filter_results(data: Data) -> None:
    p = data.prefix

    def keys(filter_string: str) -> list[tuple[str, str]]:
        body = data.pair.same(
            "GET",
            MV_SEARCH,
            {"filter": data.both(f"name LIKE '{p}%' AND {filter_string}")},
            status=200,
        )
        return [(v["name"].removeprefix(p), v["version"]) for v in body.get("model_versions", [])]

    assert sorted(keys("run_id = '{run1}'")) == [("-Ab", "1"), ("-a", "1")]
    assert sorted(keys("tags.k = 'v1'")) == [("-a", "1"), ("-c", "1")]
    assert sorted(keys("tags.k ILIKE 'v1'")) == [("-a", "1"), ("-b", "1"), ("-c", "1")]
    assert sorted(keys("version_number >= 2")) == [("-a", "2"), ("-b", "2")]


@pytest.mark.parametrize(
    "order_by",
    [
        [],
        ["name"],
        ["name DESC"],
        ["version_number"],
        ["version_number DESC", "name DESC"],
        ["creation_timestamp"],
        ["creation_timestamp DESC"],
        ["last_updated_timestamp ASC"],
        ["tags.name DESC"],
    ],
    ids=str,
)
def test_version_order_by(data: Data, order_by: list[str]) -> None:
    body: dict[str, Any] = {"filter": f"name LIKE '{data.prefix}%'", "order_by": order_by}
    full = data.pair.same("GET", MV_SEARCH, body, status=200)
    pages = _pages(data, MV_SEARCH, body, max_results=4)
    assert [len(p["model_versions"]) for p in pages] == [4, 2]
    assert [v for p in pages for v in p["model_versions"]] == full["model_versions"]


def test_version_default_order(data: Data) -> None:
    body = data.pair.same("GET", MV_SEARCH, {"filter": f"name LIKE '{data.prefix}%'"})
    keys = [(v["name"].removeprefix(data.prefix), v["version"]) for v in body["model_versions"]]
    # last_updated_timestamp DESC: the transitions came last.
    assert keys[:2] == [("-b", "1"), ("-a", "2")]


@pytest.mark.parametrize(
    "request_body",
    [
        {"filter": "version_number = 1.5"},
        {"filter": "version_number = 'abc'"},
        {"filter": "version_number LIKE 1"},
        {"filter": "version_number IN ('1')"},
        {"filter": "run_id > 'a'"},
        {"filter": "run_id = 1"},
        {"filter": "source_path IN ('a')"},
        {"filter": "tags.k = 1"},
        {"filter": "tags.k IN ('a')"},
        {"filter": "current_stage = 'None'"},
        {"filter": "name = 'a' OR run_id = 'b'"},
        {"order_by": ["run_id"]},
        {"order_by": ["foo.name"]},
        {"page_token": "abc"},
        {"max_results": 0},
        {"max_results": 200_001},
        {"max_results": "x"},
    ],
    ids=str,
)
def test_version_search_errors(data: Data, request_body: dict[str, Any]) -> None:
    data.pair.same_error_sets("GET", MV_SEARCH, request_body)


def test_version_search_deviations(data: Data) -> None:
    pair = data.pair
    for request_body in (
        {"filter": "creation_timestamp > 1"},
        {"filter": "name = 1"},
        {"order_by": ["tags.t"]},
    ):
        pair.same_error_sets("GET", MV_SEARCH, request_body)
    out = pair.send("GET", MV_SEARCH, {"order_by": ["name", "name DESC"]})
    assert out.ref.status == 500
    assert (out.tet.status, out.tet.error_code) == (400, "INVALID_PARAMETER_VALUE")
    assert out.tet_body["message"] == out.ref_body["message"]
    out = pair.send("GET", MV_SEARCH, {"filter": "run_id = ('a', 'b')"})
    assert (out.ref.status, out.ref.error_code) == (400, "BAD_REQUEST")
    assert (out.tet.status, out.tet.error_code) == (400, "INVALID_PARAMETER_VALUE")
    for rest in pair.rest.values():
        assert rest.post(MV_SEARCH, {}).status == 405
