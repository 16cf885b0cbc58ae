"""Experiments API: Tether against the reference `mlflow server`, request by request.

Deliberate deviations asserted here (MLflow's answer is an accident of its SQL store):
- creating an experiment with a taken name: both answer 400 RESOURCE_ALREADY_EXISTS, but MLflow
  appends the raw IntegrityError (SQL text) to the message; Tether says only the first sentence.
- renaming onto a taken name: both answer 400 BAD_REQUEST, MLflow with the raw SQL error as
  its message, Tether with "Experiment(name=...) already exists.".
- experiments/search without max_results: MLflow 3.x refuses (its proto has no default, so it
  sees 0); Tether uses MLflow's documented default page size (1000).
"""

from __future__ import annotations

import os

from compat.diff import Pair, Ref
from support import unique_name
from support.servers import ReferenceServer, TetherServer

DOCS = " See the API docs for more information about request parameters."


def _get(pair: Pair, exp: Ref) -> dict[str, object]:
    body: dict[str, object] = pair.same(
        "GET", "experiments/get", {"experiment_id": exp}, status=200
    )
    return body


def test_default_experiment(pair: Pair) -> None:
    body = pair.same("GET", "experiments/get", {"experiment_id": "0"}, status=200)
    assert body["experiment"]["name"] == "Default"
    assert body["experiment"]["artifact_location"] == "mlflow-artifacts:/<exp:0>"
    assert "tags" not in body["experiment"]
    assert body["experiment"]["workspace"] == "default"
    by_name = pair.same("GET", "experiments/get-by-name", {"experiment_name": "Default"})
    assert by_name == body


def test_create_get_and_get_by_name(pair: Pair) -> None:
    name = unique_name("diff-exp")
    tags = [{"key": "b", "value": "2"}, {"key": "a", "value": "1"}, {"key": "empty", "value": ""}]
    exp = pair.experiment(name, tags=tags)
    body = _get(pair, exp)
    assert body == {
        "experiment": {
            "experiment_id": exp.symbol,
            "name": name,
            "artifact_location": f"mlflow-artifacts:/{exp.symbol}",
            "lifecycle_stage": "active",
            "last_update_time": "<ts>",
            "creation_time": "<ts>",
            "tags": tags,  # in the order given, as both servers keep it
            "workspace": "default",
        }
    }
    assert pair.same("GET", "experiments/get-by-name", {"experiment_name": name}) == body
    # The ajax prefix (the MLflow UI's) serves the same API.
    for rest in pair.rest.values():
        assert (
            rest.get(
                "/ajax-api/2.0/mlflow/experiments/get-by-name", {"experiment_name": name}
            ).status
            == 200
        )


def test_create_with_explicit_artifact_location(pair: Pair) -> None:
    name = unique_name("diff-loc")
    exp = pair.experiment(name, artifact_location="s3://bucket/some/where")
    body = _get(pair, exp)
    assert body["experiment"]["artifact_location"] == "s3://bucket/some/where"


def test_create_with_relative_artifact_location(
    pair: Pair, reference_server: ReferenceServer, tether_server: TetherServer
) -> None:
    """A relative local location is made absolute against the server's working directory (each
    server runs in its own temporary directory), bare or as a `file:` URI; absolute ones and
    other schemes are kept as given."""
    cwd = {
        "ref": os.path.realpath(reference_server.tmpdir),
        "tet": os.path.realpath(tether_server.tmpdir),
    }
    cases = {
        "rel/dir": "{cwd}/rel/dir",
        "./dot/dir": "{cwd}/dot/dir",
        "file:rel/f": "file://{cwd}/rel/f",
        "with%20space": "{cwd}/with space",
        "/abs/olute": "/abs/olute",
        "file:///abs/f": "file:///abs/f",
    }
    for given, expected in cases.items():
        exp = pair.experiment(unique_name("diff-rel"), artifact_location=given)
        for side in ("ref", "tet"):
            got = pair.rest[side].get("experiments/get", {"experiment_id": exp.side(side)})
            shown = got.json["experiment"]["artifact_location"]
            assert shown == expected.format(cwd=cwd[side]), (side, given, shown)


def test_unicode_name_and_tags(pair: Pair) -> None:
    name = unique_name("эксперимент-实验-🚀")
    exp = pair.experiment(name, tags=[{"key": "ключ", "value": "значение ✓"}])
    body = _get(pair, exp)
    assert body["experiment"]["name"] == name
    assert body["experiment"]["tags"] == [{"key": "ключ", "value": "значение ✓"}]


