"""What `GET /ready` and `GET /api/2.0/tether/version` answer."""

from __future__ import annotations

from typing import Literal, NotRequired

from typing_extensions import TypedDict


class ProbeResult(TypedDict):
    """One dependency's probe: `ok`, and either its latency or why it failed."""

    ok: bool
    latency_ms: NotRequired[float]
    error: NotRequired[str]


class DatabaseProbe(ProbeResult):
    dialect: Literal["sqlite", "postgresql"]


class ArtifactProbe(ProbeResult):
    served: bool  # false: this server does not proxy artifacts, nothing to probe
    backend: NotRequired[str]


class SyncReadiness(TypedDict):
    """Reported, never a reason for 503: writes succeed while Azure ML is away."""

    enabled: bool
    azureml_reachable: NotRequired[bool | None]  # null: no call answered or failed yet
    last_error: NotRequired[str | None]
    pending: NotRequired[int]
    in_flight: NotRequired[int]
    failed: NotRequired[int]
    dead: NotRequired[int]
    oldest_pending_age_seconds: NotRequired[float | None]
    queue_error: NotRequired[str]


class Readiness(TypedDict):
    """`GET /ready`: 200 when the database answers and the artifact store takes writes, else
    503 with the same body saying which failed."""

    status: Literal["ready", "unavailable"]
    database: DatabaseProbe
    artifacts: ArtifactProbe
    sync: SyncReadiness


class Versions(TypedDict):
    """`GET /api/2.0/tether/version`: Tether's own version and the MLflow API it implements."""

    tether_version: str
    mlflow_version: str
