"""What an entity delivered to Azure ML lately: the rates `tether sync status` shows.

Kept in the entity's `state` JSON (`"delivered"`), which every progress commit writes anyway,
so the figures are the store's (every process's lanes, read by any `tether sync status`):
totals, and the last `WINDOW_S` seconds in `BUCKET_S` buckets:

    {"points": 1200, "requests": 9, "recent": [[1767225600, 250, 1], [1767225603, 500, 3]]}

(bucket start in epoch seconds, metric points, Azure requests). Requests are every Azure ML
call made for the entity (creates, searches and history checks included), points the metric
points it delivered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tether.sync.schemas import DeliveryRates

WINDOW_S = 30
BUCKET_S = 3
KEY = "delivered"


@dataclass(frozen=True)
class Rates:
    points_per_second: float = 0.0
    requests_per_second: float = 0.0
    points_total: int = 0
    requests_total: int = 0

    def __add__(self, other: Rates) -> Rates:
        return Rates(
            self.points_per_second + other.points_per_second,
            self.requests_per_second + other.requests_per_second,
            self.points_total + other.points_total,
            self.requests_total + other.requests_total,
        )

    def as_json(self) -> DeliveryRates:
        return {
            "points_per_second": round(self.points_per_second, 2),
            "requests_per_second": round(self.requests_per_second, 2),
            "points_total": self.points_total,
            "requests_total": self.requests_total,
        }


def record(state: dict[str, Any], now_ms: int, *, points: int, requests: int) -> None:
    """Count a delivery into `state` (nothing when both are 0)."""
    if not points and not requests:
        return
    delivered = state.get(KEY)
    if not isinstance(delivered, dict):
        delivered = state[KEY] = {"points": 0, "requests": 0, "recent": []}
    delivered["points"] = int(delivered.get("points", 0)) + points
    delivered["requests"] = int(delivered.get("requests", 0)) + requests
    now_s = now_ms // 1000
    bucket = now_s - now_s % BUCKET_S
    recent = [b for b in delivered.get("recent", []) if b[0] > now_s - WINDOW_S - BUCKET_S]
    if recent and recent[-1][0] == bucket:
        recent[-1] = [bucket, recent[-1][1] + points, recent[-1][2] + requests]
    else:
        recent.append([bucket, points, requests])
    delivered["recent"] = recent


def rates(state: dict[str, Any], now_ms: int) -> Rates:
    """Points and requests per second over the last `WINDOW_S` seconds, and the totals."""
    delivered = state.get(KEY)
    if not isinstance(delivered, dict):
        return Rates()
    since = now_ms // 1000 - WINDOW_S
    points = requests = 0
    for bucket, bucket_points, bucket_requests in delivered.get("recent", []):
        if bucket >= since:
            points += bucket_points
            requests += bucket_requests
    return Rates(
        points / WINDOW_S,
        requests / WINDOW_S,
        int(delivered.get("points", 0)),
        int(delivered.get("requests", 0)),
    )