def test_create_errors(pair: Pair) -> None:
    pair.same_error("POST", "experiments/create", {}, message=True)
    pair.same_error("POST", "experiments/create", {"name": ""})
    pair.same_error("POST", "experiments/create", {"name": 5})
    pair.same_error("POST", "experiments/create", {"name": ["a"]})
    pair.same_error("POST", "experiments/create", {"name": "x" * 501})
    pair.same_error("POST", "experiments/create", {"name": unique_name(), "tags": "a"})
    out = pair.same_error(
        "POST",
        "experiments/create",
        {"name": unique_name(), "tags": [{"key": "k" * 251, "value": "v"}]},
    )
    assert out.tet_body["message"] == "'key' exceeds the maximum length of 250 characters"


def test_duplicate_name_is_refused(pair: Pair) -> None:
    name = unique_name("diff-dup")
    pair.experiment(name)
    out = pair.same_error(
        "POST",
        "experiments/create",
        {"name": name},
        code="RESOURCE_ALREADY_EXISTS",
        message=False,
        mentions=(f"Experiment(name={name}) already exists.",),
    )
    # Deliberate deviation: no SQL text in Tether's message.
    assert out.tet_body["message"] == f"Experiment(name={name}) already exists."


def test_get_errors(pair: Pair) -> None:
    pair.same_error("GET", "experiments/get", {})
    pair.same_error("GET", "experiments/get", {"experiment_id": "abc"})
    pair.same_error(
        "GET",
        "experiments/get",
        {"experiment_id": "987654321"},
        status=404,
        code="RESOURCE_DOES_NOT_EXIST",
    )
    pair.same_error("GET", "experiments/get-by-name", {})
    pair.same_error(
        "GET",
        "experiments/get-by-name",
        {"experiment_name": unique_name("missing")},
        status=404,
        code="RESOURCE_DOES_NOT_EXIST",
    )


def test_rename(pair: Pair) -> None:
    exp = pair.experiment()
    new_name = unique_name("diff-renamed")
    pair.same(
        "POST", "experiments/update", {"experiment_id": exp, "new_name": new_name}, status=200
    )
    assert _get(pair, exp)["experiment"]["name"] == new_name
    # Renaming to its own name is fine.
    pair.same(
        "POST", "experiments/update", {"experiment_id": exp, "new_name": new_name}, status=200
    )
    pair.same_error("POST", "experiments/update", {"experiment_id": exp})
    pair.same_error("POST", "experiments/update", {"experiment_id": exp, "new_name": ""})
    pair.same_error("POST", "experiments/update", {"experiment_id": exp, "new_name": 3})
    pair.same_error(
        "POST",
        "experiments/update",
        {"experiment_id": "987654321", "new_name": unique_name()},
        status=404,
        code="RESOURCE_DOES_NOT_EXIST",
    )
    assert _get(pair, exp)["experiment"]["name"] == new_name


def test_rename_to_existing_name(pair: Pair) -> None:
    taken = unique_name("diff-taken")
    pair.experiment(taken)
    exp = pair.experiment()
    before = _get(pair, exp)
    out = pair.same_error(
        "POST",
        "experiments/update",
        {"experiment_id": exp, "new_name": taken},
        code="BAD_REQUEST",
        message=False,  # MLflow's is its IntegrityError's SQL text
    )
    assert out.tet_body["message"] == f"Experiment(name={taken}) already exists."
    assert _get(pair, exp) == before


def test_experiment_tags(pair: Pair) -> None:
    exp = pair.experiment()
    set_tag = "experiments/set-experiment-tag"
    pair.same("POST", set_tag, {"experiment_id": exp, "key": "k", "value": "v"}, status=200)
    pair.same("POST", set_tag, {"experiment_id": exp, "key": "k", "value": "v2"}, status=200)
    pair.same("POST", set_tag, {"experiment_id": exp, "key": "no-value"}, status=200)
    pair.same("POST", set_tag, {"experiment_id": exp, "key": "long", "value": "v" * 20000})
    pair.same("POST", set_tag, {"experiment_id": exp, "key": "ключ", "value": "✓"}, status=200)
    body = _get(pair, exp)
    keys = [t["key"] for t in body["experiment"]["tags"]]
    assert keys == ["k", "no-value", "long", "ключ"]  # first set first; "k" was overwritten
    before = body

    pair.same_error("POST", set_tag, {"experiment_id": exp, "key": "k" * 251, "value": "v"})
    pair.same_error("POST", set_tag, {"experiment_id": exp, "key": "x", "value": "v" * 20001})
    pair.same_error("POST", set_tag, {"experiment_id": exp, "key": "../k", "value": "v"})
    pair.same_error("POST", set_tag, {"experiment_id": exp, "key": "/k", "value": "v"})
    pair.same_error("POST", set_tag, {"experiment_id": exp, "value": "v"})
    pair.same_error("POST", set_tag, {"experiment_id": exp, "key": "k", "value": 5})
    pair.same_error("POST", set_tag, {"key": "k", "value": "v"})
    pair.same_error(
        "POST",
        set_tag,
        {"experiment_id": "987654321", "key": "k", "value": "v"},
        status=404,
        code="RESOURCE_DOES_NOT_EXIST",
    )
    assert _get(pair, exp) == before

    delete_tag = "experiments/delete-experiment-tag"
    pair.same("POST", delete_tag, {"experiment_id": exp, "key": "k"}, status=200)
    pair.same_error(
        "POST",
        delete_tag,
        {"experiment_id": exp, "key": "k"},
        status=404,
        code="RESOURCE_DOES_NOT_EXIST",
    )
    pair.same_error("POST", delete_tag, {"experiment_id": exp})
    pair.same_error(
        "POST",
        delete_tag,
        {"experiment_id": "987654321", "key": "k"},
        status=404,
        code="RESOURCE_DOES_NOT_EXIST",
    )
    assert "k" not in [t["key"] for t in _get(pair, exp)["experiment"]["tags"]]


