"""`tether serve --expose-prometheus DIR`: /metrics as a scraper sees it, with two workers.

The counters are written by each worker into DIR and summed at scrape time; the test checks
the sum against the requests it sent and, reading each worker's file on its own, that both
workers really answered some of them.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from observability.prom_scrape import Samples, scrape_when
from support import TetherServer, unique_name
from tether.observability import prometheus_dir

if TYPE_CHECKING:
    from support import TetherServerStarter

sqlite_only = pytest.mark.parametrize("backend_kind", ["sqlite"], indirect=True)
RUNS_GET = "/api/2.0/mlflow/runs/get"
ARTIFACT_ROUTE = "/api/2.0/mlflow-artifacts/artifacts/{artifact_path}"
POOL_SIZE = 4


def _client() -> httpx.Client:
    return httpx.Client(trust_env=False, timeout=60)


def _new_run(server: TetherServer) -> tuple[str, str]:
    with server.rest() as rest:
        exp = rest.post("experiments/create", {"name": unique_name()}).json["experiment_id"]
        run = rest.post("runs/create", {"experiment_id": exp}).json["run"]["info"]["run_id"]
    return exp, run


def _get_run_fresh_connection(url: str, run_id: str) -> None:
    # A new connection each time: the kernel hands it to whichever worker accepts first.
    with _client() as client:
        response = client.get(f"{url}{RUNS_GET}", params={"run_id": run_id})
    assert response.status_code == 200, response.text


def _requests_per_worker(directory: Path, tmp: Path) -> list[float]:
    """runs/get answers counted in each worker's own sample file."""
    counts = []
    for index, sample_file in enumerate(sorted(directory.glob("counter_*.db"))):
        alone = tmp / f"worker-{index}"
        alone.mkdir(parents=True)
        shutil.copy(sample_file, alone / sample_file.name)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(alone))
        counts.append(
            registry.get_sample_value(
                "tether_http_requests_total",
                {"method": "GET", "route": RUNS_GET, "status": "200"},
            )
            or 0.0
        )
    return counts


@pytest.fixture
def metrics_dir(tmp_path: Path) -> Path:
    """DIR with what a previous run left: its sample files must go, other files stay."""
    directory = tmp_path / "prom"
    directory.mkdir()
    (directory / "counter_999999.db").write_bytes(b"stale samples of a dead run")
    (directory / "notes.txt").write_text("not ours")
    return directory


@pytest.fixture
def two_workers(
    start_tether_server: TetherServerStarter, metrics_dir: Path
) -> Iterator[TetherServer]:
    yield start_tether_server(
        extra_args=["--workers", "2", "--expose-prometheus", str(metrics_dir)],
        env={"TETHER_METRICS_CACHE_SECONDS": "0", "TETHER_DB_POOL_SIZE": str(POOL_SIZE)},
    )


@sqlite_only
def test_metrics_are_off_without_the_flag(start_tether_server: TetherServerStarter) -> None:
    server = start_tether_server()
    with _client() as client:
        response = client.get(f"{server.url}/metrics", headers={"X-Request-Id": "probe-7"})
    assert response.status_code == 404
    assert response.json()["error_code"] == "ENDPOINT_NOT_FOUND"
    assert response.headers["x-request-id"] == "probe-7"
    # The default text log: "<time> INFO tether.access [<request id>] GET /metrics 404 <ms>"
    access = re.compile(
        r"^\S+ \S+ INFO tether\.access \[probe-7\] GET /metrics 404 [\d.]+ms$", re.M
    )
    deadline = time.monotonic() + 30
    while not access.search(server.log_text()):
        assert time.monotonic() < deadline, server.log_text()
        time.sleep(0.05)


