"""Sync benchmark (issue 11): Tether delivering into the stand-in workspace under load.

    .venv/bin/python -m bench.sync                      # the three workloads, full size
    .venv/bin/python -m bench.sync --only steady --seconds 20 --json /tmp/sync.json

Workloads (see bench/README.md, "Sync"):
- `steady`: 4 runs x 10 metrics per step x 5 steps/s for `--seconds` (60), half `log_batch`
  (one log-batch per step), half one `log_metric` per metric, the workspace answering every
  request after `--latency-ms` (100), no faults. Reports the lag of each moment (how long until
  the workspace held every point acknowledged at that moment; p50/p95/max), how long after the
  load everything was in, the metric requests against ceil(points/250) + one partial request
  per run per second, and what `tether sync status` showed meanwhile.
- `throttled`: the same with a 429 (Retry-After: 1) every 7th Azure request and a 503 every
  11th; checks that nothing was lost or sent twice.
- `backlog`: `--backlog-points` (1,000,000) points across 20 runs written with sync off, then
  Tether restarted with sync on: points/s, requests per 1,000 points, Tether's RSS growth
  during the drain, against the stand-in's own ceiling measured in the same run (the same
  stand-in driven directly with 250-point batches at the same concurrency, before and after).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

if __package__ in (None, ""):  # `python bench/sync.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import sync_load as load

CONCURRENCY = 8  # Tether's default lanes, and the ceiling's client threads
CEILING_BATCH = 250


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--only", default="steady,throttled,backlog", help="workloads to run")
    p.add_argument("--seconds", type=float, default=60.0, help="steady/throttled load duration")
    p.add_argument("--latency-ms", type=float, default=100.0, help="stand-in latency per request")
    p.add_argument("--backlog-points", type=int, default=1_000_000)
    p.add_argument("--ceiling-points", type=int, default=250_000, help="per ceiling measurement")
    p.add_argument("--json", type=Path, help="save the raw numbers here")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    chosen = [w.strip() for w in args.only.split(",") if w.strip()]
    # A copy: vars() is the namespace itself, and the JSON wants the path as text.
    results: dict[str, Any] = {"load_average_start": os.getloadavg(), "args": dict(vars(args))}
    results["args"]["json"] = str(args.json) if args.json else None
    with load.standin(args.latency_ms) as (identity, ws):
        for name in chosen:
            log(f"== {name}")
            store = Path(tempfile.mkdtemp(prefix=f"bench-sync-{name}-"))
            try:
                if name in ("steady", "throttled"):
                    results[name] = team_load(ws, identity, store, args, name == "throttled")
                elif name == "backlog":
                    results[name] = backlog(ws, identity, store, args)
                else:
                    raise SystemExit(f"unknown workload {name!r}")
            finally:
                ws.clear_faults()
                shutil.rmtree(store, ignore_errors=True)
            log(json.dumps(results[name], indent=1))
    results["load_average_end"] = os.getloadavg()
    print(markdown(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    return 0


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# Steady team load (and the same throttled) --------------------------------------------------


def team_load(
    ws: Any, identity: Any, store: Path, args: argparse.Namespace, throttled: bool
) -> dict[str, Any]:
    server = load.tether(store, ws, identity)
    try:
        runs = load.new_runs(server.url, 4, "team")
        load.wait_synced(server.url)
        azure = load.azure_ids(server.url, runs)
        if throttled:
            ws.faults(
                {
                    "path": ".*",
                    "every": 7,
                    "action": "status",
                    "status": 429,
                    "retry_after": "1",
                    "times": None,
                },
                {"path": ".*", "every": 11, "action": "status", "status": 503, "times": None},
            )
        mark = ws.mark()
        steps = int(args.seconds * 5)
        acks = load.Acks()
        t0 = time.time() + 0.5
        clients = [
            threading.Thread(
                target=load.training_client,
                args=(server.url, run, i % 2 == 1, steps, 5.0, t0, acks),
            )
            for i, run in enumerate(runs)
        ]
        with load.Deliveries(ws, mark) as delivered, load.StatusSampler(server.url) as shown:
            for c in clients:
                c.start()
            for c in clients:
                c.join()
            load_end = time.time()
            total = acks.total()
            all_in = load.until(
                f"every acknowledged point in the workspace ({total})",
                lambda: delivered.total() >= total,
                timeout=300,
            )
        counts = ws.counts(mark)
        lags = load.lag_series(acks, delivered, azure, t0, load_end)
        elapsed = load_end - t0
        bound = math.ceil(total / 250) + len(runs) * math.ceil(elapsed)
        measured_at = [t for t, _, _ in shown.samples if t0 <= t <= load_end]
        shown_lags = [s for t, s, _ in shown.samples if t0 <= t <= load_end and s is not None]
        true_at_sample = [
            lags[min(len(lags) - 1, int((t - t0) / 0.1))] for t in measured_at if lags
        ]
        duplicates = delivered.total() - total
        histories = _inner_counts(ws, azure) if throttled else {}
        return {
            "points": total,
            "client_errors": acks.errors,
            "load_seconds": round(elapsed, 2),
            "acked_points_per_second": round(total / elapsed, 1),
            "lag_p50": round(load.percentile(lags, 0.5), 2),
            "lag_p95": round(load.percentile(lags, 0.95), 2),
            "lag_max": round(max(lags), 2) if lags else None,
            "all_in_after_load_seconds": round(all_in - load_end, 2),
            "metric_requests": counts["metric_requests"],
            "metric_points_applied": counts["metric_points"],
            "metric_request_bound": bound,
            "azure_requests": counts["requests"],
            "throttled_answers": counts["throttled"],
            "unavailable_answers": counts["unavailable"],
            "duplicates": duplicates,
            "lost": total - min(delivered.total(), total),
            "inner_history_points": sum(histories.values()) if histories else None,
            "status_lag_shown_median": round(load.median(shown_lags), 2),
            "status_lag_shown_max": round(max(shown_lags), 2) if shown_lags else None,
            "lag_at_status_samples_median": round(load.median(true_at_sample), 2),
            "tether_rss_mb": round(server.rss_kb() / 1024, 1),
        }
    finally:
        server.stop()


def _inner_counts(ws: Any, azure: dict[str, str]) -> dict[str, int]:
    """Points per run as the workspace's MLflow store holds them (read directly)."""
    out = {}
    with httpx.Client(base_url=ws.mlflow_url, timeout=120.0) as client:
        for run, azure_run in azure.items():
            n = 0
            for k in range(load.METRICS_PER_STEP):
                body = client.get(
                    f"{load.API}/metrics/get-history",
                    params={"run_id": azure_run, "metric_key": f"m{k}", "max_results": 100000},
                ).json()
                n += len(body.get("metrics", []))
            out[run] = n
    return out


