"""The worker reads outbox rows through the typed records (`tether.db.outbox`): a row it cannot
read (an op from a newer release, a broken payload) stops its entity as a dead letter whose
reason names the row and the problem, before anything of it or after it is sent, and stays
dead when retried; a row in a shape an older release wrote is delivered as what it meant."""

from __future__ import annotations

import pytest

from sync.outbox_rows import insert_row
from sync.sync_fidelity import InnerMlflow
from sync.sync_tether import Tether
from tether.sync import state, status
from tether.sync.state import Key
from tether.sync.worker import drain_exit_code
from tether.tracking.logged_models.service import KeyValueIn


@pytest.mark.parametrize(
    ("op", "payload", "reason"),
    [
        ("frobnicate", '{"level":3}', "unknown op 'frobnicate' for run rows (a newer release?)"),
        (
            "set_tag",
            '{"key":"k","value":7}',
            "malformed run 'set_tag' record: value: Input should be a valid string",
        ),
        ("log_batch", '{"params":{"p":"1"},"flags":1}', "malformed run 'log_batch' record: flags"),
    ],
)
def test_a_row_that_does_not_decode_is_a_dead_letter_with_its_reason(
    tether: Tether, op: str, payload: str, reason: str
) -> None:
    exp = tether.experiment()
    run_id = tether.run(exp)
    tether.services.runs.set_tag(run_id, "before", "1")
    with tether.db.write() as session:
        bad = insert_row(session, "run", run_id, op, payload)
    tether.services.runs.set_tag(run_id, "after", "2")
    key = Key("run", run_id)

    assert drain_exit_code(tether.drain()) == 4

    run = tether.entity(key)
    assert run.status == "dead"
    assert (run.last_error or "").startswith(f"outbox row {bad}: {reason}")
    assert run.cursor < bad  # the rows before it were applied, it and the ones after were not
    inner = InnerMlflow(tether.ws.mlflow_url)
    tags = inner.get("runs/get", run_id=tether.azure_id(key))["run"]["data"]["tags"]
    assert {t["key"] for t in tags} >= {"before"} and "after" not in {t["key"] for t in tags}
    with tether.db.read() as session:
        errors = {e["entity"]: e["last_error"] for e in status.summary(session)["errors"]}
    assert errors[f"run:{run_id}"] == run.last_error

    with tether.db.write() as session:  # `tether sync retry`: the same row, the same reason
        assert state.requeue(session, [key]) == [key]
    assert drain_exit_code(tether.drain()) == 4
    again = tether.entity(key)
    assert (again.status, again.last_error, again.cursor) == ("dead", run.last_error, run.cursor)


def test_a_row_in_an_older_shape_is_delivered_as_it_meant(tether: Tether) -> None:
    """Up to the typed records the registry wrote a logged model's `mlflow.modelVersions` tag
    as {"key", "value"}; the logged-model service writes {"tags": {...}}."""
    exp = tether.experiment()
    created = tether.services.logged_models.create(
        experiment_id=exp,
        name="clf",
        model_type=None,
        source_run_id=None,
        params=[],
        tags=[KeyValueIn("flavor", "sklearn")],
    )
    model_id = str(created["info"]["model_id"])
    with tether.db.write() as session:
        insert_row(
            session,
            "logged_model",
            model_id,
            "set_tag",
            '{"key":"mlflow.modelVersions",'
            '"value":"[{\\"name\\": \\"clf\\", \\"version\\": \\"1\\"}]"}',
        )
    tether.services.logged_models.set_tags(model_id, [KeyValueIn("stage", "prod")])

    assert drain_exit_code(tether.drain()) == 0

    report = tether.detail(Key("logged_model", model_id))["report"]
    assert [(r["kind"], r["subject"]) for r in report] == [
        ("skipped", "tag:flavor"),
        ("skipped", "tag:mlflow.modelVersions"),
        ("skipped", "tag:stage"),
    ]
