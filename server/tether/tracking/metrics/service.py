"""Metric history reads: full history with paging, and the UI's sampled bulk history."""

from __future__ import annotations

import math

from tether.db.engine import Database
from tether.db.int64 import INT64_MAX
from tether.errors import invalid_parameter
from tether.search.page_token import create_page_token, parse_page_token
from tether.tracking.metrics import repository, serialize
from tether.tracking.metrics.schemas import Metric

MAX_RUNS_BULK_INTERVAL = 100
MAX_RESULTS_PER_RUN = 2500
MAX_RUNS_BULK = 100
MAX_RESULTS_BULK = 25000
_API_DOCS_HINT = " See the API docs for more information about request parameters."


class MetricService:
    def __init__(self, db: Database) -> None:
        self.db = db

    def history(
        self, run_id: str, key: str, max_results: int | None, page_token: str | None
    ) -> tuple[list[Metric], str | None]:
        if max_results is not None and max_results <= 0:
            raise invalid_parameter(
                f"Invalid value {max_results} for parameter 'max_results' supplied. "
                "It must be a positive integer."
            )
        offset = parse_page_token(page_token)
        # One row more than asked tells whether a next page exists (LIMIT binds as a BIGINT).
        limit = None if max_results is None else min(max_results, INT64_MAX - 1) + 1
        with self.db.read() as session:
            rows = repository.history(session, run_id, key, offset, limit)
        token = None
        if max_results is not None and len(rows) > max_results:
            rows = rows[:max_results]
            token = create_page_token(offset + max_results)
        points = [
            serialize.metric(key, value, is_nan, timestamp, step)
            for value, is_nan, timestamp, step in rows
        ]
        return points, token

    def bulk(self, run_ids: list[str], key: str | None, max_results: int | None) -> list[Metric]:
        """Every point of `key` of the runs, as MLflow's get-history-bulk answers them: ordered
        by run id, then timestamp, step and value, at most `max_results` (25,000) in all.

        A negative `max_results` is refused: MLflow passes it on as the query's LIMIT (on
        SQLite: no limit at all, then all points but the last few; on PostgreSQL: an error),
        and the 25,000-point bound is what keeps the answer's size in check."""
        if not run_ids:
            raise invalid_parameter(
                "GetMetricHistoryBulk request must specify at least one run_id."
            )
        if len(run_ids) > MAX_RUNS_BULK:
            raise invalid_parameter(
                f"GetMetricHistoryBulk request cannot specify more than {MAX_RUNS_BULK} run_ids."
                f" Received {len(run_ids)} run_ids."
            )
        if key is None:
            raise invalid_parameter("GetMetricHistoryBulk request must specify a metric_key.")
        if max_results is not None and max_results < 0:
            raise invalid_parameter(
                f"Invalid value {max_results} for parameter 'max_results' supplied. "
                "It must be a non-negative integer."
            )
        limit = MAX_RESULTS_BULK if max_results is None else min(max_results, MAX_RESULTS_BULK)
        with self.db.read() as session:
            rows = repository.history_bulk(session, run_ids, key, limit)
        return [
            {
                "key": key,
                "value": math.nan if is_nan else value,
                "timestamp": timestamp,
                "step": step,
                "run_id": run_uuid,
            }
            for run_uuid, value, is_nan, timestamp, step in rows
        ]

    def bulk_interval(
        self,
        run_ids: list[str],
        key: str,
        max_results: int | None,
        start_step: int | None,
        end_step: int | None,
    ) -> list[Metric]:
        if len(run_ids) > MAX_RUNS_BULK_INTERVAL:
            raise invalid_parameter(
                f"GetMetricHistoryBulkInterval request must specify at most "
                f"{MAX_RUNS_BULK_INTERVAL} run_ids. Received {len(run_ids)} run_ids."
                + _API_DOCS_HINT
            )
        if max_results is None:
            max_results = MAX_RESULTS_PER_RUN
        if not 1 <= max_results <= MAX_RESULTS_PER_RUN:
            raise invalid_parameter(
                f"max_results must be between 1 and {MAX_RESULTS_PER_RUN}." + _API_DOCS_HINT
            )
        step_range: tuple[int, int] | None = None
        if start_step is not None and end_step is not None:
            if start_step > end_step:
                raise invalid_parameter(
                    "end_step must be greater than start_step. "
                    f"Found start_step={start_step} and end_step={end_step}."
                )
            step_range = (start_step, end_step)
        elif start_step is not None or end_step is not None:
            raise invalid_parameter(
                "If either start step or end step are specified, both must be specified."
            )
        unique_ids = list(dict.fromkeys(run_ids))
        with self.db.read() as session:
            rows = repository.sampled_history(session, unique_ids, key, max_results, step_range)
        by_run: dict[str, list[Metric]] = {}
        for r in rows:
            point = serialize.metric(key, r.value, r.is_nan, r.timestamp, r.step)
            point["run_id"] = r.run_uuid
            by_run.setdefault(r.run_uuid, []).append(point)
        # A run asked for twice is answered twice, as MLflow does.
        return [point for run_id in run_ids for point in by_run.get(run_id, [])]
