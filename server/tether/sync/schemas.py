"""What `GET /api/2.0/tether/sync/status` reads and answers (and `tether sync status --json`
prints: the same summary and entity detail, without this process's `worker`)."""

from __future__ import annotations

from typing import ClassVar, NotRequired

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


class WorkspaceSync(TypedDict):
    """One MLflow workspace: where it syncs to and how far it is.

    `binding`: `server` (`default`, bound by --azureml-workspace), `bound` (tether workspaces
    bind), `local-only` (kept in Tether, not an error: its entities wait, pending, until it
    is bound) or `deleted (draining)` (deleted, its binding kept until what is left of it is
    delivered: tether.sync.retiring)."""

    binding: str
    azureml_workspace: str | None  # the Azure ML workspace (subscription/resource group/name)
    entities: dict[str, int]  # bucket -> count, as the store-wide `entities`
    oldest_pending_age_seconds: float | None
    last_error: str | None  # the latest failed or dead entity's reason


class WorkspaceBindingInfo(TypedDict):
    """`tether workspaces list --json` and `/api/2.0/tether/workspaces[/<name>]`: a workspace,
    its binding (`sync.binding`: server, bound or local-only) and its sync state."""

    name: str
    azureml_workspace: str | None  # as given (tracking URI or ARM id); null: local-only
    target: str | None  # subscription/resource group/workspace, also kept after an unbind
    azureml_endpoint: str | None
    # Where its files are written (kept after an unbind: the files stay there); null: the
    # server store. `artifacts_previous`: locations a rebind replaced, still read from until
    # `tether workspaces move-artifacts` empties them (newest first).
    artifacts_destination: str | None
    artifacts_previous: list[str]
    credential: str | None  # a name (TETHER_AZURE_CREDENTIAL_<NAME>_*), never a secret
    sync: WorkspaceSync


class ListWorkspaceBindings(TypedDict):
    workspaces: list[WorkspaceBindingInfo]


class BindWorkspace(RequestModel):
    """`PUT|POST /api/2.0/tether/workspaces/<name>/binding`."""

    required: ClassVar[tuple[str, ...]] = ("azureml_workspace",)
    azureml_workspace: Str
    azureml_endpoint: Str | None = None
    artifacts_destination: Str | None = None
    credential: Str | None = None
    force: bool = False


class BindResponse(TypedDict):
    workspace: WorkspaceBindingInfo
    restarted: bool  # a forced rebind to another Azure workspace: delivery starts over


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
    # Per MLflow workspace (every workspace, and any that sync entities name); the counts
    # above are store-wide, local-only workspaces' entities included.
    workspaces: NotRequired[dict[str, WorkspaceSync]]


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
    # Per bound MLflow workspace: its own worker (lanes, Azure client, token, throttle); the
    # fields above are `default`'s (or, without it, the first bound workspace's).
    workspaces: NotRequired[dict[str, WorkerInfo]]


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
