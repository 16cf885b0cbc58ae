"""Pieces of the sync benchmark (`bench/sync.py`): the stand-in workspace and Tether as
processes, the training clients, what the workspace received and when, and the lag.

The stand-in is the test suite's (tests/standin: a real `mlflow server` behind an Azure-shaped
front, Azurite, the managed-identity endpoint), started with its `latency_ms` quirk and without
request bodies in its log (the benchmark reads counts, not bodies).
"""

from __future__ import annotations

import bisect
import math
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import httpx

REPO = Path(__file__).resolve().parent.parent
if str(REPO / "tests") not in sys.path:  # the stand-in and its helpers live in tests/
    sys.path.insert(0, str(REPO / "tests"))

from bench.servers import Server, clean_env, free_port  # noqa: E402
from standin.identity import ManagedIdentityEndpoint  # noqa: E402
from standin.workspace import AzuremlWorkspace  # noqa: E402

API = "/api/2.0/mlflow"
STATUS = "/api/2.0/tether/sync/status"
METRICS_PER_STEP = 10
WORKSPACE_HEADER = "X-MLFLOW-WORKSPACE"  # what `mlflow.set_workspace(...)` makes the client send


def in_workspace(workspace: str | None) -> dict[str, str]:
    """Request headers that address `workspace` (none: the server's default)."""
    return {WORKSPACE_HEADER: workspace} if workspace else {}


@contextmanager
def standin(latency_ms: float) -> Iterator[tuple[ManagedIdentityEndpoint, AzuremlWorkspace]]:
    identity = ManagedIdentityEndpoint(lifetime=3600.0)
    try:
        ws = AzuremlWorkspace(
            identity, quirks={"latency_ms": float(latency_ms), "log_request_bodies": False}
        )
        try:
            yield identity, ws
        finally:
            ws.stop()
    finally:
        identity.stop()


@contextmanager
def second_standin(
    identity: ManagedIdentityEndpoint, first: AzuremlWorkspace, latency_ms: float
) -> Iterator[AzuremlWorkspace]:
    """Another team's Azure ML workspace: its own MLflow and Blob container (in `first`'s
    Azurite), the same identity endpoint and latency."""
    ws = AzuremlWorkspace(
        identity,
        blob_endpoint=first.blob_endpoint,
        quirks={"latency_ms": float(latency_ms), "log_request_bodies": False},
        resource_group="rg-team-b",
        workspace="ws-team-b",
    )
    try:
        yield ws
    finally:
        ws.stop()


def tether(
    store: Path,
    ws: AzuremlWorkspace | None,
    identity: ManagedIdentityEndpoint | None,
    env: dict[str, str] | None = None,
    args: list[str] | None = None,
) -> Server:
    """`tether serve` on the store in `store` (kept across restarts), syncing into `ws` when
    given, with `args` added. Started (ready) on return."""
    logs = Path(os.path.join(store, f"run-{time.time_ns()}"))
    logs.mkdir(parents=True)
    port = free_port()
    argv = [
        str(REPO / ".venv" / "bin" / "tether"),
        "serve",
        "--backend-store-uri",
        f"sqlite:///{store / 'tether.db'}",
        "--artifacts-destination",
        str(store / "artifacts"),
        "--data-dir",
        str(store),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *(args or []),
    ]
    extra = {"TETHER_ACCESS_LOG": "false"}
    if ws is not None and identity is not None:
        argv += ["--azureml-workspace", ws.arm_id]
        extra.update({**identity.env, **ws.env, "TETHER_AZUREML_ARM_ENDPOINT": ws.arm_endpoint})
    extra.update(env or {})  # last: a caller's CA bundle replaces the workspace's
    server = Server("tether", argv, clean_env(extra), port, logs)
    server.start()
    return server


