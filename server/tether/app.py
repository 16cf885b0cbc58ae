"""The composition root: build the services and the ASGI application from settings.

Nothing else wires domains together: each domain's endpoints ask for their service by class
(`tether.api.deps.provider`), and this module registers the instances it built.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, fields

from fastapi import FastAPI

from tether import __version__, ui
from tether.api import errors, openapi
from tether.api.deps import ServiceRegistry
from tether.api.dispatch import DirectDispatch
from tether.api.headers import ServerVersion
from tether.api.limits import BodySizeLimit
from tether.api.urls import StrictUtf8Urls
from tether.artifacts import endpoints as artifact_endpoints
from tether.artifacts.service import ArtifactService
from tether.auth import install as auth
from tether.config import Settings
from tether.db import migrate
from tether.db.engine import Database
from tether.deploy import endpoints as deploy_endpoints
from tether.deploy.runtime import BackgroundDeploy
from tether.deploy.service import DeployService
from tether.deploy.targets import OnlineArms
from tether.ops import health
from tether.ops.install import install as install_observability
from tether.registry import endpoints as registry_endpoints
from tether.registry.service import RegistryService
from tether.registry.sources import HostPolicy
from tether.sync import binding_endpoints, destinations
from tether.sync import endpoints as sync_endpoints
from tether.sync.runtime import BackgroundSync
from tether.threads import blocking
from tether.tracking.evaluation_datasets import endpoints as evaluation_dataset_endpoints
from tether.tracking.experiments import endpoints as experiment_endpoints
from tether.tracking.experiments.service import ExperimentService
from tether.tracking.logged_models import endpoints as logged_model_endpoints
from tether.tracking.logged_models.service import LoggedModelService
from tether.tracking.metrics import endpoints as metric_endpoints
from tether.tracking.metrics.service import MetricService
from tether.tracking.runs import endpoints as run_endpoints
from tether.tracking.runs.service import RunService
from tether.tracking.traces import endpoints as trace_endpoints
from tether.tracking.traces import otlp
from tether.tracking.traces.ingest import SpanIngest
from tether.tracking.traces.metrics import TraceMetrics
from tether.tracking.traces.reads import TraceReader
from tether.tracking.traces.searching import TraceSearch
from tether.tracking.traces.service import TraceService
from tether.tracking.traces.spans import SpanStore
from tether.ui import unconfigured as unconfigured_ui_endpoints
from tether.workspaces import endpoints as workspace_endpoints
from tether.workspaces.guard import WorkspaceGuard
from tether.workspaces.middleware import WorkspaceHeader
from tether.workspaces.service import WorkspaceService
from tether.workspaces.store_uri import check as check_workspace_store

# Every route of the app (in FastAPI's matching order); the fixed paths among them are
# dispatched directly (tether.api.dispatch).
ROUTERS = (
    health.api,
    sync_endpoints.api,
    binding_endpoints.api,
    deploy_endpoints.api,
    experiment_endpoints.api,
    run_endpoints.api,
    metric_endpoints.api,
    registry_endpoints.api,
    logged_model_endpoints.api,
    trace_endpoints.api,
    trace_endpoints.v2,
    trace_endpoints.ui,
    otlp.api,
    evaluation_dataset_endpoints.api,
    workspace_endpoints.api,
    artifact_endpoints.proxy,
    artifact_endpoints.tracking,
    artifact_endpoints.ui,
    unconfigured_ui_endpoints.api,
)


@dataclass(frozen=True)
class Services:
    """Every service of one app, built once from the settings (`build_services`)."""

    experiments: ExperimentService
    runs: RunService
    metrics: MetricService
    artifacts: ArtifactService
    registry: RegistryService
    logged_models: LoggedModelService
    traces: TraceService
    trace_reader: TraceReader
    trace_search: TraceSearch
    span_ingest: SpanIngest
    trace_metrics: TraceMetrics
    deployments: DeployService
    workspaces: WorkspaceService

    def registry_of_all(self) -> ServiceRegistry:
        """What endpoints look their services up in (`tether.api.deps.provider`)."""
        return ServiceRegistry(getattr(self, f.name) for f in fields(self))


def build_services(settings: Settings) -> tuple[Database, Services]:
    db = Database(
        settings.resolved_backend_store_uri(),
        sqlite_synchronous=settings.sqlite_synchronous,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
    )
    # Each workspace's files at its own artifacts destination (tether workspaces bind).
    backend = destinations.artifact_store(settings, db)
    spans = SpanStore(
        backend,
        db,
        segment_bytes=settings.trace_segment_bytes,
        inline_bytes=settings.trace_inline_segment_bytes,
        cache_bytes=settings.trace_read_cache_bytes,
    )
    trace_reader = TraceReader(db, backend, spans)
    artifacts = ArtifactService(db, backend)
    services = Services(
        experiments=ExperimentService(
            db, settings.resolved_default_artifact_root(), workspaces=settings.enable_workspaces
        ),
        runs=RunService(db),
        metrics=MetricService(db),
        artifacts=artifacts,
        registry=RegistryService(db, _registry_host_policy(settings)),
        logged_models=LoggedModelService(db),
        traces=TraceService(db),
        trace_reader=trace_reader,
        trace_search=TraceSearch(db, trace_reader),
        span_ingest=SpanIngest(
            db,
            backend,
            spans,
            max_spans=settings.trace_max_spans,
            max_bytes=settings.trace_max_bytes,
        ),
        trace_metrics=TraceMetrics(db),
        deployments=DeployService(db, artifacts.backend, OnlineArms(settings)),
        workspaces=WorkspaceService(db, backend, settings.resolved_default_artifact_root()),
    )
    return db, services


def _registry_host_policy(settings: Settings) -> HostPolicy:
    roots = [settings.resolved_default_artifact_root(), settings.resolved_artifacts_destination()]
    return HostPolicy(roots)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    check_workspace_store(  # raises (a ValueError) for a workspace store Tether cannot use
        settings.workspace_store_uri,
        settings.resolved_backend_store_uri(),
        settings.enable_workspaces,
    )
    db, services = build_services(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.auto_migrate:
            migrate.upgrade(db)
        if authentication is not None:
            authentication.start(settings.auto_migrate)  # the first admin, from config
        services.experiments.ensure_default_experiment()
        # Startup's objects (modules, app, models: most of the heap) are permanent: freezing
        # them keeps every later GC pass from re-scanning them (bench: +30% runs/search,
        # +10% log-batch throughput).
        gc.collect()
        gc.freeze()
        # Azure ML sync runs beside the API, in this process: for `default` when the server
        # has a workspace, for any workspace bound while it runs (tether workspaces bind).
        if settings.azureml_workspace or settings.enable_workspaces:
            app.state.sync = BackgroundSync(settings, db)
            app.state.sync.start()
            # Deployments go to each workspace's Azure ML (a bind takes effect at once).
            app.state.deploy = BackgroundDeploy(settings, db)
            app.state.deploy.start()
        yield
        if app.state.deploy is not None:
            await blocking(app.state.deploy.stop)
        if app.state.sync is not None:
            await blocking(app.state.sync.stop)  # commits progress, gives leases back
        await services.artifacts.close()
        if authentication is not None:
            authentication.close()
        db.dispose()

    app = FastAPI(
        title="Tether",
        version=__version__,
        summary="MLflow-compatible tracking server that syncs to Azure Machine Learning",
        lifespan=lifespan,
        # FastAPI's native OpenTelemetry hooks probe the global providers on every request;
        # Tether's own request metrics and logs are in tether.observability.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.db = db
    app.state.services = services.registry_of_all()
    app.state.artifact_backend = services.artifacts.backend
    app.state.sync = None
    app.state.gate = None  # authentication off: every access rule passes (tether.api.access)
    # Workspaces on: a request names only resources of its own workspace.
    app.state.workspace_guard = WorkspaceGuard(db) if settings.enable_workspaces else None
    routers = (*ROUTERS, *auth.routers(settings))
    app.state.deploy = None
    # Innermost: the endpoints with fixed paths skip FastAPI's routing (dispatch.py).
    app.add_middleware(DirectDispatch, fastapi_app=app, routers=routers)
    errors.install(app)
    for router in routers:
        app.include_router(router.router)
    artifact_endpoints.install(app)  # its refused-path handler
    openapi.install(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    # The request's workspace (X-MLFLOW-WORKSPACE), before any body is read.
    app.add_middleware(
        WorkspaceHeader, service=services.workspaces if settings.enable_workspaces else None
    )
    # With --app-name basic-auth: sign-in (outside the API, inside the UI's Host/CORS checks)
    # and the permission gate every route's access rule is checked by.
    authentication = auth.install(app, settings, db)
    app.add_middleware(ServerVersion, version=__version__)
    app.add_middleware(StrictUtf8Urls)
    ui.install(app, settings)  # the web UI; its middlewares (prefix, Host, CORS) wrap the API's
    install_observability(app, settings, db)  # last: outermost, sees every request
    return app
