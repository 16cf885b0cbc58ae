"""Prometheus metrics at `/metrics`, with `tether serve --expose-prometheus DIR`.

Imported only when the flag is given: without it nothing is registered and `/metrics` is 404.

Three sources, one scrape:
- request, pool and sync counters, written by every worker into DIR and summed at scrape time
  (prometheus-client's multiprocess mode; `tether.observability.prometheus_dir`);
- the sync queue and outbox, read from the database when scraped (`StoreCollector`, cached
  for `metrics_cache_seconds` so frequent scrapes stay cheap): the database is shared by all
  workers, so one reading is the whole truth.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine, event
from sqlalchemy.pool import QueuePool

from tether.api.access import PUBLIC, SIGNED_IN
from tether.api.routing import Router
from tether.config import Settings
from tether.db.engine import Database
from tether.observability import events, prometheus_dir
from tether.sync import status as sync_status
from tether.sync.retiring import DRAINING
from tether.sync.schemas import WorkspaceSync
from tether.sync.status import BUCKETS
from tether.threads import blocking

log = logging.getLogger("tether.metrics")

# Artifact transfers can take minutes: the top buckets keep them apart from the API calls.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
_SYNC_HELP = {
    "sync_rows_applied": "Outbox rows applied to Azure ML",
    "sync_entities_synced": "Entities brought fully up to date in Azure ML",
    "sync_failures": "Transient sync failures (retried with backoff)",
    "sync_dead_letters": "Entities stopped as dead letters (permanent refusals)",
    "sync_deferrals": "Entities deferred until a dependency is synced",
    "sync_points_delivered": "Metric points delivered to Azure ML (acknowledged)",
    "sync_requests": "Azure ML requests made to deliver entities (data, creates, checks)",
}
_AZURE_HELP = {
    "azureml_requests": "HTTP requests sent to the Azure ML workspace",
    "azureml_retries": "Azure ML requests retried after throttling or a transient failure",
    "azureml_throttled": "Azure ML answers 429 Too Many Requests",
    "azureml_token_refreshes": "Azure tokens refreshed after a 401",
}
_DEPLOY_HELP = {
    "deploy_transient_failures": "Deployment steps retried after throttling or an outage",
    "deploy_failures": "Deployments that failed (Azure refused or the container crashed)",
}


class Instruments:
    """The counters, histogram and gauges every worker process writes."""

    def __init__(self) -> None:
        labels = ("method", "route", "status")
        self.requests = Counter(
            "tether_http_requests", "HTTP requests answered", labels, registry=None
        )
        self.latency = Histogram(
            "tether_http_request_duration_seconds",
            "Time from request to the last byte of the response",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=None,
        )
        # livesum: summed over the worker processes still running.
        self.pool_size = _live_gauge("tether_db_pool_size", "Database connections kept open")
        self.pool_checked_out = _live_gauge(
            "tether_db_pool_checked_out", "Database connections in use"
        )
        self.pool_overflow = _live_gauge(
            "tether_db_pool_overflow", "Connections in use beyond the pool size (max_overflow)"
        )
        # Labelled with the MLflow workspace whose delivery counted them: each syncs into its
        # own Azure ML workspace (tether.sync.bindings).
        self.sync = {
            name: Counter(f"tether_{name}", text, ("entity_type", "workspace"), registry=None)
            for name, text in _SYNC_HELP.items()
        }
        self.azure = {
            name: Counter(f"tether_{name}", text, ("workspace",), registry=None)
            for name, text in _AZURE_HELP.items()
        }
        for counter in self.azure.values():  # shown at 0 from the start, as before labels
            counter.labels(events.DEFAULT_WORKSPACE)
        self.deploy = {
            name: Counter(f"tether_{name}", text, ("state",), registry=None)
            for name, text in _DEPLOY_HELP.items()
        }

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        code = str(status)
        self.requests.labels(method, route, code).inc()
        self.latency.labels(method, route, code).observe(seconds)

    def count(self, name: events.Event, entity_type: str | None, n: int = 1) -> None:
        if name in self.azure:
            self.azure[name].labels(events.thread_workspace()).inc(n)
        elif name in self.sync:
            self.sync[name].labels(entity_type or "unknown", events.thread_workspace()).inc(n)
        elif name in self.deploy:  # labelled with the deployment's state
            self.deploy[name].labels(entity_type or "unknown").inc(n)


def _live_gauge(name: str, text: str) -> Gauge:
    return Gauge(name, text, multiprocess_mode="livesum", registry=None)


class PoolWatch:
    """Connections in use, counted at checkout and checkin (the pool's own figures lag: its
    checkin event fires before the connection is back in the queue)."""

    def __init__(self, engine: Engine, instruments: Instruments) -> None:
        self.instruments = instruments
        self.size = engine.pool.size() if isinstance(engine.pool, QueuePool) else 0
        self._in_use = 0
        self._lock = threading.Lock()
        instruments.pool_size.set(self.size)
        event.listen(engine, "checkout", self._checkout)
        event.listen(engine, "checkin", self._checkin)
        # A connection taken out of the pool for good (the SQLite writer's) is no longer in use.
        event.listen(engine, "detach", self._checkin)

    def _checkout(self, *_: Any) -> None:
        self._update(1)

    def _checkin(self, *_: Any) -> None:
        self._update(-1)

    def _update(self, delta: int) -> None:
        with self._lock:
            self._in_use = max(0, self._in_use + delta)
            in_use = self._in_use
        self.instruments.pool_checked_out.set(in_use)
        self.instruments.pool_overflow.set(max(0, in_use - self.size) if self.size else 0)


class StoreCollector(Collector):
    """The sync queue and outbox, read from the database at scrape time (briefly cached)."""

    def __init__(self, db: Database, *, sync_enabled: bool, cache_seconds: float) -> None:
        self.db = db
        self.sync_enabled = sync_enabled
        self.cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._families: list[Metric] = []
        self._read_at = float("-inf")

    def collect(self) -> Iterable[Metric]:
        with self._lock:  # one reading at a time; concurrent scrapes share it
            if time.monotonic() - self._read_at >= self.cache_seconds:
                self._families = self._read()
                self._read_at = time.monotonic()
            return list(self._families)

    def _read(self) -> list[Metric]:
        up = GaugeMetricFamily("tether_database_up", "1 when the last scrape could read it")
        enabled = GaugeMetricFamily("tether_sync_enabled", "1 when an Azure ML workspace is set")
        enabled.add_metric([], 1 if self.sync_enabled else 0)
        try:
            with self.db.read() as session:
                snap = sync_status.queue(session)
                each = sync_status.by_workspace(session, {})
        except Exception as exc:  # the scrape still answers: database_up says why it is thin
            log.warning("metrics: cannot read the sync state: %s", exc)
            up.add_metric([], 0)
            return [up, enabled]
        up.add_metric([], 1)
        return [up, enabled, *_sync_families(snap), *_workspace_families(each)]


def _workspace_families(each: dict[str, WorkspaceSync]) -> list[Metric]:
    """Per MLflow workspace (each syncs into its own Azure ML workspace, or is kept local)."""
    entities = GaugeMetricFamily(
        "tether_sync_workspace_entities",
        "Sync queue per MLflow workspace: entities per state",
        labels=["workspace", "status"],
    )
    lag = GaugeMetricFamily(
        "tether_sync_workspace_lag_seconds",
        "Per MLflow workspace: age of its oldest entity not yet in Azure ML (0 when none; "
        "writes not picked up yet are in tether_outbox_oldest_unscanned_age_seconds)",
        labels=["workspace"],
    )
    draining = GaugeMetricFamily(
        "tether_sync_workspace_draining",
        "Per MLflow workspace: 1 while it is deleted and its binding still delivers what is "
        "left (the series goes once it is drained)",
        labels=["workspace"],
    )
    for name, one in sorted(each.items()):
        for bucket in BUCKETS:
            entities.add_metric([name, bucket], one["entities"].get(bucket, 0))
        lag.add_metric([name], one["oldest_pending_age_seconds"] or 0.0)
        draining.add_metric([name], 1 if one["binding"] == DRAINING else 0)
    return [entities, lag, draining]


def _sync_families(snap: sync_status.QueueSnapshot) -> list[Metric]:
    entities = GaugeMetricFamily(
        "tether_sync_entities",
        "Sync queue: entities per type and state (pending, in_flight, synced, failed, dead)",
        labels=["entity_type", "status"],
    )
    for entity_type, counts in sorted(snap.entities.items()):
        for bucket in BUCKETS:
            entities.add_metric([entity_type, bucket], counts.get(bucket, 0))
    return [
        entities,
        GaugeMetricFamily(
            "tether_sync_waiting_on_dependency",
            "Pending entities waiting for another entity to be synced first",
            value=snap.waiting_on_dependency,
        ),
        GaugeMetricFamily(
            "tether_sync_lag_seconds",
            "Age of the oldest work not yet in Azure ML: an entity not synced or a write not "
            "picked up yet (0 when there is none)",
            value=snap.lag_seconds or 0.0,
        ),
        GaugeMetricFamily(
            "tether_outbox_last_id", "Id of the newest outbox row", value=snap.outbox_last_id
        ),
        GaugeMetricFamily(
            "tether_outbox_unscanned_rows",
            "Outbox rows the sync worker has not picked up yet (all of them while sync is off)",
            value=snap.outbox_unscanned_rows,
        ),
        GaugeMetricFamily(
            "tether_outbox_oldest_unscanned_age_seconds",
            "Age of the oldest outbox row not picked up yet (0 when none)",
            value=snap.outbox_oldest_unscanned_age_seconds or 0.0,
        ),
    ]


_instruments: Instruments | None = None
_instruments_lock = threading.Lock()


def instruments(directory: str) -> Instruments:
    """This process's instruments, writing into `directory` (created once per process)."""
    global _instruments
    with _instruments_lock:
        if _instruments is None:
            _use_directory(directory)
            _instruments = Instruments()
            events.install_sink(_instruments.count)
            pid = os.getpid()
            atexit.register(multiprocess.mark_process_dead, pid)  # drop its livesum gauges
        return _instruments


