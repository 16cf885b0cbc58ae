"""What `GET /api/2.0/tether/sync/status` reads and answers (and `tether sync status --json`
prints: the same summary and entity detail, without this process's `worker`)."""

from __future__ import annotations

from typing import NotRequired

from typing_extensions import TypedDict

from tether.wire import RequestModel, Str


class SyncStatusQuery(RequestModel):
    entity: Str | None = None  # TYPE:ID: that entity's detail instead of the summary


class EntityBrief(TypedDict):
    entity: str  # TYPE:ID
    status: str
    attempts: int
    last_error: str | None
    waiting_on: str | None
    next_attempt_in_seconds: float | None  # null unless pending or failed


class OutboxProgress(TypedDict):
    last_id: int
    scanned_to: int
    not_scanned: int  # appended, not yet discovered by the worker
    oldest_not_scanned_age_seconds: float | None


class NotSynced(TypedDict):
    """What this version of Tether records but does not send to Azure ML."""

    outbox_rows_by_entity_type: dict[str, int]
    deferred_ops: int


class DeliveryRates(TypedDict):
    """Per second over the last window (metric points; Azure ML requests of any kind), and in
    total."""

    points_per_second: float
    requests_per_second: float
    points_total: int
    requests_total: int


class Delivery(DeliveryRates):
    window_seconds: int


class RunLag(DeliveryRates):
    """One run: `lag_seconds` is the age of its oldest write not yet in Azure ML (0 when it is
    synced); `status` counts a live lease as `in_flight`."""

    run: str
    status: str
    lag_seconds: float | None
    outbox_rows_behind: NotRequired[int]


class Lag(Delivery):
    """Overall: the age of the oldest write not yet in Azure ML (null: none) and the delivery
    rates summed over every entity; `runs`: the runs behind (oldest first), then the runs
    delivering, at most 20."""

    oldest_undelivered_write_age_seconds: float | None
    runs: list[RunLag]


class KeptInTether(TypedDict):
    """What stays in Tether by design (Azure ML refuses it): never an error, never dropped."""

    traces: int  # MLflow traces (their spans, tags and assessments with them)


class SyncSummary(TypedDict):
    entities: dict[str, int]  # bucket (pending, in_flight, synced, failed, dead) -> count
    waiting_on_dependency: int
    by_type: dict[str, dict[str, int]]  # entity type -> bucket -> count
    oldest_pending_age_seconds: float | None
    outbox: OutboxProgress
    not_synced_by_this_version: NotSynced
    kept_in_tether: KeptInTether
    errors: list[EntityBrief]  # the latest failed and dead entities
    lag: Lag


Counters = dict[str, int | float | str | None]


class WorkerInfo(TypedDict):
    """This process's sync worker: `enabled` false when it has none."""

    enabled: bool
    connected: NotRequired[bool]
    connect_error: NotRequired[str]
    owner: NotRequired[str]
    workspace: NotRequired[str]
    stats: NotRequired[Counters]
    http: NotRequired[Counters]
    paused_for_seconds: NotRequired[float]
    lanes: NotRequired[int]  # concurrent delivery lanes (TETHER_SYNC_CONCURRENCY)
    throttle: NotRequired[Counters]  # the shared throttle: AIMD window, in flight, probing


class SyncStatus(SyncSummary):
    """`GET /api/2.0/tether/sync/status`: the store-wide summary (what `tether sync status
    --json` prints) plus this process's `worker`."""

    worker: WorkerInfo


class ReportEntry(TypedDict):
    """How one outbox row was mapped to Azure ML, when not one to one."""

    kind: str  # mapped | truncated | split | skipped | deferred
    subject: str
    reason: str
    outbox_id: int | None


class EntityDetail(EntityBrief):
    """`GET /api/2.0/tether/sync/status?entity=TYPE:ID`: one entity's sync state."""

    azure_id: str | None
    in_flight: bool
    lease_owner: str | None
    cursor: int
    metric_hwm: int
    outbox_rows_behind: int
    lag_seconds: float | None  # null when synced
    delivery: Delivery
    report: list[ReportEntry]
