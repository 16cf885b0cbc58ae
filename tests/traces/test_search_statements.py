"""A repeated trace search runs its compiled page statement (`searching._compiled_page`):
what is reused is SQL, never an answer. The same filter answers each experiment its own
traces, sees a trace logged after the statement was compiled, pages with its offset and
limit bound per request, and a refused filter is refused every time (on both backends)."""

from __future__ import annotations

import uuid

from support import unique_name
from support.rest import MlflowRest

API3 = "/api/3.0/mlflow"
FILTER = "trace.status = 'OK' AND tags.team = 'a'"


def _experiment(rest: MlflowRest) -> str:
    status, body = rest.post("experiments/create", {"name": unique_name()})
    assert status == 200, body
    return str(body["experiment_id"])


def _start(rest: MlflowRest, experiment_id: str, ms: int, team: str = "a") -> str:
    trace_id = f"tr-{uuid.uuid4().hex}"
    seconds, millis = divmod(ms, 1000)
    info = {
        "trace_id": trace_id,
        "trace_location": {
            "type": "MLFLOW_EXPERIMENT",
            "mlflow_experiment": {"experiment_id": experiment_id},
        },
        "request_time": f"2026-01-01T00:00:{seconds:02d}.{millis:03d}Z",
        "execution_duration": "0.005s",
        "state": "OK",
        "tags": {"team": team},
    }
    status, body = rest.post(f"{API3}/traces", {"trace": {"trace_info": info}})
    assert status == 200, body
    return trace_id


def _search(
    rest: MlflowRest, experiment_id: str, max_results: int = 100, token: str | None = None
) -> tuple[list[str], str | None]:
    body: dict[str, object] = {
        "locations": [
            {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": experiment_id}}
        ],
        "filter": FILTER,
        "order_by": ["timestamp_ms DESC"],
        "max_results": max_results,
    }
    if token:
        body["page_token"] = token
    status, answer = rest.post(f"{API3}/traces/search", body)
    assert status == 200, answer
    return [t["trace_id"] for t in answer.get("traces", [])], answer.get("next_page_token")


def test_a_repeated_search_reads_the_store_each_time(tether_rest: MlflowRest) -> None:
    first, second = _experiment(tether_rest), _experiment(tether_rest)
    ours = [_start(tether_rest, first, 1_000 * i) for i in range(1, 6)]  # oldest first
    _start(tether_rest, first, 7_000, team="b")  # filtered out
    theirs = [_start(tether_rest, second, 1_000 * i) for i in range(1, 3)]

    newest_first = ours[::-1]
    assert _search(tether_rest, first) == (newest_first, None)
    assert _search(tether_rest, first) == (newest_first, None)  # the compiled statement
    assert _search(tether_rest, second) == (theirs[::-1], None)  # its own experiment

    # Logged after the statement was compiled: the next search sees it.
    latest = _start(tether_rest, first, 9_000)
    assert _search(tether_rest, first)[0] == [latest, *newest_first]

    # Pages of 2 with the same filter: offset and limit bound per request.
    pages, token = [], None
    for _ in range(6):  # 4 pages expected; a bound, so a wrong token fails fast
        page, token = _search(tether_rest, first, max_results=2, token=token)
        pages.append(page)
        if token is None:
            break
    assert pages == [[latest, ours[4]], [ours[3], ours[2]], [ours[1], ours[0]], []]


def test_a_refused_filter_is_refused_every_time(tether_rest: MlflowRest) -> None:
    experiment_id = _experiment(tether_rest)
    body = {
        "locations": [
            {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": experiment_id}}
        ],
        "filter": "trace.nonsense = 'x'",
    }
    for _ in range(2):
        status, answer = tether_rest.post(f"{API3}/traces/search", body)
        assert status == 400, answer
        assert answer["error_code"] == "INVALID_PARAMETER_VALUE"