# Backlog drain -----------------------------------------------------------------------------------


def backlog(ws: Any, identity: Any, store: Path, args: argparse.Namespace) -> dict[str, Any]:
    runs_n = 20
    per_run = args.backlog_points // runs_n
    server = load.tether(store, None, None)  # sync off: the outbox just fills up
    try:
        runs = load.new_runs(server.url, runs_n, "backlog")
        written_s = load.bulk_writer(server.url, runs, per_run)
    finally:
        server.stop()
    total = per_run * runs_n
    log(f"backlog: {total} points written with sync off in {written_s:.1f} s")
    before = ceiling(ws, identity, args.ceiling_points)
    log(f"ceiling before: {before:.0f} points/s")
    mark = ws.mark()
    started = time.time()
    server = load.tether(store, ws, identity)
    try:
        with load.RssSampler(server) as rss:
            done = load.until(
                "the backlog in the workspace",
                lambda: ws.counts(mark)["metric_points"] >= total,
                timeout=3600,
                poll=1.0,
            )
        counts = ws.counts(mark)
        entries = [
            e for e in ws.requests(mark, brief=True) if (e.get("counts") or {}).get("metrics")
        ]
        first = min(e["time"] for e in entries)
        last = max(e["done"] for e in entries if e["done"])
        rate = total / (last - first)
    finally:
        server.stop()
    after = ceiling(ws, identity, args.ceiling_points)
    log(f"ceiling after: {after:.0f} points/s")
    reference = (before + after) / 2
    return {
        "points": total,
        "written_with_sync_off_seconds": round(written_s, 1),
        "drain_points_per_second": round(rate, 0),
        "drain_seconds": round(last - first, 1),
        "start_to_done_seconds": round(done - started, 1),
        "ceiling_before_points_per_second": round(before, 0),
        "ceiling_after_points_per_second": round(after, 0),
        "ratio_to_ceiling": round(rate / reference, 3),
        "metric_points_applied": counts["metric_points"],
        "metric_requests": counts["metric_requests"],
        "azure_requests": counts["requests"],
        "requests_per_1000_points": round(counts["requests"] / (total / 1000), 3),
        "rss_start_mb": round(rss.samples[0], 1),
        "rss_peak_mb": round(max(rss.samples), 1),
        "rss_growth_mb": round(max(rss.samples) - rss.samples[0], 1),
    }


