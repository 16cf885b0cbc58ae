"""Runtime configuration: `TETHER_*` environment variables, overridden by CLI flags."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATA_DIR = Path("tether-data")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TETHER_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 5000
    workers: int = 1
    # On SIGTERM: seconds in-flight requests may take to finish before they are cancelled
    # (then the sync worker stops and gives its leases back).
    graceful_timeout: int = Field(default=30, ge=0)
    # Idle keep-alive seconds; behind a load balancer keep it above the balancer's idle timeout.
    timeout_keep_alive: int = Field(default=5, ge=1)
    data_dir: Path = DEFAULT_DATA_DIR
    # Largest request body the JSON API reads (bytes; 413 above it). Artifact uploads are
    # streamed and exempt. 32 MiB takes any valid MLflow request, a full log-batch or a
    # log-inputs with the largest dataset profile MLflow stores included.
    max_request_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)
    backend_store_uri: str | None = None
    default_artifact_root: str | None = None
    artifacts_destination: str | None = None
    serve_artifacts: bool = True
    # Artifact proxy streaming (bytes / seconds); see tether.artifacts.
    artifact_chunk_size: int = Field(default=1024 * 1024, ge=4096)
    artifact_block_size: int = Field(default=4 * 1024 * 1024, ge=64 * 1024, le=4000 * 1024 * 1024)
    artifact_upload_concurrency: int = Field(default=4, ge=1, le=64)
    artifact_download_concurrency: int = Field(default=4, ge=1, le=64)
    artifact_connect_timeout: float = Field(default=20.0, gt=0)
    artifact_read_timeout: float = Field(default=300.0, gt=0)
    artifact_sas_expiry: int = Field(default=3600, ge=60, le=7 * 24 * 3600)
    # MLflow 3 traces (tether.tracking.traces): spans received over OTLP are kept in the
    # artifact store; a trace may hold at most this many spans and bytes of span content
    # (a write beyond is refused whole with 400 INVALID_PARAMETER_VALUE saying which limit).
    trace_max_spans: int = Field(default=100_000, ge=1)
    trace_max_bytes: int = Field(default=256 * 1024 * 1024, ge=1024)
    trace_segment_bytes: int = Field(default=256 * 1024, ge=1024)  # span file size target
    # One request's spans of one trace up to this size go into the database, not a file.
    trace_inline_segment_bytes: int = Field(default=64 * 1024, ge=0, le=1024 * 1024)
    trace_read_cache_bytes: int = Field(default=8 * 1024 * 1024, ge=64 * 1024)
    # MLflow 3.17's workspaces (`mlflow server --enable-workspaces`; tether.workspaces): off,
    # everything is in "default" and the X-MLFLOW-WORKSPACE header is refused, as in MLflow.
    enable_workspaces: bool = False
    # MLflow's --workspace-store-uri: accepted only when it names the backend store
    # (tether.workspaces.store_uri says why).
    workspace_store_uri: str | None = None
    # Azure ML sync (tether.sync): off unless a workspace is given, as its azureml://
    # tracking URI or subscriptions/<sub>/resourceGroups/<rg>/workspaces/<ws>.
    azureml_workspace: str | None = None
    azureml_endpoint: str | None = None  # https base override (private link, tests)
    azureml_arm_endpoint: str = "https://management.azure.com"  # ARM discovery of the host
    azureml_studio_url: str = "https://ml.azure.com"  # the sync page's links (tether.ui)
    sync_lease_seconds: float = Field(default=60.0, gt=0)
    sync_lookback_seconds: float = Field(default=60.0, ge=0)
    sync_poll_seconds: float = Field(default=1.0, gt=0)
    sync_backoff_base_seconds: float = Field(default=1.0, gt=0)
    sync_backoff_max_seconds: float = Field(default=600.0, gt=0)
    # How long a run's partial metric batch may wait for more points after its oldest write
    # (at most one partial request per run per linger), and how many entities one process
    # delivers at the same time (see tether.sync.worker).
    sync_linger_ms: int = Field(default=1000, ge=0, le=1000)
    sync_concurrency: int = Field(default=8, ge=1, le=64)
    # Deployments (tether.deploy): how often a running ARM operation is looked at when Azure
    # sends no Retry-After.
    deploy_poll_seconds: float = Field(default=5.0, gt=0)
    # FULL keeps every acknowledged commit durable across power loss, not only process crashes.
    sqlite_synchronous: str = Field(default="FULL", pattern="^(OFF|NORMAL|FULL|EXTRA)$")
    db_pool_size: int = 10
    db_max_overflow: int = 20
    auto_migrate: bool = True
    # Operations (tether.observability): Prometheus sample directory (also turns /metrics on),
    # how long scrape-time database figures are reused, log output, the /ready probe's limit.
    expose_prometheus: str | None = None
    metrics_require_auth: bool = False  # /metrics needs a signed-in caller (auth on)
    metrics_cache_seconds: float = Field(default=5.0, ge=0)
    log_format: str = Field(default="text", pattern="^(text|json)$")
    log_level: str = Field(default="info", pattern="(?i)^(critical|error|warning|info|debug)$")
    access_log: bool = True  # one line per request (tether.access)
    ready_timeout_seconds: float = Field(default=3.0, gt=0)
    # The web UI (tether.ui): where the MLflow UI's files are (default: found, see
    # tether.ui.files), the path prefix everything is served under (`mlflow server
    # --static-prefix`), and mlflow server's protections against DNS rebinding and
    # cross-origin writes: allowed Host headers and CORS origins (comma-separated; unset:
    # loopback and private addresses / loopback origins only).
    ui_dir: Path | None = None
    static_prefix: str | None = Field(default=None, pattern=r"^/[^{}]*[^/{}]$")
    allowed_hosts: str | None = None
    cors_allowed_origins: str | None = None
    x_frame_options: str = "SAMEORIGIN"  # NONE: no header (the UI may then be framed)
    disable_security_middleware: bool = False
    # /graphql batching limits per request, as mlflow server's (tether.ui.graphql.limits).
    graphql_max_root_fields: int = Field(default=10, ge=1)
    graphql_max_aliases: int = Field(default=10, ge=0)

    # Authentication (tether.auth): off unless app_name is "basic-auth" (`mlflow server
    # --app-name basic-auth`). The ini file, admin and default permission may also come from
    # MLflow's own MLFLOW_AUTH_CONFIG_PATH / MLFLOW_AUTH_ADMIN_* (tether.auth.config).
    app_name: str | None = Field(default=None, pattern="^basic-auth$")
    auth_config_path: Path | None = None
    auth_admin_username: str | None = None
    auth_admin_password: SecretStr | None = None
    auth_default_permission: str | None = None
    # Seconds a verified password is trusted without running the KDF again (0: never);
    # unset: the ini's auth_cache_ttl_seconds, else 60.
    auth_cache_seconds: float | None = Field(default=None, ge=0)
    # Failed sign-ins allowed per username / per client address in the window, then 429.
    auth_max_failures_per_user: int = Field(default=10, ge=1)
    auth_max_failures_per_client: int = Field(default=50, ge=1)
    auth_failure_window_seconds: float = Field(default=300.0, gt=0)
    # Microsoft Entra ID access tokens as bearer credentials (on when a tenant is set).
    entra_tenant_id: str | None = None
    entra_audiences: str | None = None  # comma-separated: client id, api://...
    entra_authority: str = "https://login.microsoftonline.com"
    entra_metadata_url: str | None = None  # OpenID configuration (default: the tenant's)
    entra_issuers: str | None = None  # extra accepted issuers, comma-separated
    entra_admin_groups: str | None = None  # group object ids whose members are admins
    entra_admin_roles: str | None = None  # app roles whose holders are admins
    entra_default_permissions: str | None = None  # "<group id or role>=EDIT,..."
    entra_jwks_cache_seconds: float = Field(default=3600.0, gt=0)
    entra_jwks_refresh_floor_seconds: float = Field(default=5.0, ge=0)

    def resolved_backend_store_uri(self) -> str:
        if self.backend_store_uri:
            return self.backend_store_uri
        return f"sqlite:///{(self.data_dir / 'tether.db').as_posix()}"

    def resolved_artifacts_destination(self) -> str:
        if self.artifacts_destination:
            return self.artifacts_destination
        return (self.data_dir / "artifacts").resolve().as_posix()

    def resolved_default_artifact_root(self) -> str:
        """Where new experiments put artifacts; mirrors `mlflow server`'s choice."""
        if self.default_artifact_root:
            return self.default_artifact_root.rstrip("/") or self.default_artifact_root
        if self.serve_artifacts:
            return "mlflow-artifacts:"
        return self.resolved_artifacts_destination()
