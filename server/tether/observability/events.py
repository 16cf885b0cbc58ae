"""Counting hooks for the sync worker and the Azure ML client.

They call `count(...)` where they already bump their own stats (the sink labels each event
with the calling thread's MLflow workspace: `set_thread_workspace`); nothing happens unless
`--expose-prometheus` installed a sink (tether.ops.metrics), so the sync code does
not depend on prometheus-client and pays one global lookup per event when metrics are off.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Literal

Event = Literal[
    # sync worker, labelled with the entity type (experiment, run, run_artifacts, ...)
    "sync_rows_applied",
    "sync_entities_synced",
    "sync_failures",  # transient: retried with backoff
    "sync_dead_letters",
    "sync_deferrals",
    "sync_points_delivered",  # metric points Azure ML acknowledged
    "sync_requests",  # Azure ML requests made for an entity (creates, data, checks)
    # Azure ML HTTP client
    "azureml_requests",
    "azureml_retries",
    "azureml_throttled",  # 429 answers
    "azureml_token_refreshes",
    # deployment driver (tether.deploy), labelled with the deployment state
    "deploy_transient_failures",
    "deploy_failures",
]
Sink = Callable[[Event, str | None, int], None]

_sink: Sink | None = None
_thread = threading.local()
DEFAULT_WORKSPACE = "default"  # MLflow's default workspace (tether.db.models.workspaces)


def set_thread_workspace(workspace: str) -> None:
    """The MLflow workspace this thread delivers for (a sync worker's lanes, its connect
    thread): the `workspace` label of the events it counts."""
    _thread.workspace = workspace


def thread_workspace() -> str:
    """This thread's workspace; `default` for threads that never set one (the deployment
    driver, a worker without bindings)."""
    workspace: str = getattr(_thread, "workspace", DEFAULT_WORKSPACE)
    return workspace


def count(event: Event, entity_type: str | None = None, n: int = 1) -> None:
    sink = _sink
    if sink is not None:
        sink(event, entity_type, n)


def install_sink(sink: Sink | None) -> None:
    global _sink
    _sink = sink