def test_tags_keep_insertion_order(pair: Pair) -> None:
    """An experiment's tags come in the order they were first set, in get, get-by-name and
    search alike: an overwritten tag keeps its place, one deleted and set again goes last."""
    name = unique_name("diff-order")
    exp = pair.experiment(name, tags=[{"key": "z", "value": "1"}, {"key": "a", "value": "1"}])
    set_tag = "experiments/set-experiment-tag"
    for key, value in (("m", "1"), ("z", "2"), ("b", "1")):
        pair.same("POST", set_tag, {"experiment_id": exp, "key": key, "value": value}, status=200)
    pair.same("POST", "experiments/delete-experiment-tag", {"experiment_id": exp, "key": "a"})
    pair.same("POST", set_tag, {"experiment_id": exp, "key": "a", "value": "3"}, status=200)
    body = _get(pair, exp)
    assert [t["key"] for t in body["experiment"]["tags"]] == ["z", "m", "b", "a"]
    assert pair.same("GET", "experiments/get-by-name", {"experiment_name": name}) == body
    search = {"filter": f"name = '{name}'", "max_results": 5}
    found = pair.same("POST", "experiments/search", search, status=200)
    assert found == {"experiments": [body["experiment"]]}


def test_delete_and_restore(pair: Pair) -> None:
    exp = pair.experiment()
    run = pair.run(exp)
    pair.same("POST", "experiments/delete", {"experiment_id": exp}, status=200)
    body = _get(pair, exp)
    assert body["experiment"]["lifecycle_stage"] == "deleted"
    # Its runs are deleted with it.
    assert pair.snapshot(run)["run"]["info"]["lifecycle_stage"] == "deleted"

    missing = {"status": 404, "code": "RESOURCE_DOES_NOT_EXIST"}
    pair.same_error("POST", "experiments/delete", {"experiment_id": exp}, **missing)
    pair.same_error("POST", "experiments/delete", {"experiment_id": "987654321"}, **missing)
    pair.same_error("POST", "experiments/delete", {})
    pair.same_error("POST", "experiments/delete", {"experiment_id": "abc"})
    inactive = "experiments/set-experiment-tag"
    pair.same_error("POST", inactive, {"experiment_id": exp, "key": "k", "value": "v"})
    pair.same_error("POST", "experiments/delete-experiment-tag", {"experiment_id": exp, "key": "k"})
    # Same code and message; MLflow's status is 500, Tether's the client error it is (400).
    renamed = pair.send(
        "POST", "experiments/update", {"experiment_id": exp, "new_name": unique_name()}
    )
    assert (renamed.ref.status, renamed.ref.error_code) == (500, "INVALID_STATE")
    assert (renamed.tet.status, renamed.tet.error_code) == (400, "INVALID_STATE")
    assert renamed.tet_body["message"] == renamed.ref_body["message"]
    pair.same_error("POST", "runs/create", {"experiment_id": exp, "start_time": 1})
    # The name stays taken while the experiment is deleted.
    name = body["experiment"]["name"]
    pair.same_error(
        "POST", "experiments/create", {"name": name}, code="RESOURCE_ALREADY_EXISTS", message=False
    )
    assert _get(pair, exp) == body

    pair.same("POST", "experiments/restore", {"experiment_id": exp}, status=200)
    assert _get(pair, exp)["experiment"]["lifecycle_stage"] == "active"
    assert pair.snapshot(run)["run"]["info"]["lifecycle_stage"] == "active"
    pair.same_error("POST", "experiments/restore", {"experiment_id": exp}, **missing)
    pair.same_error("POST", "experiments/restore", {"experiment_id": "987654321"}, **missing)
    pair.same_error("POST", "experiments/restore", {})


