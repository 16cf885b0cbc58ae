"""Starting the stand-ins and their inner `mlflow server` as managed subprocesses.

Azurite, when the stand-in has no shared one, is `support.azurite.Azurite` (the same pinned
install the blob-store tests use).
"""

from __future__ import annotations

import sys
from pathlib import Path

from support.procs import ManagedProcess
from support.servers import MLFLOW_SERVER_ENV, clean_env, mlflow_server_argv

TESTS_DIR = Path(__file__).resolve().parents[1]


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """`clean_env` with tests/ importable and no CA bundle of the test process leaking in."""
    env = clean_env({"PYTHONPATH": str(TESTS_DIR)})
    for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
        env.pop(name, None)
    env.update(extra or {})
    return env


def python_app_argv(module: str, config: Path) -> list[str]:
    """`python -m <module> <config>`: a stand-in's entry point (run it with `child_env()`)."""
    return [sys.executable, "-m", module, str(config)]


def python_app_process(name: str, module: str, config: Path, log_path: Path) -> ManagedProcess:
    return ManagedProcess(
        name, python_app_argv(module, config), log_path=log_path, cwd=config.parent, env=child_env()
    )


def mlflow_backend_process(
    port: int, tmpdir: Path, log_path: Path, placeholder_root: str
) -> ManagedProcess:
    """The real `mlflow server` behind the workspace stand-in: own SQLite store, no artifacts.

    docs/azureml-protocol.md §8.1: artifacts never go through MLflow (`--no-serve-artifacts`); the
    default artifact root is a placeholder the stand-in rewrites into Azure's run artifact URI.
    """
    argv = mlflow_server_argv(
        f"sqlite:///{tmpdir / 'mlflow.db'}",
        port,
        "--default-artifact-root",
        placeholder_root,
        "--no-serve-artifacts",
    )
    env = child_env(MLFLOW_SERVER_ENV)
    return ManagedProcess("mlflow-backend", argv, log_path=log_path, cwd=tmpdir, env=env)
