"""Background processes for tests: own process group, log to a file, reliable teardown."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Runs in the child before exec: get SIGTERM if the test process dies (e.g. kill -9)."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ManagedProcess:
    """A subprocess in its own session whose output goes to `log_path`.

    `stop()` signals the whole process group (so workers and helpers spawned by the server go
    too), waits for a clean exit, then SIGKILLs whatever is left.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        cwd: Path,
        env: Mapping[str, str] | None = None,
        user: str | None = None,
        stop_signal: int = signal.SIGTERM,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.stop_signal = stop_signal
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = log_path.open("ab")
        extra: dict[str, object] = {}
        if user is not None:
            extra = {"user": user, "group": user, "extra_groups": []}
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=str(cwd),
            env=dict(env) if env is not None else None,
            start_new_session=True,
            preexec_fn=_die_with_parent,
            **extra,  # type: ignore[call-overload]
        )
        self.pid = self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_text(self, start: int = 0, limit: int = 200_000) -> str:
        """The log from byte offset `start`; only the last `limit` bytes if it is longer."""
        try:
            with self.log_path.open("rb") as f:
                f.seek(0, os.SEEK_END)
                end = f.tell()
                start = max(start, end - limit)
                f.seek(start)
                data = f.read()
        except FileNotFoundError:
            return "<no log>"
        return data.decode("utf-8", errors="replace")

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def stop(self, timeout: float = 15.0) -> None:
        pgid = self.pid  # start_new_session: the child leads its own process group
        try:
            if self.alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, self.stop_signal)
                    if self.stop_signal == signal.SIGTERM:
                        os.killpg(pgid, signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(timeout=timeout)
            # Children (uvicorn workers, postgres backends) may outlive the leader briefly.
            deadline = time.monotonic() + 5.0
            while _group_alive(pgid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _group_alive(pgid):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, signal.SIGKILL)
            if self.alive():
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                self.proc.wait(timeout=10)
        finally:
            self._log.close()


def peak_rss(pid: int) -> int:
    """The process's peak resident set (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc status")