@sqlite_only
def test_requests_are_counted_per_route_template_across_two_workers(
    two_workers: TetherServer, metrics_dir: Path, tmp_path: Path
) -> None:
    server = two_workers
    assert not (metrics_dir / "counter_999999.db").exists()
    assert (metrics_dir / "notes.txt").read_text() == "not ours"
    _, run_id = _new_run(server)

    sent = 0
    with ThreadPoolExecutor(8) as pool:
        while sent < 400:
            list(pool.map(lambda _: _get_run_fresh_connection(server.url, run_id), range(40)))
            sent += 40
            per_worker = _requests_per_worker(metrics_dir, tmp_path / f"after-{sent}")
            if len(per_worker) == 2 and all(per_worker):
                break
    assert len(per_worker) == 2 and all(per_worker), f"one worker took all: {per_worker}"
    with _client() as client:
        assert client.get(f"{server.url}/api/2.0/mlflow/no-such-endpoint").status_code == 404
        bad = client.get(f"{server.url}{RUNS_GET}", params={"run_id": "f" * 32})
        assert bad.status_code == 404

    labels = {"method": "GET", "route": RUNS_GET, "status": "200"}
    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
    samples = scrape_when(
        server.url,
        lambda s: (
            s.get("tether_http_requests_total", **labels) >= sent
            and s.get("tether_http_requests_total", **{**labels, "status": "404"}) >= 1
            and s.get("tether_http_requests_total", **unmatched) >= 1
        ),
    )
    per_worker = _requests_per_worker(metrics_dir, tmp_path / "final")
    assert samples.get("tether_http_requests_total", **labels) == sent == sum(per_worker)
    assert samples.get("tether_http_request_duration_seconds_count", **labels) == sent
    assert samples.get("tether_http_request_duration_seconds_bucket", **labels, le="+Inf") == sent
    assert samples.get("tether_http_request_duration_seconds_sum", **labels) > 0
    assert samples.get("tether_http_requests_total", **{**labels, "status": "404"}) == 1
    assert samples.get("tether_http_requests_total", **unmatched) == 1
    routes = {
        dict(ls).get("route") for n, ls in samples.values if n == "tether_http_requests_total"
    }
    assert not any(run_id in str(route) for route in routes), routes  # templates, not paths
    assert "/metrics" not in routes and "/health" not in routes  # as mlflow leaves them out
    # Both workers' pools are counted, none left in use.
    assert samples.get("tether_db_pool_size") == 2 * POOL_SIZE
    assert samples.get("tether_db_pool_checked_out") == 0
    assert samples.get("tether_db_pool_overflow") == 0


@sqlite_only
def test_streamed_artifacts_pass_through_and_store_gauges_read_the_database(
    two_workers: TetherServer,
) -> None:
    server = two_workers
    exp, run_id = _new_run(server)
    data = hashlib.sha256(b"seed").digest() * (3 * 1024 * 1024 // 32 + 7)  # > 3 chunks
    url = f"{server.url}/api/2.0/mlflow-artifacts/artifacts/{exp}/{run_id}/artifacts/big.bin"

    def body() -> Iterator[bytes]:
        for start in range(0, len(data), 256 * 1024):
            yield data[start : start + 256 * 1024]

    with _client() as client:
        assert client.put(url, content=body()).status_code == 200
        digest = hashlib.sha256()
        with client.stream("GET", url) as response:
            assert response.status_code == 200
            assert response.headers["x-request-id"]
            for chunk in response.iter_bytes():
                digest.update(chunk)
    assert digest.digest() == hashlib.sha256(data).digest()

    def both_counted(s: Samples) -> bool:
        return all(
            s.get("tether_http_requests_total", method=m, route=ARTIFACT_ROUTE, status="200")
            for m in ("PUT", "GET")
        )

    samples = scrape_when(server.url, both_counted)
    for method in ("PUT", "GET"):
        labels = {"method": method, "route": ARTIFACT_ROUTE, "status": "200"}
        assert samples.get("tether_http_requests_total", **labels) == 1, method
        assert samples.get("tether_http_request_duration_seconds_count", **labels) == 1
    # Sync is off: everything written waits in the outbox, read fresh from the database.
    assert samples.get("tether_sync_enabled") == 0
    assert samples.get("tether_database_up") == 1
    assert samples.get("tether_outbox_unscanned_rows") >= 3  # experiment, run, artifact
    assert samples.get("tether_outbox_last_id") >= samples.get("tether_outbox_unscanned_rows")
    assert samples.get("tether_outbox_oldest_unscanned_age_seconds") > 0
    for counter in ("azureml_throttled", "azureml_requests", "azureml_retries"):
        assert f"tether_{counter}_total" in samples.names()


def test_prepare_creates_the_directory_and_removes_only_sample_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(prometheus_dir.MULTIPROC_ENV, raising=False)  # restored afterwards
    fresh = prometheus_dir.prepare(tmp_path / "a" / "b")
    assert fresh.is_dir() and not any(fresh.iterdir())
    for name in ("counter_1.db", "histogram_22.db", "gauge_livesum_3.db", "keep.db", "x.txt"):
        (fresh / name).write_bytes(b"")
    prometheus_dir.prepare(fresh)
    assert sorted(p.name for p in fresh.iterdir()) == ["keep.db", "x.txt"]