def ceiling(ws: Any, identity: Any, points: int) -> float:
    """The stand-in driven directly: `points` in 250-point log-batch requests, 20 fresh runs,
    CONCURRENCY threads, through the same front (TLS, token, latency). Points/s."""
    token = identity.mint(lifetime=3600)
    api = ws.mlflow_api("v2.0")
    http = ws.client(token, timeout=120.0)
    try:
        exp = http.post(f"{api}/experiments/create", json={"name": f"ceiling-{time.time_ns()}"})
        exp_id = exp.json()["experiment_id"]
        runs = [
            http.post(f"{api}/runs/create", json={"experiment_id": exp_id}).json()["run"]["info"][
                "run_id"
            ]
            for _ in range(20)
        ]
        batches = [(runs[i % 20], i) for i in range(points // CEILING_BATCH)]
        lock = threading.Lock()

        def work() -> None:
            while True:
                with lock:
                    if not batches:
                        return
                    run, n = batches.pop()
                metrics = [
                    {
                        "key": f"m{i % 10}",
                        "value": i / 7,
                        "timestamp": 1_700_000_000_000 + i,
                        "step": i,
                    }
                    for i in range(n * CEILING_BATCH, (n + 1) * CEILING_BATCH)
                ]
                response = http.post(
                    f"{api}/runs/log-batch", json={"run_id": run, "metrics": metrics}
                )
                response.raise_for_status()

        started = time.monotonic()
        pool = [threading.Thread(target=work) for _ in range(CONCURRENCY)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        return (points // CEILING_BATCH * CEILING_BATCH) / (time.monotonic() - started)
    finally:
        http.close()


# Report ------------------------------------------------------------------------------------


def _row(measure: str, value: str, target: str = "") -> str:
    return f"| {measure} | {value} | {target} |"


def _team_table(name: str, r: dict[str, Any]) -> list[str]:
    target = "p95 <= 5 s" if name == "steady" else "p95 <= 15 s"
    acked = f"{r['acked_points_per_second']}/s over {r['load_seconds']} s"
    rows = [
        f"### {name}",
        "",
        "| measure | value | target |",
        "|---|---|---|",
        _row("points acknowledged", f"{r['points']:,} ({acked}, {r['client_errors']} errors)"),
        _row("lag p50 / p95 / max", f"{r['lag_p50']} / {r['lag_p95']} / {r['lag_max']} s", target),
        _row(
            "everything in, after the load ended",
            f"{r['all_in_after_load_seconds']} s",
            "<= 5 s" if name == "steady" else "",
        ),
        _row(
            "metric requests",
            f"{r['metric_requests']:,} (bound {r['metric_request_bound']:,})",
            "<= ceil(points/250) + 1 per run per s",
        ),
        _row(
            "Azure requests (429 / 503 answers)",
            f"{r['azure_requests']:,} ({r['throttled_answers']} / {r['unavailable_answers']})",
        ),
        _row("lost / sent twice", f"{r['lost']} / {r['duplicates']}", "0 / 0"),
    ]
    if r.get("inner_history_points") is not None:
        rows.append(_row("points in the workspace's store", f"{r['inner_history_points']:,}"))
    shown = f"{r['status_lag_shown_median']} / {r['status_lag_shown_max']} s"
    rows += [
        _row(
            "lag shown by `tether sync status` (median / max; true lag then: median)",
            f"{shown} ({r['lag_at_status_samples_median']} s)",
        ),
        _row("Tether RSS after", f"{r['tether_rss_mb']} MB"),
        "",
    ]
    return rows


def _backlog_table(r: dict[str, Any]) -> list[str]:
    ceilings = (
        f"{r['ceiling_before_points_per_second']:,.0f} / "
        f"{r['ceiling_after_points_per_second']:,.0f} points/s"
    )
    drain = (
        f"{r['drain_points_per_second']:,.0f} points/s ({r['drain_seconds']} s; "
        f"{r['start_to_done_seconds']} s from the start)"
    )
    requests = (
        f"{r['requests_per_1000_points']} ({r['azure_requests']:,} requests, "
        f"{r['metric_requests']:,} with metrics)"
    )
    rss = f"{r['rss_start_mb']} / {r['rss_peak_mb']} / {r['rss_growth_mb']} MB"
    written = f"{r['points']:,} (written with sync off in {r['written_with_sync_off_seconds']} s)"
    return [
        "### backlog",
        "",
        "| measure | value | target |",
        "|---|---|---|",
        _row("points", written),
        _row("drain", drain),
        _row("stand-in ceiling (before / after)", ceilings),
        _row("drain / ceiling", f"{r['ratio_to_ceiling']:.1%}", ">= 80%"),
        _row("Azure requests per 1,000 points", requests, "<= 4.1"),
        _row("Tether RSS start / peak / growth", rss, "growth <= 100 MB"),
        "",
    ]


def markdown(results: dict[str, Any]) -> str:
    start = tuple(round(x, 2) for x in results["load_average_start"])
    end = tuple(round(x, 2) for x in results["load_average_end"])
    lines = [f"load average at start {start}, at end {end}", ""]
    for name in ("steady", "throttled"):
        if results.get(name):
            lines += _team_table(name, results[name])
    if results.get("backlog"):
        lines += _backlog_table(results["backlog"])
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
