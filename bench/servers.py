"""Start and stop the servers under test; read their memory from /proc."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

READY_PATH = "/api/2.0/mlflow/experiments/search?max_results=1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    """This process's environment without TETHER_*/MLFLOW_* settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TETHER_", "MLFLOW_"))}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


@dataclass
class Server:
    """One server process under test: `.url`, `.rss_kb()`, `.hwm_kb()`, `.stop()`."""

    name: str
    argv: list[str]
    env: dict[str, str]
    port: int
    tmpdir: Path
    proc: subprocess.Popen[bytes] | None = None
    idle_rss_kb: int = 0
    ready_path: str = READY_PATH  # answers 200 once the server serves (no credentials)
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.tmpdir / "server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120.0) -> None:
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                self.argv,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.tmpdir,
                start_new_session=True,  # own group: stop() reaches uvicorn/gunicorn workers
            )
        self._wait_ready(timeout)
        time.sleep(1.0)
        self.idle_rss_kb = self.rss_kb()

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited early; log:\n{self.log_tail()}")
            try:
                if httpx.get(self.url + self.ready_path, timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout}s; log:\n{self.log_tail()}")

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def pids(self) -> list[int]:
        return [] if self.proc is None else process_tree(self.proc.pid)

    def rss_kb(self) -> int:
        return sum(proc_status_kb(pid, "VmRSS") for pid in self.pids())

    def hwm_kb(self) -> int:
        return sum(proc_status_kb(pid, "VmHWM") for pid in self.pids())

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            _signal_group(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                _signal_group(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        shutil.rmtree(self.tmpdir, ignore_errors=True)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)  # the group id is the leader's pid (start_new_session)


def process_tree(root: int) -> list[int]:
    """`root` and all its descendants (uvicorn/gunicorn --workers N spawn children)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def proc_status_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _new_tmpdir(name: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))


def tether_server(
    repo: Path, postgres_uri: str | None, workers: int, env: dict[str, str] | None = None
) -> Server:
    """`env`: extra TETHER_* settings (the calling shell's are never passed)."""
    tmpdir, port = _new_tmpdir("tether"), free_port()
    backend = postgres_uri or f"sqlite:///{tmpdir / 'tether.db'}"
    argv = [
        str(repo / ".venv" / "bin" / "tether"),
        "serve",
        "--backend-store-uri",
        backend,
        "--artifacts-destination",
        str(tmpdir / "artifacts"),
        "--data-dir",
        str(tmpdir),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    return Server("tether", argv, clean_env(env or {}), port, tmpdir)


def mlflow_server(python: Path, postgres_uri: str | None, workers: int) -> Server:
    """The reference. PostgreSQL needs psycopg2 in the reference's venv."""
    tmpdir, port = _new_tmpdir("mlflow"), free_port()
    backend = postgres_uri or f"sqlite:///{tmpdir / 'mlflow.db'}"
    argv = [
        str(python),
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        backend,
        "--artifacts-destination",
        str(tmpdir / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    env = clean_env(
        {
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "DO_NOT_TRACK": "true",
        }
    )
    return Server("mlflow", argv, env, port, tmpdir)


def fasttrackml_server(fml: Path) -> Server:
    """FastTrackML (`fml server`) on a fresh SQLite store. Flags as documented for 0.6."""
    tmpdir, port = _new_tmpdir("fml"), free_port()
    argv = [
        str(fml),
        "server",
        "--database-uri",
        f"sqlite://{tmpdir / 'fml.db'}",
        "--listen-address",
        f"127.0.0.1:{port}",
        "--default-artifact-root",
        str(tmpdir / "artifacts"),
    ]
    return Server("fasttrackml", argv, clean_env({}), port, tmpdir)
