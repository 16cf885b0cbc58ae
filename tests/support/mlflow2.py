"""A separate venv with an MLflow 2.x client, built once and cached under <repo>/.cache."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
MLFLOW2_SPEC = "mlflow-skinny==2.22.*"
# What 2.x users log models with: the sklearn flavour and pyfunc need these beside the client.
# OpenTelemetry as of MLflow 2.22's release: its tracing fails on OpenTelemetry SDK 1.45
# (SimpleSpanProcessor's internals changed), and every trace would be lost.
MLFLOW2_PACKAGES = (MLFLOW2_SPEC, "scikit-learn", "pandas", "opentelemetry-sdk<1.34")
MLFLOW2_VERSION_PREFIX = "2.22."
_MARKER = ".tether-mlflow2-ok"
_RESULT_TAG = "__TETHER_RESULT__"


def cache_dir() -> Path:
    return Path(os.environ.get("TETHER_TEST_CACHE_DIR", REPO_ROOT / ".cache"))


def _venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _works(python: Path, *, full: bool = True) -> bool:
    """`full` imports mlflow (about a second); otherwise only the installed version is read."""
    if not python.is_file():
        return False
    code = (
        "import mlflow, sys; sys.stdout.write(mlflow.__version__)"
        if full
        else "import importlib.metadata as m, sys; sys.stdout.write(m.version('mlflow-skinny'))"
    )
    probe = subprocess.run(
        [str(python), "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env=_client_env(None),
    )
    return probe.returncode == 0 and probe.stdout.startswith(MLFLOW2_VERSION_PREFIX)


def ensure_mlflow2_venv() -> Path:
    """Path to the python of a venv with `MLFLOW2_SPEC`; built on first use, reused after."""
    root = cache_dir()
    venv = root / "mlflow2-venv"
    python = _venv_python(venv)
    root.mkdir(parents=True, exist_ok=True)
    with (root / "mlflow2-venv.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        marker = venv / _MARKER
        wanted = " ".join(MLFLOW2_PACKAGES)
        if marker.is_file() and marker.read_text() == wanted and _works(python, full=False):
            return python
        shutil.rmtree(venv, ignore_errors=True)
        base = getattr(sys, "_base_executable", sys.executable)
        steps = [
            [base, "-m", "venv", str(venv)],
            [str(python), "-m", "pip", "install", "--quiet", *MLFLOW2_PACKAGES],
        ]
        for argv in steps:
            result = subprocess.run(argv, capture_output=True, text=True, timeout=900)
            if result.returncode != 0:
                raise RuntimeError(
                    f"building the MLflow 2.x client venv failed at {' '.join(argv)}:\n"
                    f"{result.stdout[-5000:]}\n{result.stderr[-5000:]}"
                )
        if not _works(python):
            raise RuntimeError(f"{venv} does not import mlflow {MLFLOW2_VERSION_PREFIX}x")
        marker.write_text(wanted)
        return python


def _client_env(tracking_uri: str | None) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MLFLOW_", "TETHER_", "PYTHON", "VIRTUAL_ENV"))
    }
    env.update(
        PYTHONUNBUFFERED="1",
        PYTHONWARNINGS="ignore",
        MLFLOW_DISABLE_TELEMETRY="true",
        DO_NOT_TRACK="true",
        # Fail fast: a test wants the server's answer, not minutes of client retries.
        MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",
        MLFLOW_HTTP_REQUEST_TIMEOUT="60",
    )
    if tracking_uri is not None:
        env["MLFLOW_TRACKING_URI"] = tracking_uri
    return env


class ClientScriptError(AssertionError):
    pass


def run_mlflow2(
    python: Path | str,
    tracking_uri: str,
    snippet: str,
    *,
    env: dict[str, str] | None = None,
    timeout: float = 180,
    cwd: Path | str | None = None,
) -> Any:
    """Run `snippet` in the 2.x venv with MLFLOW_TRACKING_URI set; return its `result`.

    The snippet runs with `mlflow`, `json` and `client` (an `MlflowClient()`) already bound and
    must assign a JSON-serialisable value to `result` (non-JSON values go through `str`).
    A non-zero exit raises ClientScriptError carrying the traceback.
    """
    program = "\n".join(
        [
            "import json, mlflow",
            "from mlflow.tracking import MlflowClient",
            "client = MlflowClient()",
            "result = None",
            textwrap.dedent(snippet),
            f"print({_RESULT_TAG!r} + json.dumps(result, default=str))",
        ]
    )
    full_env = _client_env(tracking_uri)
    full_env.update(env or {})
    with contextlib.ExitStack() as stack:
        if cwd is None:
            cwd = stack.enter_context(tempfile.TemporaryDirectory(prefix="tether-m2-"))
        proc = subprocess.run(
            [str(python), "-c", program],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=full_env,
            cwd=str(cwd),
        )
    if proc.returncode != 0:
        raise ClientScriptError(
            f"MLflow 2.x snippet failed (exit {proc.returncode}) against {tracking_uri}:\n"
            f"--- snippet ---\n{textwrap.dedent(snippet)}\n"
            f"--- stdout ---\n{proc.stdout[-10000:]}\n--- stderr ---\n{proc.stderr[-10000:]}"
        )
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(_RESULT_TAG):
            return json.loads(line[len(_RESULT_TAG) :])
    raise ClientScriptError(f"no result line in output:\n{proc.stdout}\n{proc.stderr}")


class Mlflow2:
    """Bound helper handed out by the `mlflow2` fixture: `mlflow2.run(tracking_uri, snippet)`."""

    def __init__(self, python: Path) -> None:
        self.python = python

    def run(self, tracking_uri: str, snippet: str, **kwargs: Any) -> Any:
        return run_mlflow2(self.python, tracking_uri, snippet, **kwargs)

    @property
    def version(self) -> str:
        probe = subprocess.run(
            [str(self.python), "-c", "import mlflow, sys; sys.stdout.write(mlflow.__version__)"],
            capture_output=True,
            text=True,
            timeout=120,
            env=_client_env(None),
            check=True,
        )
        return probe.stdout.strip()
