"""Tether and reference-MLflow servers as real subprocesses on free loopback ports."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from .net import WaitTimeout, free_port, wait_for_http
from .procs import ManagedProcess
from .rest import MlflowRest

STARTUP_TIMEOUT = float(os.environ.get("TETHER_TEST_STARTUP_TIMEOUT", "90"))


class ServerStartError(RuntimeError):
    pass


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The test process's environment without TETHER_*/MLFLOW_* settings that would leak in."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TETHER_", "MLFLOW_")) and k not in ("PYTEST_CURRENT_TEST",)
    }
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


class ServerProcess:
    """A started server on a loopback port: `.url`, `.port`, `.log_text()`, `.stop()`.

    Started means ready: `_wait_ready()` (by default `GET /health` answers 200) returned; a
    server that dies or never gets ready raises ServerStartError with its log.
    """

    kind = "server"

    def __init__(
        self,
        argv: Sequence[str],
        *,
        port: int,
        tmpdir: Path,
        env: dict[str, str] | None,
        owns_tmpdir: bool,
    ) -> None:
        self.port = port
        self.host = "127.0.0.1"
        self.url = f"http://{self.host}:{port}"
        self.tmpdir = tmpdir
        self._owns_tmpdir = owns_tmpdir
        self.process = ManagedProcess(
            self.kind, argv, log_path=tmpdir / f"{self.kind}.log", cwd=tmpdir, env=env
        )
        try:
            self._wait_ready()
        except WaitTimeout as exc:
            log = self.process.log_text(limit=30_000)
            self.stop()
            raise ServerStartError(
                f"{self.kind} did not become healthy: {exc}\n"
                f"command: {' '.join(argv)}\n--- {self.kind} log ---\n{log}"
            ) from None
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        wait_for_http(f"{self.url}/health", STARTUP_TIMEOUT, alive=self.process.alive)

    def alive(self) -> bool:
        return self.process.alive()

    def log_text(self, start: int = 0) -> str:
        return self.process.log_text(start)

    def log_size(self) -> int:
        return self.process.log_size()

    def stop(self) -> None:
        try:
            self.process.stop()
        finally:
            if self._owns_tmpdir:
                shutil.rmtree(self.tmpdir, ignore_errors=True)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url}>"


class MlflowServer(ServerProcess):
    """A server speaking MLflow's REST API: `.rest()` is a client for it."""

    def rest(self, prefix: str | None = None) -> MlflowRest:
        return MlflowRest(self.url) if prefix is None else MlflowRest(self.url, prefix=prefix)


def tether_command() -> list[str]:
    """`tether` from the running venv: the console script if installed, else the module."""
    script = Path(sys.executable).parent / "tether"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-c", "import sys; from tether.cli import main; sys.exit(main())"]


class TetherServer(MlflowServer):
    """`tether serve` on a free port; `.backend_uri`, `.artifacts_destination` as passed."""

    kind = "tether"

    def __init__(
        self,
        backend_uri: str,
        *,
        extra_args: Sequence[str] = (),
        env: dict[str, str] | None = None,
        artifacts_destination: str | None = None,
    ) -> None:
        tmpdir = Path(tempfile.mkdtemp(prefix="tether-srv-"))
        port = free_port()
        self.backend_uri = backend_uri
        self.artifacts_destination = artifacts_destination or str(tmpdir / "artifacts")
        argv = [
            *tether_command(),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            backend_uri,
            "--artifacts-destination",
            self.artifacts_destination,
            *extra_args,
        ]
        full_env = clean_env({"TETHER_DATA_DIR": str(tmpdir / "tether-data")})
        full_env.update(env or {})
        super().__init__(argv, port=port, tmpdir=tmpdir, env=full_env, owns_tmpdir=True)


# `mlflow server` for tests: the huey job runner (scorers, trace archival) is irrelevant and costs
# a process plus startup time; no telemetry.
MLFLOW_SERVER_ENV = {
    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
}


def mlflow_server_argv(backend_uri: str, port: int, *extra_args: str) -> list[str]:
    """The installed `mlflow server` (3.x) on 127.0.0.1:`port`, one uvicorn worker."""
    return [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        backend_uri,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        *extra_args,
    ]


class ReferenceServer(MlflowServer):
    """The installed `mlflow server` (3.x) on SQLite, one uvicorn worker, no job runner."""

    kind = "mlflow"

    def __init__(self, *, extra_args: Sequence[str] = ()) -> None:
        tmpdir = Path(tempfile.mkdtemp(prefix="tether-ref-"))
        port = free_port()
        self.backend_uri = f"sqlite:///{tmpdir / 'mlflow.db'}"
        self.artifacts_destination = str(tmpdir / "artifacts")
        argv = mlflow_server_argv(
            self.backend_uri,
            port,
            "--artifacts-destination",
            self.artifacts_destination,
            *extra_args,
        )
        super().__init__(
            argv, port=port, tmpdir=tmpdir, env=clean_env(MLFLOW_SERVER_ENV), owns_tmpdir=True
        )


class BackendUriFactory(Protocol):
    """The `make_backend_uri` fixture: `make("sqlite" | "postgres")` -> a fresh store URI."""

    def __call__(self, kind: str) -> str: ...


class TetherServerStarter(Protocol):
    """The `start_tether_server` fixture: a private server, stopped when the test ends."""

    def __call__(
        self,
        backend_uri: str | None = ...,
        *,
        extra_args: list[str] | tuple[str, ...] = ...,
        env: dict[str, str] | None = ...,
        artifacts_destination: str | None = ...,
    ) -> TetherServer: ...
