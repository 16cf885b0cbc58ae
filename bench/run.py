"""Benchmark Tether against the reference `mlflow server` (and FastTrackML when given).

Run from the repo root: `.venv/bin/python -m bench.run --quick` (see bench/README.md).
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType
from typing import Any

if __package__ in (None, ""):  # `python bench/run.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import Row, markdown, raw_json, summarize
from bench.servers import (
    Server,
    fasttrackml_server,
    mlflow_server,
    tether_server,
)
from bench.workloads import WORKLOADS, Params, Sample, Workload, cleanup_state

REPO = Path(__file__).resolve().parent.parent
FML_VENV_BIN = REPO / ".cache" / "fasttrackml-venv" / "bin" / "fml"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    p.add_argument("--seconds", type=float, default=5.0, help="duration per workload per round")
    p.add_argument("--search-runs", type=int, default=5000, help="runs created for the searches")
    p.add_argument(
        "--search-traces", type=int, default=2000, help="traces logged for the trace search"
    )
    p.add_argument("--history-points", type=int, default=10_000)
    p.add_argument("--artifact-mb", type=int, default=100)
    p.add_argument("--only", default="", help="comma-separated workloads: " + _names())
    p.add_argument("--quick", action="store_true", help="small sizes, 1 round, 2 s per workload")
    p.add_argument("--json", type=Path, help="save raw numbers here")
    p.add_argument(
        "--mlflow-python",
        type=Path,
        default=Path(sys.executable),
        help="python of the venv with the reference mlflow (default: this one)",
    )
    p.add_argument(
        "--fasttrackml",
        type=Path,
        help="path to the `fml` executable (default: on PATH, else .cache/fasttrackml-venv)",
    )
    p.add_argument("--postgres-uri-tether", help="PostgreSQL URI for Tether (else SQLite)")
    p.add_argument("--postgres-uri-mlflow", help="PostgreSQL URI for mlflow (needs psycopg2)")
    p.add_argument("--workers", type=int, default=1, help="server worker processes (default 1)")
    p.add_argument(
        "--tether-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for Tether (repeatable), e.g. TETHER_SQLITE_SYNCHRONOUS=NORMAL",
    )
    args = p.parse_args(argv)
    if args.quick:
        args.rounds, args.seconds = 1, min(args.seconds, 2.0)
        args.search_runs, args.history_points = 200, 2000
        args.search_traces = 200
        args.artifact_mb = 10
    return args


def _names() -> str:
    return ",".join(w.name for w in WORKLOADS)


def select_workloads(only: str) -> list[Workload]:
    if not only:
        return WORKLOADS
    wanted = [x.strip() for x in only.split(",") if x.strip()]
    unknown = set(wanted) - {w.name for w in WORKLOADS}
    if unknown:
        sys.exit(f"unknown workload(s): {', '.join(sorted(unknown))}; known: {_names()}")
    return [w for w in WORKLOADS if w.name in wanted]


def build_servers(args: argparse.Namespace) -> tuple[list[Server], list[str]]:
    notes: list[str] = []
    servers = [
        tether_server(REPO, args.postgres_uri_tether, args.workers, _env_pairs(args.tether_env)),
        mlflow_server(args.mlflow_python, args.postgres_uri_mlflow, args.workers),
    ]
    fml = find_fml(args.fasttrackml)
    if fml is not None:
        servers.append(fasttrackml_server(fml))
    else:
        notes.append("FastTrackML skipped: no `fml` executable (pass --fasttrackml PATH).")
    return servers, notes


def _env_pairs(items: list[str]) -> dict[str, str]:
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            sys.exit(f"--tether-env expects KEY=VALUE, got {item!r}")
        pairs[key] = value
    return pairs


def find_fml(given: Path | None) -> Path | None:
    """`--fasttrackml`, else `fml` on PATH, else the venv bench/README.md installs it into.

    Resolved to an absolute path: the servers run with their temp dir as working directory.
    """
    candidates = [given] if given is not None else [shutil.which("fml"), FML_VENV_BIN]
    for candidate in candidates:
        if candidate is not None and Path(candidate).is_file():
            return Path(candidate).resolve()
    return None


def sqlite_ceiling(rows: int = 1000, batches: int = 50) -> float:
    """Raw SQLite insert rate on this machine (rows/s): executemany of `rows`-row batches,
    one transaction each, into a table shaped like Tether's `metrics` (integer primary key
    and the unique point index), WAL with synchronous=FULL, as Tether runs it. The yardstick
    of the log-batch target ("25% of the raw SQLite insert ceiling")."""
    tmpdir = Path(tempfile.mkdtemp(prefix="bench-sqlite-"))
    try:
        conn = sqlite3.connect(tmpdir / "ceiling.db", isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute(
            "CREATE TABLE metrics (id INTEGER PRIMARY KEY, run_uuid VARCHAR(32), key VARCHAR(250),"
            " value FLOAT, timestamp BIGINT, step BIGINT, is_nan BOOLEAN,"
            " UNIQUE (run_uuid, key, step, timestamp, value, is_nan))"
        )
        sql = (
            "INSERT INTO metrics (run_uuid, key, value, timestamp, step, is_nan)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
        )
        run, now = "0" * 32, int(time.time() * 1000)
        start = time.perf_counter()
        for b in range(batches):
            batch = [(run, "loss", (i % 97) / 97.0, now, b * rows + i, 0) for i in range(rows)]
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(sql, batch)
            conn.execute("COMMIT")
        elapsed = time.perf_counter() - start
        conn.close()
        return rows * batches / elapsed
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run_rounds(
    servers: list[Server], workloads: list[Workload], params: Params, rounds: int
) -> tuple[dict[tuple[str, str], list[Sample]], dict[tuple[str, str], tuple[int, int]]]:
    """Interleave: each round runs each workload on every server, rotating the order."""
    samples: dict[tuple[str, str], list[Sample]] = {}
    memory: dict[tuple[str, str], tuple[int, int]] = {}
    state: dict[str, dict[str, Any]] = {s.name: {} for s in servers}
    try:
        _rounds(servers, workloads, params, rounds, state, samples, memory)
    finally:
        for per_server in state.values():
            cleanup_state(per_server)
    return samples, memory


def _rounds(
    servers: list[Server],
    workloads: list[Workload],
    params: Params,
    rounds: int,
    state: dict[str, dict[str, Any]],
    samples: dict[tuple[str, str], list[Sample]],
    memory: dict[tuple[str, str], tuple[int, int]],
) -> None:
    for r in range(rounds):
        order = servers[r % len(servers) :] + servers[: r % len(servers)]
        for w in workloads:
            for server in order:
                t0 = time.monotonic()
                try:
                    sample = w.run(server.url, params, state[server.name])
                except Exception as exc:  # a workload a server does not support
                    print(f"  {w.name} on {server.name}: FAILED {exc!r}", file=sys.stderr)
                    continue
                if sample.units == 0 and sample.errors:
                    # Every request failed: the server lacks the endpoint (FastTrackML has no
                    # bulk-interval or artifact proxy). Shown as "-", not as a throughput.
                    print(
                        f"  {w.name} on {server.name}: UNSUPPORTED ({sample.errors} errors)",
                        file=sys.stderr,
                    )
                    continue
                samples.setdefault((w.name, server.name), []).append(sample)
                memory[(w.name, server.name)] = (server.rss_kb(), server.hwm_kb())
                print(
                    f"round {r + 1}/{rounds} {w.name:<26} {server.name:<12}"
                    f" {sample.throughput:>12,.1f} {w.unit:<9} ({time.monotonic() - t0:.1f}s"
                    f" incl. setup, {sample.errors} errors)",
                    file=sys.stderr,
                )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workloads = select_workloads(args.only)
    params = Params(
        args.seconds, args.search_runs, args.history_points, args.artifact_mb, args.search_traces
    )
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if the parent ignored it
    servers, notes = build_servers(args)
    started: list[Server] = []
    try:
        for server in servers:
            print(f"starting {server.name} on {server.url} ...", file=sys.stderr)
            started.append(server)
            server.start()
        samples, memory = run_rounds(servers, workloads, params, args.rounds)
    finally:
        for server in started:
            server.stop()
    ceiling = sqlite_ceiling()
    notes.append(
        f"Raw SQLite insert ceiling on this machine (executemany, 1000-row transactions,"
        f" unique index, WAL + synchronous=FULL, measured after the workloads):"
        f" {ceiling:,.0f} rows/s."
    )
    names = [s.name for s in servers]
    idle = {s.name: s.idle_rss_kb for s in servers}
    unit = {w.name: w.unit for w in workloads}
    rows: list[Row] = [
        summarize(w, unit[w], s, xs, memory.get((w, s), (0, 0))) for (w, s), xs in samples.items()
    ]
    rows.sort(key=lambda r: [w.name for w in workloads].index(r.workload))
    print(_header(args))
    print(markdown(rows, names, idle))
    for note in notes:
        print(f"\nNote: {note}")
    if args.json:
        data = raw_json(samples, rows, idle) | {"args": {k: str(v) for k, v in vars(args).items()}}
        args.json.write_text(json.dumps(data, indent=2))
    return 0


def _header(args: argparse.Namespace) -> str:
    store = "PostgreSQL" if args.postgres_uri_tether else "SQLite"
    env = f" Tether environment: {' '.join(args.tether_env)}." if args.tether_env else ""
    return (
        f"\n{store};{env} {args.rounds} round(s) x {args.seconds:g}s per workload;"
        f" search over {args.search_runs} runs and {args.search_traces} traces;"
        f" history {args.history_points} points;"
        f" artifact {args.artifact_mb} MB. Throughput: median over rounds;"
        f" latency: p50/p99 per request over all rounds.\n"
    )


if __name__ == "__main__":
    sys.exit(main())
