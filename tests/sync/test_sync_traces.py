"""Traces stay in Tether (Azure ML refuses MLflow traces): a drain with traces in the store
ends clean, `tether sync status` counts them as kept in Tether (not as work for a later
version), and a run linked to traces says so in its report; the run itself is mirrored."""

from __future__ import annotations

from sync.sync_tether import Tether
from tether.sync import status
from tether.sync.commands import _summary_text
from tether.sync.state import Key
from tether.sync.worker import drain_exit_code
from tether.tracking.traces.schemas import TraceInfoIn


def _trace(experiment_id: str, trace_hex: str, run_id: str | None = None) -> TraceInfoIn:
    metadata = {"mlflow.sourceRun": run_id} if run_id else {}
    return TraceInfoIn.model_validate(
        {
            "trace_id": f"tr-{trace_hex}",
            "trace_location": {
                "type": "MLFLOW_EXPERIMENT",
                "mlflow_experiment": {"experiment_id": experiment_id},
            },
            "request_time": "2026-01-01T00:00:00Z",
            "execution_duration": "1.5s",
            "state": "OK",
            "trace_metadata": metadata,
            "tags": {"mlflow.traceName": "answer"},
        }
    )


def test_traces_are_kept_in_tether_and_reported_on_their_run(tether: Tether) -> None:
    experiment = tether.experiment()
    in_run = tether.run(experiment, name="with-traces")
    plain = tether.run(experiment, name="no-traces")
    traces = tether.services.traces
    traces.start(_trace(experiment, "a" * 32, run_id=in_run))
    traces.start(_trace(experiment, "b" * 32))
    traces.link_to_run([f"tr-{'b' * 32}"], in_run)
    traces.start(_trace(experiment, "c" * 32))
    traces.set_tag(f"tr-{'c' * 32}", "k", "v")

    assert drain_exit_code(tether.drain()) == 0

    with tether.db.read() as session:
        body = status.summary(session)
    assert body["kept_in_tether"] == {"traces": 3}
    assert "trace" not in body["not_synced_by_this_version"]["outbox_rows_by_entity_type"]
    assert "trace" not in body["by_type"]  # no sync entity, so never pending, failed or dead
    assert body["entities"]["failed"] == body["entities"]["dead"] == 0
    assert "kept in Tether (Azure ML does not accept them): 3 trace(s)" in _summary_text(body)

    run = tether.detail(Key("run", in_run))
    assert run["status"] == "synced"
    reported = [(r["kind"], r["subject"]) for r in run["report"]]
    assert reported == [("skipped", "traces")]
    assert "kept in Tether" in run["report"][0]["reason"]
    assert tether.detail(Key("run", plain))["report"] == []

    traces.delete(experiment, None, None, [f"tr-{'c' * 32}"])  # retention: the count follows
    with tether.db.read() as session:
        assert status.summary(session)["kept_in_tether"] == {"traces": 2}
