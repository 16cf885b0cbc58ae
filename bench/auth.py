"""What authentication costs a training loop: log-metric with auth off vs on.

Starts two Tether servers on fresh SQLite stores, one plain and one with `--app-name
basic-auth`, where a non-admin user (so every request runs the whole permission check: the
password cache, the user row, the grants, the run's experiment) logs to a run of an
experiment they created. Rounds interleave the servers; per client count the table gives the
median throughput over the rounds and the ratio on/off.

    .venv/bin/python -m bench.auth [--rounds 3] [--seconds 5] [--clients 1,16]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.servers import Server, tether_server
from bench.workloads import API, Sample, _client, _log_metric_loop

REPO = Path(__file__).resolve().parent.parent
ADMIN_PASSWORD = "bench-admin-password"
USER, PASSWORD = "bench", "bench-user-password"


def _prepare(
    server: Server, auth_on: bool, clients: int
) -> tuple[tuple[str, str] | None, list[str]]:
    """(credentials to use, one run id per client)."""
    credentials = None
    if auth_on:
        with _client(server.url, ("admin", ADMIN_PASSWORD)) as admin:
            admin.post(
                "/api/2.0/mlflow/users/create", json={"username": USER, "password": PASSWORD}
            )
        credentials = (USER, PASSWORD)
    with _client(server.url, credentials) as client:
        name = f"bench-auth-{time.time_ns()}"
        answer = client.post(f"{API}/experiments/create", json={"name": name})
        answer.raise_for_status()
        experiment_id = answer.json()["experiment_id"]
        run_ids = []
        for _ in range(clients):
            made = client.post(f"{API}/runs/create", json={"experiment_id": experiment_id})
            made.raise_for_status()
            run_ids.append(made.json()["run"]["info"]["run_id"])
    return credentials, run_ids


def measure(server: Server, auth_on: bool, clients: int, seconds: float) -> Sample:
    credentials, run_ids = _prepare(server, auth_on, clients)
    with ThreadPoolExecutor(clients) as pool:
        parts = list(
            pool.map(lambda r: _log_metric_loop(server.url, r, seconds, credentials), run_ids)
        )
    return Sample(
        units=sum(p.units for p in parts),
        elapsed=max(p.elapsed for p in parts),
        latencies=[x for p in parts for x in p.latencies],
        errors=sum(p.errors for p in parts),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", default="1,16")
    args = parser.parse_args(argv)
    counts = [int(c) for c in args.clients.split(",")]
    servers = {
        False: tether_server(REPO, None, 1),
        True: tether_server(
            REPO,
            None,
            1,
            {"TETHER_APP_NAME": "basic-auth", "TETHER_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD},
        ),
    }
    servers[True].ready_path = "/health"  # the API wants credentials
    results: dict[tuple[bool, int], list[Sample]] = {}
    try:
        for server in servers.values():
            server.start()
        for round_ in range(args.rounds):
            order = [False, True] if round_ % 2 == 0 else [True, False]
            for clients in counts:
                for auth_on in order:
                    sample = measure(servers[auth_on], auth_on, clients, args.seconds)
                    results.setdefault((auth_on, clients), []).append(sample)
                    print(
                        f"round {round_ + 1} auth={'on' if auth_on else 'off'} "
                        f"clients={clients}: {sample.throughput:.0f} req/s, "
                        f"{sample.errors} errors",
                        file=sys.stderr,
                    )
    finally:
        for server in servers.values():
            server.stop()
    print("| log-metric | auth off req/s | auth on req/s | on / off | p50 off ms | p50 on ms |")
    print("|---|---|---|---|---|---|")
    for clients in counts:
        off = statistics.median(s.throughput for s in results[(False, clients)])
        on = statistics.median(s.throughput for s in results[(True, clients)])
        p50 = {
            flag: 1000 * statistics.median(x for s in results[(flag, clients)] for x in s.latencies)
            for flag in (False, True)
        }
        print(
            f"| {clients} client{'s' if clients > 1 else ''} | {off:.0f} | {on:.0f} | "
            f"{on / off:.2f} | {p50[False]:.2f} | {p50[True]:.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
