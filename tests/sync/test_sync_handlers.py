"""The sync worker against the stand-in workspace (tests/standin): real azure-identity tokens
from the managed-identity stand-in, real HTTP, Azure's quirks and injected faults; Tether's
side is a real store written through the tracking services. Each test ends in the fidelity
check of `sync_fidelity` (no duplicate run, every metric point once).
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import update

from support import unique_name
from sync.sync_fidelity import InnerMlflow, assert_fidelity, sent_points
from sync.sync_tether import Tether
from tether.db import outbox
from tether.db.models import SyncEntity
from tether.db.outbox.records import ArtifactPut, EntityType
from tether.sync import state, status
from tether.sync.state import Key
from tether.sync.worker import SyncWorker, WorkerConfig, drain_exit_code
from tether.tracking.runs.service import DatasetIn, MetricIn

if TYPE_CHECKING:
    from standin.identity import ManagedIdentityEndpoint

pytestmark = pytest.mark.timeout(120)


def test_a_training_run_is_mirrored_exactly(tether: Tether) -> None:
    svc = tether.services
    exp = tether.experiment(f"team/vision {unique_name()}", {"owner": "alice"})
    parent = tether.run(exp, {"mlflow.source.name": "train.py", "note": "n" * 1500}, "parent")
    child = tether.run(exp, {"mlflow.parentRunId": parent}, "child")
    svc.runs.log_batch(
        parent,
        [MetricIn("loss", i / 3, 1_700_000_000_000 + i, i) for i in range(600)]
        + [MetricIn("acc", float("nan"), 1_700_000_000_500, 3)],
        [("lr", "0.01"), ("layers", "4")],
        [("stage", "train")],
    )
    tether.log(child, 300, "val_loss")
    svc.runs.set_tag(parent, "tmp", "x")
    svc.runs.delete_tag(parent, "tmp")
    ds = DatasetIn("mnist", "d1g3st", "local", '{"uri": "/data"}', None, None, [("ctx", "train")])
    svc.runs.log_inputs(parent, [ds], [])
    svc.runs.update(child, "FAILED", 1_700_000_100_000, None)
    svc.runs.update(parent, "FINISHED", 1_700_000_200_000, "parent-final")
    svc.experiments.set_tag(exp, "phase", "2")
    svc.experiments.rename(exp, unique_name("renamed"))
    mark = tether.ws.mark()

    counts = tether.drain()

    assert drain_exit_code(counts) == 0, counts
    assert_fidelity(tether.db, tether.ws.mlflow_url, runs=[parent, child])
    inner = InnerMlflow(tether.ws.mlflow_url)
    azure_child = inner.get("runs/get", run_id=tether.azure_id(Key("run", child)))["run"]
    parent_tag = [t for t in azure_child["data"]["tags"] if t["key"] == "mlflow.parentRunId"]
    assert parent_tag == [
        {"key": "mlflow.parentRunId", "value": tether.azure_id(Key("run", parent))}
    ]
    inputs = inner.get("runs/get", run_id=tether.azure_id(Key("run", parent)))["run"]["inputs"]
    assert [d["dataset"]["name"] for d in inputs["dataset_inputs"]] == ["mnist"]
    requests = tether.ws.requests(mark, path="runs/log-batch$")
    sent = sent_points(requests, tether.azure_id(Key("run", parent)))
    assert sum(sent.values()) == 601 and set(sent.values()) == {1}, "each point sent once"
    assert all(len((e["json"] or {}).get("metrics", [])) <= 250 for e in requests)

    exp_report = {r["subject"]: r["kind"] for r in tether.detail(Key("experiment", exp))["report"]}
    assert exp_report == {"name": "mapped", "rename": "skipped"}
    run_report = {r["subject"]: r["kind"] for r in tether.detail(Key("run", parent))["report"]}
    assert run_report == {"tag:note": "truncated", "metrics": "split"}


def test_azure_limits_are_respected_and_reported(tether: Tether) -> None:
    exp = tether.experiment()
    run_id = tether.run(exp, {f"t{i:02d}": "v" for i in range(60)})
    params = [(f"p{i:03d}", str(i)) for i in range(230)]
    for first in range(0, 230, 100):
        tether.services.runs.log_batch(run_id, [], params[first : first + 100], [])
    tether.services.runs.set_tag(run_id, "late", "tag")

    assert drain_exit_code(tether.drain()) == 0

    assert_fidelity(tether.db, tether.ws.mlflow_url, runs=[run_id])
    report = tether.detail(Key("run", run_id))["report"]
    skipped = sorted(r["subject"] for r in report if r["kind"] == "skipped")
    # 50 tags per run: the source-id tag and mlflow.runName first, then 48 of the user's.
    assert skipped == [f"param:p{i:03d}" for i in range(200, 230)] + ["tag:late"] + [
        f"tag:t{i:02d}" for i in range(48, 60)
    ]


def test_lost_response_on_run_create_makes_no_duplicate(tether: Tether) -> None:
    exp = tether.experiment()
    run_id = tether.run(exp)
    tether.log(run_id, 10)
    tether.ws.faults(path="runs/create$", action="lost_response", times=1)

    assert drain_exit_code(tether.drain()) == 0

    assert_fidelity(tether.db, tether.ws.mlflow_url, runs=[run_id])  # one run per source id


def test_metrics_resume_from_the_high_water_mark(tether: Tether) -> None:
    """The third batch fails for good: two acknowledged batches are never sent again."""
    exp = tether.experiment()
    run_id = tether.run(exp)
    tether.log(run_id, 1100)
    ids = tether.metric_ids(run_id)
    mark = tether.ws.mark()
    # Rules are tried in order, a used-up one skipped: the first two batches go through (the
    # zero delay only counts them), every later one is refused.
    tether.ws.faults(
        {"path": "runs/log-batch$", "action": "delay", "seconds": 0, "times": 2},
        {
            "path": "runs/log-batch$",
            "action": "status",
            "status": 503,
            "retry_after": "0",
            "times": None,
        },
    )
    counts = tether.drain(timeout=8)  # ends it: the failed entity is due again within 0.4 s

    assert counts["failed"] + counts["pending"] >= 1
    run = tether.entity(Key("run", run_id))
    assert run.metric_hwm == ids[499], "high-water mark after two acknowledged batches"
    assert run.status == "failed" and "503" in (run.last_error or "")
    tether.ws.clear_faults()
    assert drain_exit_code(tether.drain()) == 0
    assert_fidelity(tether.db, tether.ws.mlflow_url, runs=[run_id])
    sent = sent_points(tether.ws.requests(mark, path="runs/log-batch$"), run.azure_id or "")
    assert sum(sent.values()) == 1100 and set(sent.values()) == {1}


def test_an_ambiguous_metric_batch_is_checked_not_resent(tether: Tether) -> None:
    exp = tether.experiment()
    run_id = tether.run(exp)
    tether.log(run_id, 400)
    mark = tether.ws.mark()
    tether.ws.faults(
        {"path": "runs/log-batch$", "action": "lost_response", "times": 1},
        {"path": "runs/log-batch$", "action": "drop", "times": 1},
    )

    assert drain_exit_code(tether.drain()) == 0

    assert_fidelity(tether.db, tether.ws.mlflow_url, runs=[run_id])
    requests = tether.ws.requests(mark, path="runs/log-batch$")
    sent = sent_points(requests, tether.azure_id(Key("run", run_id)))
    assert sum(sent.values()) == 400 and set(sent.values()) == {1}
    assert tether.ws.requests(mark, path="metrics/get-history$"), "the lost batch was checked"


def test_throttling_with_and_without_retry_after(tether: Tether) -> None:
    exp = tether.experiment()
    run_id = tether.run(exp)
    tether.log(run_id, 10)
    mark = tether.ws.mark()
    tether.ws.faults(
        {"path": "runs/create$", "action": "status", "status": 429, "retry_after": "1"},
        {"path": "runs/log-batch$", "action": "status", "status": 429, "times": 4},
        {"path": "runs/log-batch$", "action": "status", "status": 503, "times": 1},
    )

    assert drain_exit_code(tether.drain()) == 0

    assert_fidelity(tether.db, tether.ws.mlflow_url, runs=[run_id])
    creates = tether.ws.requests(mark, path="runs/create$")
    assert [e["status"] for e in creates] == [429, 200]
    assert creates[1]["time"] - creates[0]["time"] >= 0.95, "Retry-After was honoured"
    batches = [e["status"] for e in tether.ws.requests(mark, path="runs/log-batch$")]
    assert batches == [429] * 4 + [503, 200]  # 4 tries in the call, then the entity's backoff
    assert tether.worker.api.client.stats.throttled >= 5


def test_a_long_retry_after_reschedules_the_entity(tether: Tether) -> None:
    exp = tether.experiment()
    run_id = tether.run(exp)
    tether.ws.faults(path="runs/create$", action="status", status=429, retry_after="30")

    counts = tether.drain()

    assert drain_exit_code(counts) == 3, counts  # retry later
    detail = tether.detail(Key("run", run_id))
    assert detail["status"] == "failed" and detail["attempts"] == 1
    assert detail["next_attempt_in_seconds"] >= 20  # the 30 s asked, not a backoff (<= 0.4 s)
    assert "429" in detail["last_error"]
    assert len(tether.ws.requests(0, path="runs/create$")) >= 1


def test_token_expiry_mid_drain_refreshes_once(
    tether: Tether, azureml_identity: ManagedIdentityEndpoint
) -> None:
    """A token azure-identity still holds as valid is refused (revoked, expired early)."""
    azureml_identity.configure(lifetime=3600)  # long enough for azure-identity to cache it
    tether.worker.api.client.tokens.refresh()
    exp = tether.experiment()
    run_id = tether.run(exp)
    tether.log(run_id, 300)
    tether.drain()
    tether.log(run_id, 300, start=300)
    mark = tether.ws.mark()
    tether.ws.faults(action="reject_tokens", times=None)  # tokens issued so far are refused
    refreshes = tether.worker.api.client.stats.token_refreshes

    assert drain_exit_code(tether.drain()) == 0

    assert tether.worker.api.client.stats.token_refreshes == refreshes + 1
    assert [e["auth"] for e in tether.ws.requests(mark)][:2] == ["rejected", "ok"]
    assert_fidelity(tether.db, tether.ws.mlflow_url, runs=[run_id])


def test_permanent_refusal_is_a_dead_letter_until_retried(tether: Tether) -> None:
    exp = tether.experiment()
    run_id = tether.run(exp)
    tether.log(run_id, 5)
    refusal = {"error_code": "INVALID_PARAMETER_VALUE", "message": "refused (injected)"}
    tether.ws.faults(path="experiments/create$", action="status", status=400, body=refusal)

    counts = tether.drain()

    assert drain_exit_code(counts) == 4, counts
    assert tether.entity(Key("experiment", exp)).status == "dead"
    blocked = tether.entity(Key("run", run_id))
    assert (blocked.status, blocked.waiting_on) == ("dead", f"experiment:{exp}")
    with tether.db.read() as session:
        errors = {e["entity"]: e for e in status.summary(session)["errors"]}
    assert "refused (injected)" in errors[f"experiment:{exp}"]["last_error"]
    with tether.db.write() as session:
        requeued = state.requeue(session, [Key("experiment", exp)])
    assert requeued == [Key("experiment", exp), Key("run", run_id)]
    assert drain_exit_code(tether.drain()) == 0
    assert_fidelity(tether.db, tether.ws.mlflow_url, runs=[run_id])


def test_experiment_delete_waits_for_runs_and_restore_follows(tether: Tether) -> None:
    exp = tether.experiment()
    run_id = tether.run(exp)
    tether.log(run_id, 20)
    tether.services.experiments.delete(exp)
    assert drain_exit_code(tether.drain()) == 0
    assert_fidelity(tether.db, tether.ws.mlflow_url, runs=[run_id])  # run deleted with it

    tether.services.experiments.restore(exp)
    tether.services.runs.delete(run_id)
    assert drain_exit_code(tether.drain()) == 0
    assert_fidelity(tether.db, tether.ws.mlflow_url, runs=[run_id])


def test_a_name_taken_in_azure_gets_a_suffix(tether: Tether) -> None:
    name = unique_name("taken")
    inner = InnerMlflow(tether.ws.mlflow_url)
    foreign = inner.post("experiments/create", {"name": name})["experiment_id"]
    inner.post("experiments/delete", {"experiment_id": foreign})
    exp = tether.experiment(name)
    run_id = tether.run(exp)

    assert drain_exit_code(tether.drain()) == 0

    azure_exp = tether.azure_id(Key("experiment", exp))
    assert azure_exp != foreign
    azure_name = inner.get("experiments/get", experiment_id=azure_exp)["experiment"]["name"]
    assert azure_name.startswith(f"{name}-")
    assert_fidelity(tether.db, tether.ws.mlflow_url, runs=[run_id])


def test_a_slow_call_keeps_its_lease(tether: Tether) -> None:
    """A call longer than the lease: the heartbeat keeps other workers off the entity."""
    exp = tether.experiment()
    run_id = tether.run(exp)
    tether.drain()  # the experiment and the run exist in Azure
    tether.log(run_id, 10)
    config = WorkerConfig(lease_ms=1200, poll_s=0.1)
    slow = SyncWorker(tether.db, tether.worker.api, config, owner="slow")
    mark = tether.ws.mark()
    tether.ws.faults(path="runs/log-batch$", action="delay", seconds=6.0)
    worker = threading.Thread(target=slow.drain)
    worker.start()
    deadline = time.monotonic() + 30
    while not tether.ws.requests(mark, path="runs/log-batch$"):  # the slow call has begun
        assert time.monotonic() < deadline, "the worker did not reach the metrics"
        time.sleep(0.05)
    time.sleep(3.0)  # 2.5 leases into the 6 s call: renewed several times
    with tether.db.write() as session:
        assert state.claim(session, "other", 1200) is None
        assert tether.detail(Key("run", run_id))["lease_owner"].startswith("slow/")  # a lane
    (call,) = tether.ws.requests(mark, path="runs/log-batch$")
    assert call["status"] is None, "checked while the slow call was still running"
    worker.join(30)
    assert tether.entity(Key("run", run_id)).status == "synced"
    assert_fidelity(tether.db, tether.ws.mlflow_url, runs=[run_id])


def test_a_child_run_waits_for_its_parent(tether: Tether) -> None:
    exp = tether.experiment()
    tether.drain()  # the experiments are in Azure
    parent = tether.run(exp, name="parent")
    child = tether.run(exp, {"mlflow.parentRunId": parent}, name="child")
    tether.worker.discover(force=True)
    with tether.db.write() as session:  # make the child the first run a worker picks
        session.execute(
            update(SyncEntity)
            .where(SyncEntity.entity_id == child)
            .values(updated_at=0, next_attempt_at=0)
        )
    assert tether.worker.step()  # the child: deferred, nothing sent
    waiting = tether.entity(Key("run", child))
    assert (waiting.status, waiting.waiting_on, waiting.azure_id) == (
        "pending",
        f"run:{parent}",
        None,
    )
    assert drain_exit_code(tether.drain()) == 0
    assert_fidelity(tether.db, tether.ws.mlflow_url, runs=[parent, child])


def test_files_outside_runs_are_counted_not_synced(tether: Tether) -> None:
    exp = tether.experiment()
    run_id = tether.run(exp)
    with tether.db.write() as session:  # what the artifact service appends
        outbox.append(
            session, ArtifactPut(run_id, entity_type=EntityType.RUN, path="x/model.pkl", size=3)
        )
        outbox.append(
            session,
            ArtifactPut(
                "shared/x.bin", entity_type=EntityType.ARTIFACT, path="shared/x.bin", size=3
            ),
        )
    tether.services.runs.set_tag(run_id, "after", "artifact")

    assert drain_exit_code(tether.drain()) == 0

    assert_fidelity(tether.db, tether.ws.mlflow_url, runs=[run_id])  # later rows went through
    assert tether.detail(Key("run", run_id))["report"] == []  # files are `run_artifacts`
    files = tether.detail(Key("run_artifacts", run_id))["report"]
    assert [(r["kind"], r["subject"]) for r in files] == [("skipped", "file:x/model.pkl")]
    with tether.db.read() as session:
        later = status.summary(session)["not_synced_by_this_version"]
        assert later["outbox_rows_by_entity_type"] == {"artifact": 1}
        assert state.get(session, Key("artifact", "shared/x.bin")) is None


def test_a_refused_identity_is_retried_not_dead(tether: Tether) -> None:
    """403 (a missing role assignment) is fixed by the operator, not by changing the request."""
    exp = tether.experiment()
    run_id = tether.run(exp)
    tether.ws.faults(path="runs/create$", action="status", status=403, times=1)

    assert drain_exit_code(tether.drain()) == 0

    statuses = [e["status"] for e in tether.ws.requests(0, path="runs/create$")][-2:]
    assert statuses == [403, 200]
    assert_fidelity(tether.db, tether.ws.mlflow_url, runs=[run_id])
