"""Searching traces (v3 `traces/search`, v2 `GET traces`): MLflow's filter grammar for traces,
order_by and paging; Tether against the reference `mlflow server`, filter by filter.

One experiment is filled the same way on both servers (traces started with chosen ids, times,
tags and metadata; spans over OTLP for some; assessments on some), then every filter below is
sent to both and the answers compared, errors included.

Deliberate deviation asserted here: an order_by naming one field twice is MLflow's 500
INTERNAL_ERROR (its exception has no code) and Tether's 400 INVALID_PARAMETER_VALUE.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from compat.diff import Ref
from traces.tracediff import SpanSpec, TracePair, assert_same, otlp_request, trace_info

BASE_MS = 1_767_323_045_000
FILTERS = [
    "",
    "attributes.status = 'OK'",
    "trace.status != 'OK'",
    "status IN ('OK', 'ERROR')",
    "status NOT IN ('OK')",
    "timestamp_ms > 1767323046000",
    "timestamp >= 1767323046000 AND timestamp_ms < 1767323049000",
    "execution_time_ms > 1500",
    "execution_time < 2000",
    "end_time_ms > 1767323050000",
    "request_id = '{t3}'",
    "request_id IN ('{t1}', '{t2}')",
    "client_request_id = 'client-2'",
    "client_request_id LIKE 'client-%'",
    "name = 'predict'",
    "tags.`mlflow.traceName` = 'chat'",
    "trace.name LIKE 'pre%'",
    "name ILIKE 'PRE%'",
    "name RLIKE '^ch'",
    "tags.team = 'a'",
    "tag.team != 'a'",
    "tags.team LIKE '%'",
    "tags.team IS NULL",
    "tags.team IS NOT NULL",
    "tags.`weird key` = 'x y'",
    "metadata.user = 'u1'",
    "request_metadata.user ILIKE 'U%'",
    "metadata.user IS NOT NULL",
    "metadata.`mlflow.trace.session` = 's-1'",
    "metadata.`mlflow.trace.session` IS NULL",
    'metadata.`mlflow.trace.tokenUsage` = \'{{"input_tokens": 5, "output_tokens": 7}}\'',
    "metadata.`mlflow.trace.tokenUsage` IS NOT NULL",
    "span.name = 'retrieve'",
    "span.type = 'LLM'",
    "span.status = 'ERROR'",
    "span.name LIKE 'ret%' AND span.type = 'RETRIEVER'",
    "span.name = 'retrieve' AND span.type = 'LLM'",
    "trace.text LIKE '%needle%'",
    "trace.text ILIKE '%NEEDLE%'",
    "span.content LIKE '%haystack%'",
    "span.attributes.topic LIKE '%science%'",
    "span.attributes.`topic` ILIKE '%SCIENCE%'",
    "feedback.quality = 'good'",
    "feedback.score > 0.5",
    "feedback.score <= 0.5",
    "feedback.quality IS NOT NULL",
    "feedback.quality IS NULL",
    "expectation.answer = '42'",
    "feedback.quality LIKE 'go%'",
    "status = 'OK' AND tags.team = 'a' AND metadata.user = 'u1'",
]
ORDERS = [
    [],
    ["timestamp_ms ASC"],
    ["timestamp DESC"],
    ["execution_time_ms DESC"],
    ["status"],
    ["name ASC"],
    ["tags.team DESC"],
    ["metadata.user ASC", "timestamp_ms DESC"],
    ["request_id DESC"],
]
BAD_FILTERS = [
    "attributes.nope = 'x'",
    "nothere.x = 'y'",
    "status > 'OK'",
    "timestamp_ms LIKE '1%'",
    "tags.team IN ('a')",
    "name IN ('a')",
    "metadata.user = 5",
    "status = 1",
    "span.nope = 'x'",
    "span.content = 'x'",
    "feedback.score > 'x'",
    "feedback.score = 5",
    "issue.id > 'x'",
    "prompt LIKE 'x'",
    "prompt = 'novers'",
    "status = 'OK' OR status = 'ERROR'",
    "status = ",
    "metadata.`mlflow.trace.tokenUsage` LIKE 'x'",
]
BAD_ORDERS = [["nope"], ["status sideways"], ["span.name"], ["attributes.client_request_id"]]
# MLflow answers these 500 INTERNAL_ERROR (an error without a code); Tether 400, same message.
DUPLICATE_ORDERS = [["tags.a", "tags.a"], ["timestamp_ms", "timestamp"]]


def _trace_hex(prefix: str, n: int) -> str:
    return f"{prefix}{n:024d}"


def _filter(corpus: dict[str, Any], text: str) -> str:
    """A filter naming the corpus's trace ids (`{t1}`...: each backend's run has its own)."""
    return text.format(**{f"t{n}": f"tr-{_trace_hex(corpus['prefix'], n)}" for n in range(1, 7)})


@pytest.fixture(scope="module")
def corpus(reference_server: Any, tether_server: Any) -> Iterator[dict[str, Any]]:
    """One experiment per server, filled alike: the same trace ids on both (module scoped:
    trace ids are unique per store, so each Tether backend gets its own module run)."""
    with reference_server.rest() as reference_rest, tether_server.rest() as tether_rest:
        pair = TracePair(reference_rest, tether_rest)
        exp = pair.experiment()
        prefix = uuid.uuid4().hex[:8]  # trace ids are the client's: fresh per module run

        def _trace_id(n: int) -> str:
            return f"tr-{_trace_hex(prefix, n)}"

        rows = [
            # (n, offset ms, duration, state, name, tags, metadata)
            (
                1,
                0,
                "1s",
                "OK",
                "predict",
                {"team": "a"},
                {"user": "u1", "mlflow.trace.session": "s-1"},
            ),
            (2, 1000, "2s", "ERROR", "predict", {"team": "b", "weird key": "x y"}, {"user": "u2"}),
            (3, 2000, "1.500s", "OK", "chat", {}, {"user": "u1"}),
            (4, 3000, None, "IN_PROGRESS", "chat", {"team": "a"}, {}),
            (
                5,
                4000,
                "3s",
                "OK",
                "other",
                {"team": "c"},
                {"mlflow.trace.tokenUsage": '{"input_tokens": 5, "output_tokens": 7}'},
            ),
            (6, 5000, "0.250s", "OK", "predict", {"team": "a"}, {"user": "u3"}),
        ]
        for n, offset, duration, state, name, tags, metadata in rows:
            moment = BASE_MS + offset
            stamp = f"2026-01-02T03:04:{5 + offset // 1000:02d}.000Z"
            assert moment // 1000 == BASE_MS // 1000 + offset // 1000
            body = trace_info(
                _trace_id(n),
                exp,
                request_time=stamp,
                execution_duration=duration,
                state=state,
                tags={"mlflow.traceName": name, **tags},
                metadata=metadata,
                client_request_id=f"client-{n}",
            )
            out = pair.v3("POST", "traces", body)
            assert out.ref.status == out.tet.status == 200, (out.ref.text, out.tet.text)
        for _n, spans in (
            (2, _spans(_trace_hex(prefix, 2), "needle in a haystack", "science", error=True)),
            (5, _spans(_trace_hex(prefix, 5), "hay", "art", error=False)),
        ):
            ref, tet = pair.otlp(exp, otlp_request(spans))
            assert ref.status == tet.status == 200, (ref.text, tet.text)
        for n, name, value in (
            (1, "quality", "good"),
            (2, "quality", "bad"),
            (3, "score", 0.9),
            (6, "score", 0.1),
        ):
            body = {
                "assessment_name": name,
                "source": {"source_type": "HUMAN", "source_id": "me"},
                "create_time": "2026-01-03T00:00:00Z",
                "last_update_time": "2026-01-03T00:00:00Z",
                "feedback": {"value": value},
            }
            pair.assessment(_trace_id(n), body)
        expectation = {
            "assessment_name": "answer",
            "source": {"source_type": "HUMAN"},
            "create_time": "2026-01-03T00:00:00Z",
            "last_update_time": "2026-01-03T00:00:00Z",
            "expectation": {"value": "42"},
        }
        pair.assessment(_trace_id(4), expectation)
        yield {"exp": exp, "prefix": prefix}


def _spans(trace_hex: str, text: str, topic: str, *, error: bool) -> list[SpanSpec]:
    root = uuid.uuid4().hex[:16]
    return [
        SpanSpec(
            trace_hex,
            uuid.uuid4().hex[:16],
            "retrieve",
            (BASE_MS + 1) * 1_000_000,
            (BASE_MS + 2) * 1_000_000,
            parent_hex=root,
            attributes={"mlflow.spanType": "RETRIEVER", "topic": topic, "doc": text},
        ),
        SpanSpec(
            trace_hex,
            root,
            "root",
            BASE_MS * 1_000_000,
            (BASE_MS + 3) * 1_000_000,
            attributes={"mlflow.spanType": "LLM"},
            status=2 if error else 1,
        ),
    ]


def _loc(exp: Ref) -> list[dict[str, Any]]:
    return [{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": exp}}]


def _ids(body: Any) -> list[str]:
    return [t["trace_id"] for t in body.get("traces", [])]


@pytest.mark.parametrize("filter_string", FILTERS)
def test_filters(pair: TracePair, corpus: dict[str, Any], filter_string: str) -> None:
    body = {
        "locations": _loc(corpus["exp"]),
        "filter": _filter(corpus, filter_string),
        "max_results": 100,
    }
    pair.same3("POST", "traces/search", body, status=200)


@pytest.mark.parametrize("order_by", ORDERS, ids=[",".join(o) or "default" for o in ORDERS])
def test_order_by(pair: TracePair, corpus: dict[str, Any], order_by: list[str]) -> None:
    body = {"locations": _loc(corpus["exp"]), "order_by": order_by}
    answer = pair.same3("POST", "traces/search", body, status=200)
    assert len(_ids(answer)) == 6


@pytest.mark.parametrize("filter_string", BAD_FILTERS)
def test_bad_filters(pair: TracePair, corpus: dict[str, Any], filter_string: str) -> None:
    body = {"locations": _loc(corpus["exp"]), "filter": filter_string}
    out = pair.v3("POST", "traces/search", body)
    assert (out.ref.status, out.ref.error_code) == (out.tet.status, out.tet.error_code), (
        out.ref.text,
        out.tet.text,
    )
    assert out.tet.status == 400


@pytest.mark.parametrize("order_by", BAD_ORDERS, ids=[",".join(o) for o in BAD_ORDERS])
def test_bad_order_by(pair: TracePair, corpus: dict[str, Any], order_by: list[str]) -> None:
    out = pair.v3("POST", "traces/search", {"locations": _loc(corpus["exp"]), "order_by": order_by})
    assert (out.ref.status, out.ref.error_code) == (out.tet.status, out.tet.error_code), (
        out.ref.text,
        out.tet.text,
    )


@pytest.mark.parametrize("order_by", DUPLICATE_ORDERS, ids=[",".join(o) for o in DUPLICATE_ORDERS])
def test_duplicate_order_by(pair: TracePair, corpus: dict[str, Any], order_by: list[str]) -> None:
    out = pair.v3("POST", "traces/search", {"locations": _loc(corpus["exp"]), "order_by": order_by})
    assert (out.ref.status, out.ref.error_code) == (500, "INTERNAL_ERROR")
    assert (out.tet.status, out.tet.error_code) == (400, "INVALID_PARAMETER_VALUE")
    assert out.tet.json["message"] == out.ref.json["message"]


def test_paging(pair: TracePair, corpus: dict[str, Any]) -> None:
    seen: list[str] = []
    token = None
    for _ in range(4):
        body: dict[str, Any] = {"locations": _loc(corpus["exp"]), "max_results": 4}
        if token:
            body["page_token"] = token
        out = pair.v3("POST", "traces/search", body)
        assert_same(out, 200)
        seen += _ids(out.tet.json)
        token = out.tet.json.get("next_page_token")
        assert token == out.ref.json.get("next_page_token")  # the same offset tokens
        if not token:
            break
    assert len(seen) == len(set(seen)) == 6
    content = {
        "locations": _loc(corpus["exp"]),
        "filter": "trace.text LIKE '%a%'",
        "max_results": 1,
    }
    first = pair.same3("POST", "traces/search", content)
    second = pair.same3(
        "POST", "traces/search", {**content, "page_token": first["next_page_token"]}
    )
    assert _ids(first) != _ids(second)


def test_page_size_and_token_errors(pair: TracePair, corpus: dict[str, Any]) -> None:
    for extra in ({"max_results": 501}, {"max_results": 0}, {"page_token": "not-a-token"}):
        out = pair.v3("POST", "traces/search", {"locations": _loc(corpus["exp"]), **extra})
        assert (out.ref.status, out.ref.error_code) == (out.tet.status, out.tet.error_code)
        assert out.tet.status == 400
    bad = [{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": "a.b"}}]
    out = pair.v3("POST", "traces/search", {"locations": bad})
    assert (out.ref.status, out.ref.error_code) == (out.tet.status, out.tet.error_code)


def test_search_v2(pair: TracePair, corpus: dict[str, Any]) -> None:
    for query in (
        {"experiment_ids": corpus["exp"]},
        {"experiment_ids": corpus["exp"], "filter": "status = 'OK'", "order_by": "timestamp_ms"},
        {"experiment_ids": corpus["exp"], "max_results": 2},
    ):
        pair.same("GET", "traces", query, status=200)
    out = pair.send("GET", "traces", {})
    assert (out.ref.status, out.ref.error_code) == (out.tet.status, out.tet.error_code)


def test_metrics_and_correlation(pair: TracePair, corpus: dict[str, Any]) -> None:
    exp = corpus["exp"]
    queries: list[dict[str, Any]] = [
        {
            "view_type": "TRACES",
            "metric_name": "trace_count",
            "aggregations": [{"aggregation_type": "COUNT"}],
        },
        {
            "view_type": "TRACES",
            "metric_name": "trace_count",
            "aggregations": [{"aggregation_type": "COUNT"}],
            "dimensions": ["trace_status", "trace_name"],
        },
        {
            "view_type": "TRACES",
            "metric_name": "latency",
            "aggregations": [
                {"aggregation_type": "AVG"},
                {"aggregation_type": "PERCENTILE", "percentile_value": 50},
                {"aggregation_type": "PERCENTILE", "percentile_value": 90},
                {"aggregation_type": "MAX"},
            ],
            "time_interval_seconds": 2,
            "start_time_ms": BASE_MS,
            "end_time_ms": BASE_MS + 10_000,
        },
        {
            "view_type": "TRACES",
            "metric_name": "input_tokens",
            "aggregations": [{"aggregation_type": "SUM"}],
        },
        {
            "view_type": "TRACES",
            "metric_name": "trace_count",
            "aggregations": [{"aggregation_type": "COUNT"}],
            "filters": ["trace.status = 'OK'", "trace.tag.team = 'a'"],
        },
        {
            "view_type": "SPANS",
            "metric_name": "span_count",
            "aggregations": [{"aggregation_type": "COUNT"}],
            "dimensions": ["span_type"],
        },
        {
            "view_type": "SPANS",
            "metric_name": "latency",
            "aggregations": [{"aggregation_type": "AVG"}],
            "filters": ["span.name = 'retrieve'"],
        },
        {
            "view_type": "ASSESSMENTS",
            "metric_name": "assessment_count",
            "aggregations": [{"aggregation_type": "COUNT"}],
            "dimensions": ["assessment_name", "assessment_value"],
        },
        {
            "view_type": "ASSESSMENTS",
            "metric_name": "assessment_value",
            "aggregations": [{"aggregation_type": "AVG"}, {"aggregation_type": "MIN"}],
            "filters": ["assessment.name = 'score'"],
        },
        {
            "view_type": "TRACES",
            "metric_name": "nope",
            "aggregations": [{"aggregation_type": "COUNT"}],
        },
        {
            "view_type": "TRACES",
            "metric_name": "latency",
            "aggregations": [{"aggregation_type": "COUNT"}],
        },
        {
            "view_type": "TRACES",
            "metric_name": "latency",
            "aggregations": [{"aggregation_type": "AVG"}],
            "time_interval_seconds": 60,
        },
        {
            "view_type": "TRACES",
            "metric_name": "trace_count",
            "aggregations": [{"aggregation_type": "COUNT"}],
            "dimensions": ["span_name"],
        },
    ]
    for query in queries:
        out = pair.v3("POST", "traces/metrics", {"experiment_ids": [exp], **query})
        assert_same(out)
    for first, second, base in (
        ("status = 'OK'", "tags.team = 'a'", None),
        ("span.type = 'LLM'", "status = 'ERROR'", "timestamp_ms > 0"),
        ("tags.team = 'zzz'", "status = 'OK'", None),
    ):
        body: dict[str, Any] = {
            "experiment_ids": [exp],
            "filter_string1": first,
            "filter_string2": second,
        }
        if base:
            body["base_filter"] = base
        out = pair.v3("POST", "traces/calculate-filter-correlation", body)
        assert out.ref.status == out.tet.status == 200, (out.ref.text, out.tet.text)
        assert out.tet.json == out.ref.json
