"""Sync benchmark (issue 11): Tether delivering into the stand-in workspace under load.

    .venv/bin/python -m bench.sync                      # the four workloads, full size
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
- `noisy-neighbour` (issue 17): `tether serve --enable-workspaces`, `default` bound to the
  stand-in, `team-b` bound (`tether workspaces bind`) to a second stand-in that answers 503 to
  everything for `--outage-seconds` (180) while both teams run the steady load. Reports
  default's lag exactly as `steady` does (same target), team-b's undelivered entities during
  the outage, then team-b's convergence once its workspace is back, and lost / sent twice in
  both workspaces.
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
    p.add_argument(
        "--only", default="steady,throttled,backlog,noisy-neighbour", help="workloads to run"
    )
    p.add_argument("--seconds", type=float, default=60.0, help="steady/throttled load duration")
    p.add_argument(
        "--outage-seconds",
        type=float,
        default=180.0,
        help="noisy-neighbour: team-b's outage, and both teams' load, lasts this long",
    )
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
                elif name == "noisy-neighbour":
                    results[name] = noisy_neighbour(ws, identity, store, args)
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


# Noisy neighbour: team-b's Azure workspace down ---------------------------------------------------

TEAM = "team-b"


def noisy_neighbour(
    ws: Any, identity: Any, store: Path, args: argparse.Namespace
) -> dict[str, Any]:
    with load.second_standin(identity, ws, args.latency_ms) as ws_b:
        # The server trusts both stand-ins' CAs (each has its own).
        bundle = store / "cas.pem"
        bundle.write_text(Path(ws.ca_bundle).read_text() + Path(ws_b.ca_file).read_text())
        trust = {"SSL_CERT_FILE": str(bundle), "REQUESTS_CA_BUNDLE": str(bundle)}
        server = load.tether(store, ws, identity, env=trust, args=["--enable-workspaces"])
        try:
            return _outage(server, ws, ws_b, store, args)
        finally:
            server.stop()
            ws_b.clear_faults()


def _outage(
    server: Any, ws_a: Any, ws_b: Any, store: Path, args: argparse.Namespace
) -> dict[str, Any]:
    load.add_workspace(server.url, store, TEAM, ws_b)
    runs = {"default": load.new_runs(server.url, 4, "team"), TEAM: []}
    runs[TEAM] = load.new_runs(server.url, 4, TEAM, workspace=TEAM)
    load.wait_synced(server.url)  # both teams' runs exist in their workspaces before B fails
    azure = {team: load.azure_ids(server.url, ids) for team, ids in runs.items()}
    ws_b.faults(path=".*", action="status", status=503, times=None)
    marks = {"default": ws_a.mark(), TEAM: ws_b.mark()}
    steps = int(args.outage_seconds * 5)
    acks = {"default": load.Acks(), TEAM: load.Acks()}
    t0 = time.time() + 0.5
    clients = [
        threading.Thread(
            target=load.training_client,
            args=(server.url, run, i % 2 == 1, steps, 5.0, t0, acks[team]),
            kwargs={"workspace": None if team == "default" else team},
        )
        for team, ids in runs.items()
        for i, run in enumerate(ids)
    ]
    with (
        load.Deliveries(ws_a, marks["default"]) as got_a,
        load.Deliveries(ws_b, marks[TEAM]) as got_b,
        load.WorkspaceSampler(server.url, TEAM) as team_b,
    ):
        for c in clients:
            c.start()
        for c in clients:
            c.join()
        load_end = time.time()
        total_a, total_b = acks["default"].total(), acks[TEAM].total()
        all_in = load.until(
            f"default's acknowledged points in its workspace ({total_a})",
            lambda: got_a.total() >= total_a,
            timeout=300,
        )
        during = [s for s in team_b.samples if t0 <= s[0] <= load_end]
        down_counts = ws_b.counts(marks[TEAM])
        delivered_b_in_outage = got_b.total()
        back = time.time()
        ws_b.clear_faults()
        converged = load.until(
            f"team-b's acknowledged points in its workspace ({total_b})",
            lambda: got_b.total() >= total_b,
            timeout=1800,
            poll=0.5,
        )
        load.wait_synced(server.url, timeout=1800)
    lags = load.lag_series(acks["default"], got_a, azure["default"], t0, load_end)
    inner_a = sum(_inner_counts(ws_a, azure["default"]).values())
    inner_b = sum(_inner_counts(ws_b, azure[TEAM]).values())
    counts_a = ws_a.counts(marks["default"])
    elapsed = load_end - t0
    return {
        "outage_seconds": round(back - t0, 1),
        "load_seconds": round(elapsed, 2),
        "points_default": total_a,
        "points_team_b": total_b,
        "client_errors": acks["default"].errors + acks[TEAM].errors,
        "acked_points_per_second": round((total_a + total_b) / elapsed, 1),
        "lag_p50": round(load.percentile(lags, 0.5), 2),
        "lag_p95": round(load.percentile(lags, 0.95), 2),
        "lag_max": round(max(lags), 2) if lags else None,
        "all_in_after_load_seconds": round(all_in - load_end, 2),
        "default_metric_requests": counts_a["metric_requests"],
        "default_metric_request_bound": math.ceil(total_a / 250) + 4 * math.ceil(elapsed),
        "team_b_requests_during_outage": down_counts["requests"],
        "team_b_503_answers": down_counts["unavailable"],
        "team_b_points_delivered_during_outage": delivered_b_in_outage,
        "team_b_waiting_entities_max": max((s[1] for s in during), default=None),
        "team_b_waiting_entities_at_end": during[-1][1] if during else None,
        "team_b_dead_max": max((s[2] for s in during), default=None),
        "team_b_oldest_pending_at_end_seconds": during[-1][3] if during else None,
        "team_b_converged_after_back_seconds": round(converged - back, 2),
        "lost_default": total_a - min(got_a.total(), total_a),
        "duplicates_default": got_a.total() - total_a,
        "lost_team_b": total_b - min(got_b.total(), total_b),
        "duplicates_team_b": got_b.total() - total_b,
        "inner_points_default": inner_a,
        "inner_points_team_b": inner_b,
        "tether_rss_mb": round(server.rss_kb() / 1024, 1),
    }


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


def _noisy_table(r: dict[str, Any]) -> list[str]:
    acked = f"{r['acked_points_per_second']}/s over {r['load_seconds']} s"
    points = f"default {r['points_default']:,}, team-b {r['points_team_b']:,}"
    lag = f"{r['lag_p50']} / {r['lag_p95']} / {r['lag_max']} s"
    requests = f"{r['default_metric_requests']:,} (bound {r['default_metric_request_bound']:,})"
    outage = (
        f"{r['team_b_requests_during_outage']:,} requests, {r['team_b_503_answers']:,} 503s, "
        f"{r['team_b_points_delivered_during_outage']} points delivered"
    )
    waiting = (
        f"max {r['team_b_waiting_entities_max']}, at the end {r['team_b_waiting_entities_at_end']}"
        f" (oldest {r['team_b_oldest_pending_at_end_seconds']} s); dead {r['team_b_dead_max']}"
    )
    lost = (
        f"default {r['lost_default']} / {r['duplicates_default']}, "
        f"team-b {r['lost_team_b']} / {r['duplicates_team_b']}"
    )
    inner = f"default {r['inner_points_default']:,}, team-b {r['inner_points_team_b']:,}"
    return [
        "### noisy-neighbour",
        "",
        "| measure | value | target |",
        "|---|---|---|",
        _row("team-b's workspace down (503 to everything)", f"{r['outage_seconds']} s"),
        _row("points acknowledged", f"{points} ({acked}, {r['client_errors']} errors)"),
        _row("default: lag p50 / p95 / max", lag, "p95 <= 5 s (steady's)"),
        _row("default: everything in, after the load ended", f"{r['all_in_after_load_seconds']} s"),
        _row("default: metric requests", requests, "<= ceil(points/250) + 1 per run per s"),
        _row("team-b's Azure requests during the outage", outage),
        _row("team-b entities waiting (pending/in flight/failed)", waiting, "dead 0"),
        _row(
            "team-b: everything in, after its workspace was back",
            f"{r['team_b_converged_after_back_seconds']} s",
        ),
        _row("lost / sent twice", lost, "0 / 0"),
        _row("points in each workspace's store", inner),
        _row("Tether RSS after", f"{r['tether_rss_mb']} MB"),
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
    if results.get("noisy-neighbour"):
        lines += _noisy_table(results["noisy-neighbour"])
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