def _search_names(body: dict[str, object], names: set[str]) -> list[str]:
    experiments = body.get("experiments", [])
    assert isinstance(experiments, list)
    return [e["name"] for e in experiments if e["name"] in names]


def test_search_get_and_post(pair: Pair) -> None:
    prefix = unique_name("diff-search")
    names = [f"{prefix}-{i}" for i in range(3)]
    exps = [pair.experiment(n, tags=[{"key": "i", "value": str(i)}]) for i, n in enumerate(names)]
    pair.same("POST", "experiments/delete", {"experiment_id": exps[1]}, status=200)
    request = {"filter": f"name LIKE '{prefix}%'", "max_results": 10}
    for method in ("GET", "POST"):
        active = pair.same(method, "experiments/search", request, status=200)
        assert [e["name"] for e in active["experiments"]] == [names[2], names[0]]
        for view_type, expected in (
            ("DELETED_ONLY", [names[1]]),
            ("ALL", names[::-1]),
            ("ACTIVE_ONLY", [names[2], names[0]]),
        ):
            body = pair.same(method, "experiments/search", {**request, "view_type": view_type})
            assert [e["name"] for e in body["experiments"]] == expected
    ordered = pair.same(
        "POST", "experiments/search", {**request, "view_type": "ALL", "order_by": ["name ASC"]}
    )
    assert [e["name"] for e in ordered["experiments"]] == names
    tagged = pair.same(
        "POST",
        "experiments/search",
        {"filter": f"name LIKE '{prefix}%' AND tags.i = '2'", "max_results": 5},
    )
    assert [e["name"] for e in tagged["experiments"]] == [names[2]]
    nothing = pair.same(
        "POST", "experiments/search", {"filter": "name = 'no-such-exp-x'", "max_results": 5}
    )
    assert nothing == {}


def test_search_paging(pair: Pair) -> None:
    prefix = unique_name("diff-page")
    names = [f"{prefix}-{i}" for i in range(5)]
    for n in names:
        pair.experiment(n)
    request = {"filter": f"name LIKE '{prefix}%'", "max_results": 2, "order_by": ["name DESC"]}
    tokens = {"ref": None, "tet": None}
    seen: list[str] = []
    for _ in range(3):
        pages = {}
        for side, rest in pair.rest.items():
            body = dict(request, page_token=tokens[side]) if tokens[side] else request
            pages[side] = rest.post("experiments/search", body)
        ref_body, tet_body = (
            pair.norm["ref"](pages["ref"].json),
            pair.norm["tet"](pages["tet"].json),
        )
        assert (pages["ref"].status, ref_body) == (pages["tet"].status, tet_body)
        seen += [e["name"] for e in tet_body["experiments"]]
        tokens = {side: pages[side].json.get("next_page_token") for side in pages}
    assert seen == sorted(names, reverse=True)
    assert tokens == {"ref": None, "tet": None}


def test_search_errors(pair: Pair) -> None:
    search = "experiments/search"
    pair.same_error("POST", search, {"max_results": 0})
    pair.same_error("POST", search, {"max_results": -5})
    pair.same_error("POST", search, {"max_results": 50001})
    pair.same_error("POST", search, {"max_results": "abc"})
    pair.same_error("GET", search, {"max_results": "abc"})
    pair.same_error("POST", search, {"max_results": 10, "page_token": "garbage"})
    pair.same_error("POST", search, {"max_results": 10, "page_token": "eyJmb28iOiAxfQ=="})
    pair.same_error("POST", search, {"max_results": 10, "filter": "name ="}, message=False)
    pair.same_error("POST", search, {"max_results": 10, "filter": "foo = 'a'"}, message=False)
    pair.same_error("POST", search, {"max_results": 10, "order_by": ["bogus"]}, message=False)
    pair.same_error("POST", search, {"max_results": 10, "order_by": "name"})


def test_search_default_page_size(pair: Pair) -> None:
    out = pair.send("POST", "experiments/search", {"filter": "name = 'Default'"})
    # Deliberate deviation: MLflow 3.x reads a missing max_results as 0 and refuses.
    assert out.ref.status == 400 and "max_results" in out.ref.json["message"]
    assert out.tet.status == 200
    assert [e["experiment_id"] for e in out.tet.json["experiments"]] == ["0"]