def _use_directory(directory: str) -> None:
    """`tether serve` prepared DIR and set the variable before anything imported
    prometheus-client; an app built some other way (tests, an ASGI host) is switched here."""
    if os.environ.get(prometheus_dir.MULTIPROC_ENV):
        os.makedirs(os.environ[prometheus_dir.MULTIPROC_ENV], exist_ok=True)
    else:
        os.makedirs(directory, exist_ok=True)
        os.environ[prometheus_dir.MULTIPROC_ENV] = os.path.abspath(directory)
    if values.ValueClass is values.MutexValue:  # imported before the variable was set
        values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]


def enable(app: FastAPI, settings: Settings, db: Database) -> Instruments:
    """Serve `/metrics` and return the instruments the request middleware records into."""
    assert settings.expose_prometheus
    tools = instruments(settings.expose_prometheus)
    PoolWatch(db.engine, tools)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    registry.register(
        StoreCollector(
            db,
            sync_enabled=bool(settings.azureml_workspace),
            cache_seconds=settings.metrics_cache_seconds,
        )
    )

    api = Router("metrics")
    # Public like /health, for scrapers; with TETHER_METRICS_REQUIRE_AUTH (and auth on) it
    # needs a signed-in caller, e.g. a dedicated user's access token in the scrape config.
    rule = SIGNED_IN if settings.metrics_require_auth else PUBLIC

    @api.get("/metrics", documented=False, response_class=Response, access=rule)
    async def metrics() -> Response:
        body = await blocking(generate_latest, registry)  # reads files and the database
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    app.include_router(api.router)
    return tools
