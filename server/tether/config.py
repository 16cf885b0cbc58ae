"""Runtime configuration: `TETHER_*` environment variables, overridden by CLI flags."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATA_DIR = Path("tether-data")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TETHER_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 5000
    workers: int = 1
    data_dir: Path = DEFAULT_DATA_DIR
    backend_store_uri: str | None = None
    default_artifact_root: str | None = None
    artifacts_destination: str | None = None
    serve_artifacts: bool = True
    # FULL keeps every acknowledged commit durable across power loss, not only process crashes.
    sqlite_synchronous: str = Field(default="FULL", pattern="^(OFF|NORMAL|FULL|EXTRA)$")
    db_pool_size: int = 10
    db_max_overflow: int = 20
    auto_migrate: bool = True

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
