"""Starting the stand-ins (and their MLflow backend and Azurite) as managed subprocesses."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path

from support.procs import ManagedProcess

TESTS_DIR = Path(__file__).resolve().parents[1]
REPO_ROOT = TESTS_DIR.parent

# Azurite's published development-storage account (in every Azurite release and in the docs).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The test environment without TETHER_*/MLFLOW_* leaking in, with tests/ importable."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TETHER_", "MLFLOW_"))
        and k not in ("PYTEST_CURRENT_TEST", "PYTHONPATH", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")
    }
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = str(TESTS_DIR)
    env.update(extra or {})
    return env


def python_app_process(name: str, module: str, config: Path, log_path: Path) -> ManagedProcess:
    """`python -m <module> <config>` with tests/ on the path (the stand-ins' entry points)."""
    return ManagedProcess(
        name,
        [sys.executable, "-m", module, str(config)],
        log_path=log_path,
        cwd=config.parent,
        env=child_env(),
    )


def mlflow_backend_process(
    port: int, tmpdir: Path, log_path: Path, placeholder_root: str
) -> ManagedProcess:
    """The real `mlflow server` behind the workspace stand-in: own SQLite store, no artifacts.

    Protocol notes §9.1: artifacts never go through MLflow (`--no-serve-artifacts`); the
    default artifact root is a placeholder the stand-in rewrites into Azure's run artifact URI.
    """
    argv = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        f"sqlite:///{tmpdir / 'mlflow.db'}",
        "--default-artifact-root",
        placeholder_root,
        "--no-serve-artifacts",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    env = child_env(
        {
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "DO_NOT_TRACK": "true",
        }
    )
    return ManagedProcess("mlflow-backend", argv, log_path=log_path, cwd=tmpdir, env=env)


# ------------------------------------------------------------------------------------ Azurite


def cache_dir() -> Path:
    return Path(os.environ.get("TETHER_TEST_CACHE_DIR", REPO_ROOT / ".cache"))


def azurite_blob_command() -> list[str]:
    """`azurite-blob` from <repo>/.cache/azurite, installed there with npm on first use."""
    prefix = cache_dir() / "azurite"
    script = prefix / "node_modules" / "azurite" / "dist" / "src" / "blob" / "main.js"
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node is not installed: Azurite (the blob emulator) needs it")
    prefix.mkdir(parents=True, exist_ok=True)
    with (cache_dir() / "azurite.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not script.is_file():
            npm = shutil.which("npm")
            if npm is None:
                raise RuntimeError("npm is not installed: cannot install Azurite")
            result = subprocess.run(
                [
                    npm,
                    "install",
                    "--no-save",
                    "--no-audit",
                    "--no-fund",
                    "--prefix",
                    str(prefix),
                    "azurite",
                ],
                capture_output=True,
                text=True,
                timeout=600,
            )
            if result.returncode != 0 or not script.is_file():
                raise RuntimeError(f"npm install azurite failed:\n{result.stdout}\n{result.stderr}")
    return [node, str(script)]


def azurite_process(port: int, tmpdir: Path) -> ManagedProcess:
    argv = [
        *azurite_blob_command(),
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        str(port),
        "--inMemoryPersistence",
        "--skipApiVersionCheck",
        "--loose",
        "--silent",
        "--disableTelemetry",  # else it tries to reach Application Insights (notes §9.1)
    ]
    return ManagedProcess(
        "azurite", argv, log_path=tmpdir / "azurite.log", cwd=tmpdir, env=child_env()
    )
