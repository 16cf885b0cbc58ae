"""SQL functions SQLite lacks and trace search and metrics use, registered on every SQLite
connection (`tether.db.engine`): `regexp(pattern, text)` (what `x REGEXP p` calls: MLflow's
RLIKE) and the aggregate `percentile(value, p)` (PostgreSQL's `percentile_cont(p / 100)`:
linear interpolation between the closest ranks, numpy's default)."""

from __future__ import annotations

import re
from typing import Any


def regexp(pattern: str | None, text: str | None) -> bool:
    if pattern is None or text is None:
        return False
    try:
        return re.search(pattern, str(text)) is not None
    except re.error:
        return False


class Percentile:
    def __init__(self) -> None:
        self.values: list[float] = []
        self.percentile: float | None = None

    def step(self, value: Any, percentile: Any) -> None:
        if value is not None:
            self.values.append(float(value))
        if self.percentile is None and percentile is not None:
            self.percentile = float(percentile)

    def finalize(self) -> float | None:
        if not self.values or self.percentile is None:
            return None
        ordered = sorted(self.values)
        index = self.percentile / 100.0 * (len(ordered) - 1)
        low = int(index)
        high = min(low + 1, len(ordered) - 1)
        return ordered[low] + (index - low) * (ordered[high] - ordered[low])


def register(dbapi_conn: Any) -> None:
    dbapi_conn.create_function("regexp", 2, regexp, deterministic=True)
    dbapi_conn.create_aggregate("percentile", 2, Percentile)
