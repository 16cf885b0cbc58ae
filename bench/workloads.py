"""The workloads, driven over the MLflow REST API with httpx. Each is bounded in time."""

from __future__ import annotations

import functools
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

API = "/api/2.0/mlflow"
API3 = "/api/3.0/mlflow"
AJAX = "/ajax-api/2.0/mlflow"
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"


@dataclass
class Params:
    seconds: float = 5.0
    search_runs: int = 5000
    history_points: int = 10_000
    artifact_mb: int = 100
    search_traces: int = 2000


@dataclass
class Sample:
    """One workload on one server in one round."""

    units: float = 0.0  # points, requests, runs or MB done
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)  # seconds per request
    errors: int = 0

    @property
    def throughput(self) -> float:
        return self.units / self.elapsed if self.elapsed > 0 else 0.0


@dataclass
class Workload:
    name: str
    unit: str
    run: Callable[[str, Params, dict[str, Any]], Sample]  # (base url, params, per-server state)


def _client(base: str, auth: tuple[str, str] | None = None) -> httpx.Client:
    return httpx.Client(base_url=base, timeout=300.0, auth=auth)


def _post(client: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    resp = client.post(path, json=body)
    resp.raise_for_status()
    result: dict[str, Any] = resp.json()
    return result


def _new_run(client: httpx.Client, state: dict[str, Any]) -> str:
    if "experiment_id" not in state:
        name = f"bench-{uuid.uuid4().hex[:8]}"
        state["experiment_id"] = _post(client, f"{API}/experiments/create", {"name": name})[
            "experiment_id"
        ]
    run = _post(client, f"{API}/runs/create", {"experiment_id": state["experiment_id"]})
    return str(run["run"]["info"]["run_id"])


def _timed_loop(seconds: float, step: Callable[[], float]) -> Sample:
    """Call `step` (returns the units it did) until `seconds` pass; time each call."""
    sample = Sample()
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        try:
            sample.units += step()
        except httpx.HTTPError:
            sample.errors += 1
        sample.latencies.append(time.perf_counter() - t0)
    sample.elapsed = time.perf_counter() - start
    return sample


def _metrics(key: str, first_step: int, count: int) -> list[dict[str, Any]]:
    now = int(time.time() * 1000)
    return [
        {"key": key, "value": (i % 97) / 97.0, "timestamp": now, "step": first_step + i}
        for i in range(count)
    ]


# ------------------------------------------------------------------------------ writes


def log_batch(base: str, params: Params, state: dict[str, Any]) -> Sample:
    with _client(base) as client:
        run_id = _new_run(client, state)
        counter = iter(range(10**9))

        def step() -> float:
            body = {"run_id": run_id, "metrics": _metrics("loss", next(counter) * 1000, 1000)}
            _post(client, f"{API}/runs/log-batch", body)
            return 1000

        return _timed_loop(params.seconds, step)


def _log_metric_loop(
    base: str, run_id: str, seconds: float, auth: tuple[str, str] | None = None
) -> Sample:
    with _client(base, auth) as client:
        counter = iter(range(10**9))

        def step() -> float:
            body = {
                "run_id": run_id,
                "key": "acc",
                "value": 0.5,
                "timestamp": int(time.time() * 1000),
                "step": next(counter),
            }
            _post(client, f"{API}/runs/log-metric", body)
            return 1

        return _timed_loop(seconds, step)


def _log_metric(clients: int) -> Callable[[str, Params, dict[str, Any]], Sample]:
    def run(base: str, params: Params, state: dict[str, Any]) -> Sample:
        with _client(base) as client:
            run_ids = [_new_run(client, state) for _ in range(clients)]
        if clients == 1:
            return _log_metric_loop(base, run_ids[0], params.seconds)
        return _concurrently(
            [functools.partial(_log_metric_loop, base, r, params.seconds) for r in run_ids]
        )

    return run


def _concurrently(loops: list[Callable[[], Sample]]) -> Sample:
    """Each loop on its own thread, started together; their samples summed (units, latencies,
    errors) over the longest elapsed time."""
    barrier = threading.Barrier(len(loops))

    def worker(loop: Callable[[], Sample]) -> Sample:
        barrier.wait()
        return loop()

    with ThreadPoolExecutor(len(loops)) as pool:
        parts = list(pool.map(worker, loops))
    return Sample(
        units=sum(p.units for p in parts),
        elapsed=max(p.elapsed for p in parts),
        latencies=[x for p in parts for x in p.latencies],
        errors=sum(p.errors for p in parts),
    )


def runs_create(base: str, params: Params, state: dict[str, Any]) -> Sample:
    with _client(base) as client:
        _new_run(client, state)  # creates the experiment outside the timed loop

        def step() -> float:
            _post(client, f"{API}/runs/create", {"experiment_id": state["experiment_id"]})
            return 1

        return _timed_loop(params.seconds, step)


# ------------------------------------------------------------------------------- reads


def _history_run(client: httpx.Client, params: Params, state: dict[str, Any]) -> str:
    """A run with `history_points` points of `loss` (set up once per server)."""
    if "history_run" not in state:
        run_id = _new_run(client, state)
        for first in range(0, params.history_points, 1000):
            count = min(1000, params.history_points - first)
            body = {"run_id": run_id, "metrics": _metrics("loss", first, count)}
            _post(client, f"{API}/runs/log-batch", body)
        state["history_run"] = run_id
    return str(state["history_run"])


def get_history(base: str, params: Params, state: dict[str, Any]) -> Sample:
    with _client(base) as client:
        run_id = _history_run(client, params, state)

        def step() -> float:
            points, token = 0, None
            while True:
                query: dict[str, Any] = {"run_id": run_id, "metric_key": "loss"}
                if token:
                    query["page_token"] = token
                resp = client.get(f"{API}/metrics/get-history", params=query)
                resp.raise_for_status()
                body = resp.json()
                points += len(body.get("metrics", []))
                token = body.get("next_page_token")
                if not token:
                    return points

        return _timed_loop(params.seconds, step)


def get_history_bulk_interval(base: str, params: Params, state: dict[str, Any]) -> Sample:
    with _client(base) as client:
        run_id = _history_run(client, params, state)
        query: dict[str, str | int] = {"run_ids": run_id, "metric_key": "loss", "max_results": 320}

        def step() -> float:
            resp = client.get(f"{AJAX}/metrics/get-history-bulk-interval", params=query)
            resp.raise_for_status()
            return 1

        return _timed_loop(params.seconds, step)


def _search_setup(base: str, params: Params, state: dict[str, Any]) -> str:
    """An experiment with `search_runs` runs, each with a metric and a param (8 threads)."""
    if "search_experiment" in state:
        return str(state["search_experiment"])
    with _client(base) as client:
        name = f"bench-search-{uuid.uuid4().hex[:8]}"
        exp = _post(client, f"{API}/experiments/create", {"name": name})["experiment_id"]

    def make(indices: range) -> None:
        with _client(base) as client:
            for i in indices:
                run = _post(client, f"{API}/runs/create", {"experiment_id": exp})
                body = {
                    "run_id": run["run"]["info"]["run_id"],
                    "metrics": [_metric_value("loss", i)],
                    "params": [{"key": "lr", "value": str(i % 10)}],
                }
                _post(client, f"{API}/runs/log-batch", body)

    chunks = [range(k, params.search_runs, 8) for k in range(8)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(make, chunks))
    state["search_experiment"] = exp
    return str(exp)


def _metric_value(key: str, i: int) -> dict[str, Any]:
    # A real timestamp: FastTrackML refuses timestamp 0 (400 on the whole batch).
    value = (i * 7919 % 1000) / 1000.0
    return {"key": key, "value": value, "timestamp": int(time.time() * 1000), "step": 0}


def _search_pages(client: httpx.Client, body: dict[str, Any]) -> Iterator[int]:
    token = None
    while True:
        page = _post(client, f"{API}/runs/search", body | ({"page_token": token} if token else {}))
        yield len(page.get("runs", []))
        token = page.get("next_page_token")
        if not token:
            return


def _search(
    filter_string: str, order_by: list[str]
) -> Callable[[str, Params, dict[str, Any]], Sample]:
    def run(base: str, params: Params, state: dict[str, Any]) -> Sample:
        exp = _search_setup(base, params, state)
        body: dict[str, Any] = {"experiment_ids": [exp], "max_results": 1000}
        if filter_string:
            body["filter"] = filter_string
        if order_by:
            body["order_by"] = order_by
        with _client(base) as client:
            return _timed_loop(params.seconds, lambda: float(sum(_search_pages(client, body))))

    return run


# ---------------------------------------------------------------------------- artifacts


def _artifact_file(params: Params, state: dict[str, Any]) -> Path:
    key = f"artifact_file_{params.artifact_mb}"
    if key not in state:
        path = Path(tempfile.mkdtemp(prefix="bench-artifact-")) / "blob.bin"
        chunk = bytes(range(256)) * 4096  # 1 MiB
        with path.open("wb") as out:
            for _ in range(params.artifact_mb):
                out.write(chunk)
        state[key] = path
    return Path(state[key])


def cleanup_state(state: dict[str, Any]) -> None:
    """Remove the temp files a workload made on the client side (the artifact blob)."""
    for value in state.values():
        if isinstance(value, Path):
            shutil.rmtree(value.parent, ignore_errors=True)


def _upload(client: httpx.Client, path: Path, dest: str) -> None:
    def chunks() -> Iterator[bytes]:
        with path.open("rb") as src:
            while block := src.read(1 << 20):
                yield block

    headers = {"Content-Length": str(path.stat().st_size)}
    resp = client.put(f"{ARTIFACTS}/{dest}", content=chunks(), headers=headers)
    resp.raise_for_status()


def artifact_upload(base: str, params: Params, state: dict[str, Any]) -> Sample:
    path = _artifact_file(params, state)
    with _client(base) as client:

        def step() -> float:
            _upload(client, path, f"bench/{uuid.uuid4().hex}/blob.bin")
            return float(params.artifact_mb)

        return _timed_loop(params.seconds, step)


def artifact_download(base: str, params: Params, state: dict[str, Any]) -> Sample:
    path = _artifact_file(params, state)
    with _client(base) as client:
        if "artifact_dest" not in state:
            state["artifact_dest"] = f"bench/{uuid.uuid4().hex}/blob.bin"
            _upload(client, path, state["artifact_dest"])

        def step() -> float:
            size = 0
            with client.stream("GET", f"{ARTIFACTS}/{state['artifact_dest']}") as resp:
                resp.raise_for_status()
                for block in resp.iter_bytes(1 << 20):
                    size += len(block)
            return size / (1 << 20)

        return _timed_loop(params.seconds, step)


# ------------------------------------------------------------------------------- traces


def _experiment(client: httpx.Client, state: dict[str, Any], key: str) -> str:
    if key not in state:
        name = f"bench-{key}-{uuid.uuid4().hex[:8]}"
        state[key] = _post(client, f"{API}/experiments/create", {"name": name})["experiment_id"]
    return str(state[key])


def _trace_spans(trace_hex: str, start_ns: int) -> bytes:
    """What MLflow 3's client exports per trace of a small agent: a root, a retriever and an
    LLM call, with JSON inputs and outputs (OTLP protobuf)."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    shapes = [("agent", None, "AGENT"), ("retrieve", 1, "RETRIEVER"), ("chat", 1, "CHAT_MODEL")]
    for index, (name, parent, kind) in enumerate(shapes, start=1):
        span = scope.spans.add()
        span.trace_id = bytes.fromhex(trace_hex)
        span.span_id = index.to_bytes(8, "big")
        if parent:
            span.parent_span_id = parent.to_bytes(8, "big")
        span.name = name
        span.start_time_unix_nano = start_ns + index * 1000
        span.end_time_unix_nano = start_ns + 5_000_000 - index * 1000
        span.status.code = 1  # type: ignore[assignment]
        for key, value in (
            ("mlflow.spanType", f'"{kind}"'),
            ("mlflow.spanInputs", '{"question": "What is the capital of France?"}'),
            ("mlflow.spanOutputs", '"Paris is the capital of France."'),
        ):
            attribute = span.attributes.add()
            attribute.key = key
            attribute.value.string_value = value
    return request.SerializeToString()


def _start_trace(client: httpx.Client, experiment_id: str, trace_hex: str, ms: int) -> None:
    """StartTraceV3 as the 3.x client sends it when a trace ends."""
    info = {
        "trace_id": f"tr-{trace_hex}",
        "trace_location": {
            "type": "MLFLOW_EXPERIMENT",
            "mlflow_experiment": {"experiment_id": experiment_id},
        },
        "request_time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000))
        + f".{ms % 1000:03d}Z",
        "execution_duration": "0.005s",
        "state": "OK",
        "request_preview": '{"question": "What is the capital of France?"}',
        "response_preview": '"Paris is the capital of France."',
        "trace_metadata": {"mlflow.trace_schema.version": "3"},
        "tags": {"mlflow.traceName": "agent"},
    }
    _post(client, f"{API3}/traces", {"trace": {"trace_info": info}})


def _log_trace(client: httpx.Client, experiment_id: str) -> None:
    """One finished trace as MLflow 3.17's client logs it to a server >= 3.4: its spans over
    OTLP (`/v1/traces`), then its info (StartTraceV3)."""
    trace_hex = uuid.uuid4().hex
    ms = int(time.time() * 1000)
    resp = client.post(
        "/v1/traces",
        content=_trace_spans(trace_hex, ms * 1_000_000),
        headers={
            "content-type": "application/x-protobuf",
            "x-mlflow-experiment-id": experiment_id,
        },
    )
    resp.raise_for_status()
    _start_trace(client, experiment_id, trace_hex, ms)


def _traces_log_loop(base: str, experiment_id: str, seconds: float) -> Sample:
    with _client(base) as client:

        def step() -> float:
            _log_trace(client, experiment_id)
            return 1

        return _timed_loop(seconds, step)


def _traces_log(clients: int) -> Callable[[str, Params, dict[str, Any]], Sample]:
    """`clients` clients (threads, each its own connection) logging traces into one
    experiment, each trace as `_log_trace` sends it."""

    def run(base: str, params: Params, state: dict[str, Any]) -> Sample:
        with _client(base) as client:
            experiment_id = _experiment(client, state, "traces")
        loop = functools.partial(_traces_log_loop, base, experiment_id, params.seconds)
        return loop() if clients == 1 else _concurrently([loop] * clients)

    return run


def _search_traces_setup(base: str, params: Params, state: dict[str, Any]) -> str:
    """An experiment with `search_traces` traces (8 threads, not timed)."""
    if "search_traces_experiment" in state:
        return str(state["search_traces_experiment"])
    with _client(base) as client:
        experiment_id = _experiment(client, state, "search_traces_experiment")

    def make(indices: range) -> None:
        with _client(base) as client:
            for _ in indices:
                _log_trace(client, experiment_id)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(make, [range(k, params.search_traces, 8) for k in range(8)]))
    return experiment_id


def _search_traces_loop(base: str, experiment_id: str, seconds: float) -> Sample:
    body = {
        "locations": [
            {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": experiment_id}}
        ],
        "filter": "trace.status = 'OK'",
        "order_by": ["timestamp_ms DESC"],
        "max_results": 100,
    }
    with _client(base) as client:

        def step() -> float:
            page = _post(client, f"{API3}/traces/search", body)
            return float(len(page.get("traces", [])))

        return _timed_loop(seconds, step)


def _search_traces(clients: int) -> Callable[[str, Params, dict[str, Any]], Sample]:
    """The Traces tab's query, the newest 100 OK traces of the experiment, from `clients`
    clients (threads, each its own connection)."""

    def run(base: str, params: Params, state: dict[str, Any]) -> Sample:
        experiment_id = _search_traces_setup(base, params, state)
        loop = functools.partial(_search_traces_loop, base, experiment_id, params.seconds)
        return loop() if clients == 1 else _concurrently([loop] * clients)

    return run


WORKLOADS: list[Workload] = [
    Workload("log-batch", "points/s", log_batch),
    Workload("log-metric-1", "req/s", _log_metric(1)),
    Workload("log-metric-16", "req/s", _log_metric(16)),
    Workload("runs-create", "runs/s", runs_create),
    Workload("get-history", "points/s", get_history),
    Workload("get-history-bulk-interval", "req/s", get_history_bulk_interval),
    Workload("search-filter-order", "runs/s", _search("metrics.loss < 0.5", ["metrics.loss ASC"])),
    Workload("search-all", "runs/s", _search("", [])),
    Workload("artifact-upload", "MB/s", artifact_upload),
    Workload("artifact-download", "MB/s", artifact_download),
    Workload("traces-log", "traces/s", _traces_log(1)),
    Workload("search-traces", "traces/s", _search_traces(1)),
    # Throughput with concurrent clients, beside the single-client workloads above.
    Workload("traces-log-8", "traces/s", _traces_log(8)),
    Workload("search-traces-8", "traces/s", _search_traces(8)),
]