def add_workspace(base: str, store: Path, name: str, ws: AzuremlWorkspace) -> None:
    """Create MLflow workspace `name` on the running server (REST, as the 3.17 client does) and
    bind it to `ws` with `tether workspaces bind` on the same store (no restart)."""
    response = httpx.post(f"{base}/api/3.0/mlflow/workspaces", json={"name": name}, timeout=30.0)
    response.raise_for_status()
    subprocess.run(
        [
            str(REPO / ".venv" / "bin" / "tether"),
            "workspaces",
            "bind",
            name,
            "--azureml-workspace",
            ws.tracking_uri,
            "--backend-store-uri",
            f"sqlite:///{store / 'tether.db'}",
        ],
        check=True,
        capture_output=True,
        timeout=120,
        env=clean_env({}),
    )


def post(client: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(f"{API}/{path}", json=body)
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


def new_runs(base: str, n: int, prefix: str, workspace: str | None = None) -> list[str]:
    with httpx.Client(base_url=base, timeout=60.0, headers=in_workspace(workspace)) as client:
        exp = post(client, "experiments/create", {"name": f"{prefix}-{time.time_ns()}"})
        return [
            post(client, "runs/create", {"experiment_id": exp["experiment_id"]})["run"]["info"][
                "run_id"
            ]
            for _ in range(n)
        ]


def sync_status(base: str, entity: str | None = None) -> dict[str, Any]:
    params = {"entity": entity} if entity else None
    response = httpx.get(base + STATUS, params=params, timeout=30.0)
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def wait_synced(base: str, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        body = sync_status(base)
        counts = body["entities"]
        if body["outbox"]["scanned_to"] == body["outbox"]["last_id"] and not any(
            counts[b] for b in ("pending", "in_flight", "failed", "dead")
        ):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"not synced after {timeout} s: {body}")
        time.sleep(0.2)


def azure_ids(base: str, runs: list[str]) -> dict[str, str]:
    """Local run id -> Azure run id (once synced)."""
    return {run: sync_status(base, f"run:{run}")["azure_id"] for run in runs}


# Clients ------------------------------------------------------------------------------------


@dataclass
class Acks:
    """Per run: (time acknowledged, points acknowledged so far)."""

    by_run: dict[str, list[tuple[float, int]]] = field(default_factory=dict)
    errors: int = 0

    def total(self) -> int:
        return sum(acks[-1][1] for acks in self.by_run.values() if acks)


def training_client(
    base: str,
    run_id: str,
    per_metric: bool,
    steps: int,
    rate: float,
    t0: float,
    acks: Acks,
    workspace: str | None = None,
) -> None:
    """A training loop: `steps` steps at `rate` per second, 10 metrics each, as one log-batch
    (`log_metrics`) or as one log-metric per metric (`log_metric`), in `workspace`."""
    mine = acks.by_run.setdefault(run_id, [])
    done = 0
    with httpx.Client(base_url=base, timeout=60.0, headers=in_workspace(workspace)) as client:
        for step in range(steps):
            wait = t0 + step / rate - time.time()
            if wait > 0:
                time.sleep(wait)
            stamp = int(time.time() * 1000)
            metrics = [
                {"key": f"m{k}", "value": math.sin(step + k), "timestamp": stamp, "step": step}
                for k in range(METRICS_PER_STEP)
            ]
            try:
                if per_metric:
                    for metric in metrics:
                        post(client, "runs/log-metric", {"run_id": run_id, **metric})
                        done += 1
                        mine.append((time.time(), done))
                else:
                    post(client, "runs/log-batch", {"run_id": run_id, "metrics": metrics})
                    done += METRICS_PER_STEP
                    mine.append((time.time(), done))
            except httpx.HTTPError:
                acks.errors += 1


def bulk_writer(base: str, runs: list[str], points_per_run: int, threads: int = 4) -> float:
    """`points_per_run` points into each run in 1000-point log-batch requests; seconds taken."""
    started = time.monotonic()
    queue = [(run, first) for first in range(0, points_per_run, 1000) for run in runs]
    lock = threading.Lock()

    def work() -> None:
        with httpx.Client(base_url=base, timeout=120.0) as client:
            while True:
                with lock:
                    if not queue:
                        return
                    run, first = queue.pop()
                metrics = [
                    {
                        "key": f"m{i % 10}",
                        "value": i / 7,
                        "timestamp": 1_700_000_000_000 + i,
                        "step": i,
                    }
                    for i in range(first, min(points_per_run, first + 1000))
                ]
                post(client, "runs/log-batch", {"run_id": run, "metrics": metrics})

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return time.monotonic() - started


# What the workspace received --------------------------------------------------------------------


class Deliveries:
    """Polls the stand-in's request log: per Azure run, (time answered, points applied so far),
    from the applied metric requests."""

    def __init__(self, ws: AzuremlWorkspace, since: int) -> None:
        self.ws = ws
        self.seq = since
        self.by_run: dict[str, list[tuple[float, int]]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> Deliveries:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)
        self.poll()

    def _loop(self) -> None:
        while not self._stop.wait(0.2):
            try:
                self.poll()
            except Exception as exc:  # a slow answer of the control API: poll again
                print(f"deliveries: {exc!r}", file=sys.stderr)

    def poll(self) -> None:
        for entry in self.ws.requests(self.seq, brief=True):
            if entry.get("status") is None and not entry.get("dropped"):
                return  # still in flight: read again (with what follows) next time
            self.seq = entry["seq"]
            counts = entry.get("counts") or {}
            status = entry.get("status")
            if counts.get("metrics") and status is not None and 200 <= status < 300:
                mine = self.by_run.setdefault(counts["run_id"], [])
                mine.append((entry["done"], (mine[-1][1] if mine else 0) + counts["metrics"]))

    def total(self) -> int:
        return sum(d[-1][1] for d in self.by_run.values() if d)


def lag_series(
    acks: Acks, delivered: Deliveries, azure: dict[str, str], start: float, end: float, step=0.1
) -> list[float]:
    """The lag of each moment from `start` to `end`: how long until the workspace held every
    point acknowledged at that moment (inf: never)."""
    series = []
    t = start
    while t <= end:
        worst = 0.0
        for run, run_acks in acks.by_run.items():
            i = bisect.bisect_right(run_acks, (t, math.inf))
            if i == 0:
                continue
            acked = run_acks[i - 1][1]
            got = delivered.by_run.get(azure[run], [])
            j = bisect.bisect_left([n for _, n in got], acked)
            worst = max(worst, (got[j][0] - t) if j < len(got) else math.inf)
        series.append(max(0.0, worst))
        t += step
    return series


def percentile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def until(what: str, check: Callable[[], bool], timeout: float, poll: float = 0.2) -> float:
    """Wait for `check`; returns when it first held (time.time())."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for: {what}")
        time.sleep(poll)
    return time.time()


class RssSampler:
    """Samples a server's RSS (process tree, MB) every `every` seconds."""

    def __init__(self, server: Server, every: float = 0.5) -> None:
        self.server = server
        self.every = every
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> RssSampler:
        self.samples.append(self.server.rss_kb() / 1024)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self.samples.append(self.server.rss_kb() / 1024)


class _Sampler:
    """Reads `tether sync status` once a second on a thread, keeping what `sample` takes."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.samples: list[Any] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _loop(self) -> None:
        while not self._stop.wait(1.0):
            try:
                status = sync_status(self.base)
            except httpx.HTTPError:
                continue
            self.samples.append(self.sample(status))

    def sample(self, status: dict[str, Any]) -> Any:
        raise NotImplementedError


class StatusSampler(_Sampler):
    """What `tether sync status` showed: (time, lag shown, points/s shown)."""

    def sample(self, status: dict[str, Any]) -> tuple[float, float | None, float]:
        lag = status["lag"]
        return (time.time(), lag["oldest_undelivered_write_age_seconds"], lag["points_per_second"])


class WorkspaceSampler(_Sampler):
    """One workspace's row of `tether sync status`: (time, entities not yet delivered
    (pending + in flight + failed), dead, oldest pending age in seconds)."""

    def __init__(self, base: str, workspace: str) -> None:
        super().__init__(base)
        self.workspace = workspace

    def sample(self, status: dict[str, Any]) -> tuple[float, int, int, float | None]:
        row = status["workspaces"][self.workspace]
        n = row["entities"]
        waiting = n["pending"] + n["in_flight"] + n["failed"]
        return (time.time(), waiting, n["dead"], row["oldest_pending_age_seconds"])


def median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan
