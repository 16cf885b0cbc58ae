"""Lanes (sync/worker.py) against the stand-in workspace: a run waiting out a long
Retry-After or a slow call holds up only itself, and the dependency order holds however the
entities are spread over the lanes (experiment before run, parent before child, run before
its files, files before the model version, versions in order). Each ends in the fidelity
check."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import select

from sync.sync_fidelity import assert_fidelity, sent_points
from sync.sync_tether import Tether
from sync.test_sync_models import MODEL_FILES
from tether.db.models import RegisteredModel
from tether.sync.state import Key
from tether.sync.worker import SyncWorker, WorkerConfig, drain_exit_code

pytestmark = pytest.mark.timeout(180)


def _synced_run(tether: Tether) -> str:
    run_id = tether.run(tether.experiment())
    tether.log(run_id, 10)
    assert drain_exit_code(tether.drain()) == 0
    return run_id


@contextmanager
def _live_worker(tether: Tether) -> Iterator[SyncWorker]:
    """The background loop of `tether serve` (8 lanes) on the test's store."""
    config = WorkerConfig(poll_s=0.1, linger_ms=300, backoff=tether.worker.config.backoff)
    worker = SyncWorker(tether.db, tether.worker.api, config, owner="live")
    loop = threading.Thread(target=worker.run_forever)
    loop.start()
    try:
        yield worker
    finally:
        worker.stop_event.set()
        loop.join(60)


def _delivered(tether: Tether, run_id: str) -> bool:
    """Synced, with its last metric point acknowledged (not merely not yet discovered)."""
    entity = tether.entity(Key("run", run_id))
    return entity.status == "synced" and entity.metric_hwm == tether.metric_ids(run_id)[-1]


def _until(what: str, check: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, what
        time.sleep(0.05)
    return found


def test_a_long_retry_after_holds_up_only_its_own_run(tether: Tether) -> None:
    """Run A is told to come back in 30 s; run B's new work is delivered after the
    workspace-wide hold (at most 5 s), not after A's 30 s."""
    b = _synced_run(tether)
    a = tether.run(tether.experiment())
    mark = tether.ws.mark()
    tether.ws.faults(path="runs/create$", action="status", status=429, retry_after="30", times=None)
    with _live_worker(tether):
        (throttled,) = _until(
            "A was throttled", lambda: tether.ws.requests(mark, path="runs/create$")
        )
        tether.log(b, 300, start=10)
        _until("B delivered", lambda: _delivered(tether, b), 25)
        waiting = tether.detail(Key("run", a))
    assert waiting["status"] == "failed" and "429" in waiting["last_error"]
    assert waiting["next_attempt_in_seconds"] >= 5, waiting
    assert_fidelity(tether.db, tether.ws.mlflow_url, runs=[b])
    delivered = tether.ws.requests(mark, path="runs/log-batch$")
    assert all(throttled["time"] < e["time"] < throttled["time"] + 25 for e in delivered)
    sent = sent_points(delivered, tether.azure_id(Key("run", b)))
    assert sum(sent.values()) == 300 and set(sent.values()) == {1}
    assert [e["status"] for e in tether.ws.requests(mark, path="runs/create$")] == [429]


def test_a_slow_call_holds_up_only_its_own_lane(tether: Tether) -> None:
    """A's runs/create takes 8 s; B's points, written meanwhile, are delivered meanwhile."""
    b = _synced_run(tether)
    a = tether.run(tether.experiment())
    tether.log(a, 20)
    mark = tether.ws.mark()
    tether.ws.faults(path="runs/create$", action="delay", seconds=8.0, times=1)
    with _live_worker(tether):
        _until("A's create is sent", lambda: tether.ws.requests(mark, path="runs/create$"))
        tether.log(b, 300, start=10)
        _until("B delivered", lambda: _delivered(tether, b))
        (create,) = tether.ws.requests(mark, path="runs/create$")
        assert create["status"] is None, "B was delivered while A's create was still running"
        _until("A delivered", lambda: _delivered(tether, a))
    assert_fidelity(tether.db, tether.ws.mlflow_url, runs=[a, b])


def test_dependency_order_holds_under_concurrency(tether: Tether) -> None:
    """Everything written before the first drain, so the lanes find it all at once."""
    runs: list[str] = []
    versions: list[tuple[str, str]] = []  # (model name, parent run)
    for e in range(2):
        exp = tether.experiment()
        parent = tether.run(exp, name=f"parent-{e}")
        children = [
            tether.run(exp, {"mlflow.parentRunId": parent}, name=f"child-{e}-{c}") for c in range(2)
        ]
        for run_id in (parent, *children):
            tether.log(run_id, 300)
        for name, data in MODEL_FILES.items():
            tether.put_file(parent, f"model/{name}", data)
        tether.put_file(parent, "notes.txt", b"epoch 1\n")
        model = f"model-{parent[:8]}"
        registry = tether.services.registry
        registry.create_model(model, [], "")
        for _ in range(2):
            registry.create_version(
                name=model,
                source=f"mlflow-artifacts:/{exp}/{parent}/artifacts/model",
                run_id=parent,
                tags=[],
                run_link="",
                description="",
                model_id=None,
            )
            versions.append((model, parent))
        runs += [parent, *children]
    mark = tether.ws.mark()

    assert drain_exit_code(tether.drain()) == 0

    assert_fidelity(tether.db, tether.ws.mlflow_url, runs=runs)
    log = tether.ws.requests(mark)
    answered = {}  # Azure id -> seq of the request whose answer named it
    first: dict[str, int] = {}  # what -> seq of the first request that needed it

    def body(entry: dict[str, Any]) -> dict[str, Any]:
        value = entry.get("json")
        return value if isinstance(value, dict) else {}

    azure = {r: tether.azure_id(Key("run", r)) for r in runs}
    creates = [e for e in log if e["path"].endswith("runs/create") and e["status"] == 200]
    for entry in creates:  # the parent's Azure id was known before the child's create
        tags = {t["key"]: t["value"] for t in body(entry).get("tags", [])}
        parent = tags.get("mlflow.parentRunId")
        source = tags["tether.source_run_id"]
        answered[azure[source]] = entry["seq"]
        if parent is not None:
            first[parent] = min(first.get(parent, entry["seq"]), entry["seq"])
    for parent_azure, seq in first.items():
        assert answered[parent_azure] < seq, "a child was created before its parent"
    for run_id in runs:  # data and files after the run's create
        run_seq = answered[azure[run_id]]
        data = [
            e["seq"]
            for e in log
            if body(e).get("run_id") == azure[run_id] or f"/runs/{azure[run_id]}/" in e["path"]
        ]
        assert data and min(data) > run_seq, run_id
    for model, parent in versions:  # the model's files registered before its versions
        files = [
            e["seq"]
            for e in log
            if e["path"].endswith("batch/metadata") and f"/runs/{azure[parent]}/" in e["path"]
        ]
        made = [
            e["seq"]
            for e in log
            if e["path"].endswith("model-versions/create") and body(e).get("name") == model
        ]
        assert files and made and min(files) < min(made), model
    for model in {m for m, _ in versions}:  # Azure numbers versions as they are created
        with tether.db.read() as session:
            model_id = session.scalars(select(RegisteredModel.id).filter_by(name=model)).one()
        numbers = [tether.azure_id(Key("model_version", f"{model_id}/{v}")) for v in (1, 2)]
        assert numbers == ["1", "2"], "versions created in Tether's order"
