"""`tether serve --workers 2`: several processes on one store, concurrent writers, nothing lost.

On SQLite the writers of two processes meet at the database lock; they must queue (busy
timeout + BEGIN IMMEDIATE), never answer "database is locked".
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from support import unique_name

WRITERS = 8
BATCHES = 15
POINTS = 200


def test_two_workers_take_concurrent_writes(start_tether_server: Any) -> None:
    server = start_tether_server(extra_args=["--workers", "2"])
    api = f"{server.url}/api/2.0/mlflow"
    with httpx.Client(trust_env=False, timeout=60) as client:
        exp_id = client.post(f"{api}/experiments/create", json={"name": unique_name()}).json()[
            "experiment_id"
        ]
        run_ids = [
            client.post(f"{api}/runs/create", json={"experiment_id": exp_id}).json()["run"]["info"][
                "run_id"
            ]
            for _ in range(WRITERS)
        ]

    def write(run_id: str) -> list[int]:
        statuses = []
        with httpx.Client(trust_env=False, timeout=120) as client:
            for b in range(BATCHES):
                metrics = [
                    {"key": "loss", "value": i / 7, "timestamp": 1000 + b, "step": b * POINTS + i}
                    for i in range(POINTS)
                ]
                params = [{"key": f"p{b}", "value": str(b)}]
                response = client.post(
                    f"{api}/runs/log-batch",
                    json={"run_id": run_id, "metrics": metrics, "params": params},
                )
                statuses.append(response.status_code)
        return statuses

    with ThreadPoolExecutor(WRITERS) as pool:
        results = list(pool.map(write, run_ids))
    assert all(status == 200 for statuses in results for status in statuses), results

    with httpx.Client(trust_env=False, timeout=60) as client:
        for run_id in run_ids:
            history = client.get(
                f"{api}/metrics/get-history", params={"run_id": run_id, "metric_key": "loss"}
            ).json()["metrics"]
            assert len(history) == BATCHES * POINTS
            run = client.get(f"{api}/runs/get", params={"run_id": run_id}).json()["run"]
            assert len(run["data"]["params"]) == BATCHES
    assert "database is locked" not in server.log_text()
