"""The workspace down for a while, then back, under `tether serve` with sync on: training
keeps logging (metrics, files, a registered model) while every Azure call fails (ARM,
MLflow, run history and, through the stand-in's storage pass-through, blob storage), first
with the gateway's 503s, then with connections reset without an answer. `tether sync status`
tells the truth all along (work pending, the failure reason, the oldest pending age growing,
no dead letter: an outage is transient); once the workspace is back, everything lands
exactly once (the workload's fidelity check, each blob written once). And the workspace
already down when the server starts: the worker keeps trying to connect, the status shows
the connect error and the undiscovered work with its age."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from sync.sync_servers import run_tether, start_synced, sync_status, wait_synced
from sync.sync_workload import Workload

if TYPE_CHECKING:
    from standin.identity import ManagedIdentityEndpoint
    from standin.workspace import AzuremlWorkspace
    from support import TetherServer, TetherServerStarter

pytestmark = pytest.mark.timeout(300)
sqlite_only = pytest.mark.parametrize("backend_kind", ["sqlite"], indirect=True)


class StatusWatch:
    """Samples the status route every 0.2 s in the background (what an operator would see)."""

    def __init__(self, server: TetherServer) -> None:
        self.server = server
        self.samples: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> StatusWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _loop(self) -> None:
        while not self._stop.wait(0.2):
            self.samples.append(sync_status(self.server))


def _until(
    server: TetherServer,
    check: Callable[[dict[str, Any]], bool],
    what: str,
    timeout: float = 30.0,
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body = sync_status(server)
        if check(body):
            return body
        assert time.monotonic() < deadline, f"{what}: {json.dumps(body)}"
        time.sleep(0.2)


def _behind(body: dict[str, Any]) -> int:
    counts = body["entities"]
    return int(counts["pending"] + counts["in_flight"] + counts["failed"])


def _reasons(body: dict[str, Any]) -> str:
    return " | ".join(e["last_error"] or "" for e in body["errors"])


@sqlite_only
def test_workspace_down_for_a_while_then_back(
    start_tether_server: TetherServerStarter,
    azureml_workspace: AzuremlWorkspace,
    azureml_identity: ManagedIdentityEndpoint,
) -> None:
    ws = azureml_workspace
    ws.quirks(blob_via_front=True)  # storage is down too, and every blob write is counted
    server = start_synced(start_tether_server, ws, azureml_identity)
    mark = ws.mark()
    work = Workload()
    exp = work.experiment(server)
    first = work.run(server, exp, points=300)
    wait_synced(server)  # in Azure before the outage: only new work piles up

    # Down: the gateway answers 503 to everything (no Retry-After).
    ws.faults(path=".*", action="status", status=503, times=None)
    with StatusWatch(server) as watch:
        work.log(server, first, 400)  # training goes on against Tether
        second = work.run(server, exp, points=500)
        work.files_of(server, second, 3)
        model = work.model(server, second)
        # The first 503 can come before the worker has discovered the new run's work:
        # wait until both the reason and the work behind (first run, second run, its
        # files and model) are shown.
        # A request's 503s are retried inside its lane first, each behind the shared
        # throttle's hold (0.5, 1, 2, 4, then 5 s): the reason shows at the first one (the
        # entity in flight, "retrying: ..."), the failure is recorded after about 30 s of
        # holds, so the deadline is well past that (a slow machine's).
        down = _until(
            server,
            lambda b: (
                "503" in _reasons(b)
                and _behind(b) >= 3
                and any(e["status"] == "failed" and e["attempts"] >= 1 for e in b["errors"])
            ),
            "the 503s, a failure and the work behind are shown",
            timeout=90,
        )
        assert down["entities"]["dead"] == 0, down

        # Still down, but now connections are reset without an answer (ambiguous for
        # creates and metric batches: resolved by looking before resending, once back).
        ws.clear_faults()
        ws.faults(path=".*", action="drop", times=None)
        work.log(server, second, 200)
        work.model(server, second, model)  # a second version while the workspace is away
        # Each 503 held every lane (0.5, 1, 2, ... up to 5 s) and then let one request probe:
        # every failed entity is tried again (and shows the reset) once the holds are over.
        _until(
            server,
            lambda b: "disconnected" in _reasons(b).lower() and "503" not in _reasons(b),
            "the resets are shown",
            timeout=90,
        )
        cli = run_tether("sync", "status", "--backend-store-uri", server.backend_uri)
        assert cli.returncode == 0, cli.stderr
        total = next(line for line in cli.stdout.splitlines() if line.startswith("total"))
        pending, in_flight, _, failed, dead = (int(n) for n in total.split()[1:])
        assert pending + in_flight + failed >= 3 and dead == 0, cli.stdout
        age_line = next(line for line in cli.stdout.splitlines() if "oldest pending" in line)
        assert float(age_line.split(":")[1].split()[0]) > 1.0, cli.stdout
        assert "failed (" in cli.stdout and "disconnected" in cli.stdout.lower(), cli.stdout
        ws.clear_faults()  # back
        done = wait_synced(server, timeout=90)  # the recovery's bound (a slow machine's)

    # The operator's view throughout: never dead, never "all synced" while work was behind,
    # the oldest pending age growing through the outage.
    outage = [s for s in watch.samples if _behind(s) or s["errors"]]
    assert outage, "the outage was never visible"
    assert all(s["entities"]["dead"] == 0 for s in watch.samples)
    ages = [s["oldest_pending_age_seconds"] for s in outage]
    assert all(a is not None for a in ages[:-1])
    assert max(a for a in ages if a is not None) > 2.0
    assert done["oldest_pending_age_seconds"] is None and done["errors"] == []
    assert done["worker"]["stats"]["dead_letters"] == 0
    assert done["worker"]["stats"]["transient_failures"] >= 2

    work.check(server.backend_uri, ws, mark)


@sqlite_only
def test_workspace_down_when_the_server_starts(
    start_tether_server: TetherServerStarter,
    azureml_workspace: AzuremlWorkspace,
    azureml_identity: ManagedIdentityEndpoint,
) -> None:
    """Not even ARM discovery answers: the server serves, its worker keeps trying to
    connect, and the status says so (and counts the work waiting), until the workspace is
    back."""
    ws = azureml_workspace
    ws.faults(path=".*", action="status", status=503, times=None)
    server = start_synced(start_tether_server, ws, azureml_identity)
    mark = ws.mark()
    work = Workload()
    run = work.run(server, work.experiment(server), points=200)
    work.files_of(server, run, 2)

    down = _until(
        server, lambda b: "503" in (b["worker"].get("connect_error") or ""), "connect error"
    )
    assert down["worker"]["connected"] is False, down
    time.sleep(1.5)  # the work waits: its age grows
    cli = run_tether("sync", "status", "--json", "--backend-store-uri", server.backend_uri)
    assert cli.returncode == 0, cli.stderr
    shown = json.loads(cli.stdout)
    # No worker could discover anything yet: the rows are counted as such, not as "synced".
    assert sum(shown["entities"].values()) == 0, shown
    assert shown["outbox"]["not_scanned"] == shown["outbox"]["last_id"] > 0, shown
    assert shown["oldest_pending_age_seconds"] > 1.0, shown
    text = run_tether("sync", "status", "--backend-store-uri", server.backend_uri).stdout
    assert "not yet discovered" in text and "oldest pending: -" not in text, text

    ws.clear_faults()
    done = wait_synced(server, timeout=90)
    assert done["worker"]["connected"] and "connect_error" not in done["worker"], done
    work.check(server.backend_uri, ws, mark)


@sqlite_only
def test_a_429_storm_is_waited_out_honouring_retry_after(
    start_tether_server: TetherServerStarter,
    azureml_workspace: AzuremlWorkspace,
    azureml_identity: ManagedIdentityEndpoint,
) -> None:
    """Every call throttled (429, Retry-After: 1) for a while: the worker never sends again
    sooner than asked (in-call retries and the workspace-wide hold alike, whichever lane),
    shows that it is throttled, dead-letters nothing, and delivers everything once when the
    storm ends."""
    ws = azureml_workspace
    server = start_synced(start_tether_server, ws, azureml_identity)
    mark = ws.mark()
    work = Workload()
    exp = work.experiment(server)
    first = work.run(server, exp, points=200)
    wait_synced(server)

    ws.faults(path=".*", action="status", status=429, retry_after="1", times=None)
    storm = ws.mark()
    work.log(server, first, 300)
    second = work.run(server, exp, points=300)
    work.files_of(server, second, 2)
    throttled = _until(
        server,
        lambda b: (
            b["worker"]["stats"]["transient_failures"] >= 2
            and "429" in (b["worker"]["stats"]["last_error"] or "")
            and _behind(b) >= 2  # the new work discovered (asserted below from this sample)
        ),
        "the throttling is shown",
    )
    assert throttled["entities"]["dead"] == 0 and _behind(throttled) >= 2, throttled
    assert throttled["worker"]["http"]["throttled"] >= 4, throttled["worker"]
    ws.clear_faults()
    storm_requests = [e for e in ws.requests(storm) if e["fault"] == "status:429"]
    done = wait_synced(server, timeout=90)

    times = [e["time"] for e in storm_requests]
    # Lanes that had a request on the wire before the first 429 was read get theirs too; from
    # then on every lane holds, and one request at a time probes, Retry-After apart.
    burst = [t for t in times if t <= storm_requests[0]["done"] + 0.25]
    later = times[len(burst) :]
    assert len(later) >= 3, times
    gaps = [b - a for a, b in itertools.pairwise([burst[-1], *later])]
    assert min(gaps) >= 0.95, f"a request sooner than Retry-After allows: {gaps}"
    assert done["worker"]["stats"]["dead_letters"] == 0
    work.check(server.backend_uri, ws, mark)
