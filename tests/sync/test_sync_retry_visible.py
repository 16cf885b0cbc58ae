"""An outage shows in the status as soon as an attempt fails, not once the call gives up: while
the Azure client retries a call inside it (503 with `Retry-After`: several seconds per try),
the entity is in flight with its failing reason (`retrying: ...`) in `errors` and in its
workspace's `last_error`; once the call gets through, the reason is gone."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from sync.sync_tether import Tether
from tether.sync import status
from tether.sync.state import Key
from tether.sync.worker import drain_exit_code

pytestmark = pytest.mark.timeout(120)


def test_a_retrying_call_shows_its_reason_while_in_flight(tether: Tether) -> None:
    experiment = Key("experiment", tether.experiment())
    # Three refused attempts of the call's four, each asking for 3 s: ~9 s inside one call.
    tether.ws.faults(
        path="experiments/get-by-name$", action="status", status=503, retry_after="3", times=3
    )
    counts: dict[str, Any] = {}
    drain = threading.Thread(target=lambda: counts.update(tether.drain(timeout=90)))
    drain.start()
    try:
        deadline = time.monotonic() + 60
        while True:
            with tether.db.read() as session:
                body = status.summary(session)
                workspaces = status.by_workspace(session, {})
            shown = [e for e in body["errors"] if e["entity"] == str(experiment)]
            if shown:
                break
            assert drain.is_alive() and time.monotonic() < deadline, (counts, body)
            time.sleep(0.05)
        detail = tether.detail(experiment)
        # Seen while the call still retries: in flight, no attempt counted as failed yet.
        assert detail["in_flight"] and detail["attempts"] == 0, detail
        assert detail["status"] == "pending", detail
        assert shown[0]["last_error"].startswith("retrying: ") and "503" in shown[0]["last_error"]
        assert "503" in (workspaces["default"]["last_error"] or ""), workspaces
    finally:
        drain.join(120)
    assert drain_exit_code(counts) == 0, counts
    after = tether.detail(experiment)
    assert after["status"] == "synced" and after["last_error"] is None, after
    with tether.db.read() as session:
        assert not status.summary(session)["errors"]
