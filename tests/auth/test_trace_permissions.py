"""Traces with authentication on: every trace route is decided by the trace's experiment, as
in MLflow's auth app (READ reads, EDIT writes tags and assessments, MANAGE deletes; DENY
nothing; the default permission READ for users without a grant), and the OTLP receiver by
the experiment its `x-mlflow-experiment-id` header names. Runs on SQLite and PostgreSQL.

alice creates the experiment (MANAGE) and grants erin EDIT, dave MANAGE, carol DENY; bob has
the default (READ).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest

from support import TetherServer, unique_name
from support.auth import ADMIN, ADMIN_PASSWORD, create_users, grant, http
from traces.tracediff import SpanSpec, otlp_request, trace_info

USERS = ("alice", "bob", "carol", "dave", "erin")
PASSWORDS = {name: f"{name}-password-12" for name in USERS}
V3 = "/api/3.0/mlflow"
V2 = "/api/2.0/mlflow"
OK, DENIED = 200, 403


@dataclass
class World:
    url: str
    experiment_id: str
    run_id: str
    trace_id: str


def _as(world: World, user: str) -> httpx.Client:
    return http(world.url, user, PASSWORDS[user])


def _export_span(client: httpx.Client, experiment_id: str) -> httpx.Response:
    """One root span over OTLP: a trace `tr-<hex>` with its spans in the tracking store."""
    span = SpanSpec(uuid.uuid4().hex, uuid.uuid4().hex[:16], "root", 1_000, 2_000)
    return client.post(
        "/v1/traces",
        content=otlp_request([span]),
        headers={
            "content-type": "application/x-protobuf",
            "x-mlflow-experiment-id": experiment_id,
        },
    )


def _start_trace(client: httpx.Client, experiment_id: str) -> str:
    trace_id = "tr-" + uuid.uuid4().hex
    answer = client.post(f"{V3}/traces", json=trace_info(trace_id, experiment_id))
    assert answer.status_code == 200, answer.text
    return trace_id


def _only_trace(client: httpx.Client, experiment_id: str) -> str:
    location = {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": experiment_id}}
    answer = client.post(f"{V3}/traces/search", json={"locations": [location]})
    assert answer.status_code == 200, answer.text
    (found,) = answer.json()["traces"]
    trace_id: str = found["trace_id"]
    return trace_id


@pytest.fixture(scope="module")
def world(auth_server: TetherServer) -> Iterator[World]:
    url = auth_server.url
    create_users(url, PASSWORDS)
    with http(url, "alice", PASSWORDS["alice"]) as alice:
        answer = alice.post(f"{V2}/experiments/create", json={"name": unique_name("traces")})
        experiment_id = answer.json()["experiment_id"]
        answer = alice.post(f"{V2}/runs/create", json={"experiment_id": experiment_id})
        run_id = answer.json()["run"]["info"]["run_id"]
        answer = _export_span(alice, experiment_id)
        assert answer.status_code == 200, answer.text
        trace_id = _only_trace(alice, experiment_id)
        for user, permission in (("erin", "EDIT"), ("dave", "MANAGE"), ("carol", "DENY")):
            grant(alice, user, "experiment", experiment_id, permission)
    yield World(url, experiment_id, run_id, trace_id)


def statuses(world: World, call: Callable[[httpx.Client, str], httpx.Response]) -> dict[str, int]:
    """Each user's status code for `call(client, user)`."""
    got = {}
    for user in USERS:
        with _as(world, user) as client:
            got[user] = call(client, user).status_code
    return got


READERS = {"alice": OK, "bob": OK, "carol": DENIED, "dave": OK, "erin": OK}
EDITORS = {"alice": OK, "bob": DENIED, "carol": DENIED, "dave": OK, "erin": OK}
MANAGERS = {"alice": OK, "bob": DENIED, "carol": DENIED, "dave": OK, "erin": DENIED}


def test_reading_a_trace_needs_read_on_its_experiment(world: World) -> None:
    t = world.trace_id
    assert statuses(world, lambda c, _: c.get(f"{V3}/traces/{t}")) == READERS
    assert statuses(world, lambda c, _: c.get(f"{V3}/traces/get", params={"trace_id": t})) == (
        READERS
    )
    assert statuses(world, lambda c, _: c.get(f"{V2}/traces/{t}/info")) == READERS
    body = {"trace_ids": [t]}
    assert statuses(world, lambda c, _: c.post(f"{V3}/traces/batchGetInfos", json=body)) == (
        READERS
    )
    search = {
        "locations": [
            {
                "type": "MLFLOW_EXPERIMENT",
                "mlflow_experiment": {"experiment_id": world.experiment_id},
            }
        ]
    }
    assert statuses(world, lambda c, _: c.post(f"{V3}/traces/search", json=search)) == READERS
    params = {"experiment_ids": [world.experiment_id]}
    assert statuses(world, lambda c, _: c.get(f"{V2}/traces", params=params)) == READERS


def test_writing_needs_edit(world: World) -> None:
    t = world.trace_id
    tag = {"key": "reviewed", "value": "yes"}
    assert statuses(world, lambda c, _: c.patch(f"{V3}/traces/{t}/tags", json=tag)) == EDITORS
    assert (
        statuses(
            world,
            lambda c, _: c.post(
                f"{V3}/traces", json=trace_info("tr-" + uuid.uuid4().hex, world.experiment_id)
            ),
        )
        == EDITORS
    )
    feedback = {
        "assessment": {
            "assessment_name": "quality",
            "trace_id": t,
            "source": {"source_type": "HUMAN", "source_id": "someone"},
            "feedback": {"value": True},
        }
    }
    assert (
        statuses(world, lambda c, _: c.post(f"{V3}/traces/{t}/assessments", json=feedback))
        == EDITORS
    )
    link = {"trace_ids": [t], "run_id": world.run_id}
    assert statuses(world, lambda c, _: c.post(f"{V2}/traces/link-to-run", json=link)) == EDITORS


def test_otlp_export_needs_edit_on_the_header_experiment(world: World) -> None:
    assert statuses(world, lambda c, _: _export_span(c, world.experiment_id)) == EDITORS


def test_deleting_traces_needs_manage(world: World) -> None:
    with _as(world, "alice") as alice:
        owned = {user: _start_trace(alice, world.experiment_id) for user in USERS}

    def delete(client: httpx.Client, user: str) -> httpx.Response:
        body = {"experiment_id": world.experiment_id, "request_ids": [owned[user]]}
        return client.post(f"{V3}/traces/delete-traces", json=body)

    assert statuses(world, delete) == MANAGERS
    # Asked by an admin: a missing trace is refused to others, as a missing run is.
    with http(world.url, ADMIN, ADMIN_PASSWORD) as admin:
        left = {u: admin.get(f"{V3}/traces/{t}").status_code for u, t in owned.items()}
    assert left == {u: 404 if MANAGERS[u] == OK else 200 for u in USERS}


def test_a_stranger_gets_401_and_an_unknown_trace_is_no_oracle(world: World) -> None:
    with http(world.url) as anonymous:
        assert anonymous.get(f"{V3}/traces/{world.trace_id}").status_code == 401
    with _as(world, "bob") as bob:
        # Missing and forbidden look the same to a non-admin: nothing to learn from ids.
        assert bob.get(f"{V3}/traces/tr-{uuid.uuid4().hex}").status_code == DENIED
