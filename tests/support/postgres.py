"""A throwaway PostgreSQL cluster on a free loopback port, for the whole test session."""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from .net import free_port
from .procs import ManagedProcess

SKIP_ENV = "TETHER_TEST_SKIP_POSTGRES"
PG_USER = "postgres"  # the database superuser inside our cluster (trust auth, no password)


class PostgresUnavailable(Exception):
    """PostgreSQL binaries are not installed."""


def find_pg_bindir() -> Path:
    """The newest /usr/lib/postgresql/<ver>/bin with initdb and postgres (or $TETHER_PG_BINDIR)."""
    override = os.environ.get("TETHER_PG_BINDIR")
    candidates = [override] if override else []
    versions = glob.glob("/usr/lib/postgresql/*/bin")
    versions.sort(key=lambda p: _version_key(Path(p).parent.name), reverse=True)
    candidates += versions
    for cand in candidates:
        bindir = Path(cand)
        if (bindir / "initdb").is_file() and (bindir / "postgres").is_file():
            return bindir
    raise PostgresUnavailable(
        "PostgreSQL server binaries (initdb, postgres) not found under /usr/lib/postgresql/*/bin. "
        "Install them with `apt-get install -y postgresql` (.ci/run does this), or set "
        f"{SKIP_ENV}=1 to skip the PostgreSQL tests."
    )


def _version_key(name: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in name.split("."))
    except ValueError:
        return (0,)


def _os_user_for_server() -> str | None:
    """PostgreSQL refuses to run as root: pick (or create) an unprivileged OS user."""
    if os.geteuid() != 0:
        return None
    user = os.environ.get("TETHER_PG_OS_USER", "postgres")
    try:
        pwd.getpwnam(user)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", user],
            check=True,
            capture_output=True,
        )
    return user


class PostgresCluster:
    """A running `postgres` with trust auth on 127.0.0.1:`port`; see `new_database()`."""

    host = "127.0.0.1"

    def __init__(self) -> None:
        self.bindir = find_pg_bindir()
        self.os_user = _os_user_for_server()
        self.tmpdir = Path(tempfile.mkdtemp(prefix="tether-pg-"))
        self.datadir = self.tmpdir / "data"
        self.sockdir = self.tmpdir / "sock"
        self.sockdir.mkdir()
        self.port = free_port()
        self.process: ManagedProcess | None = None
        self._counter = itertools.count(1)
        if self.os_user is not None:
            pw = pwd.getpwnam(self.os_user)
            for path in (self.tmpdir, self.sockdir):
                os.chown(path, pw.pw_uid, pw.pw_gid)
        try:
            self._initdb()
            self._start()
        except BaseException:
            self.stop()
            raise

    def _run_as_owner(self, argv: list[str], timeout: float = 120) -> None:
        extra: dict[str, object] = {}
        if self.os_user is not None:
            extra = {"user": self.os_user, "group": self.os_user, "extra_groups": []}
        result = subprocess.run(
            argv,
            cwd=self.tmpdir,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self._env(),
            **extra,  # type: ignore[call-overload]
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{argv[0]} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
            )

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(LC_ALL="C.UTF-8", LANG="C.UTF-8", TZ="UTC")
        return env

    def _initdb(self) -> None:
        self._run_as_owner(
            [
                str(self.bindir / "initdb"),
                "--pgdata",
                str(self.datadir),
                "--username",
                PG_USER,
                "--auth",
                "trust",
                "--encoding",
                "UTF8",
                "--locale",
                "C.UTF-8",
                "--no-sync",
                "--no-instructions",
            ]
        )

    def _start(self) -> None:
        settings = {
            "listen_addresses": self.host,
            "port": str(self.port),
            "unix_socket_directories": str(self.sockdir),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "300",
            "shared_buffers": "128MB",
            "log_min_messages": "warning",
            "logging_collector": "off",
            "timezone": "UTC",
        }
        argv = [str(self.bindir / "postgres"), "-D", str(self.datadir)]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        self.process = ManagedProcess(
            "postgres",
            argv,
            log_path=self.tmpdir / "postgres.log",
            cwd=self.tmpdir,
            env=self._env(),
            user=self.os_user,
            # SIGINT is PostgreSQL's "fast shutdown": roll back sessions, exit promptly.
            stop_signal=signal.SIGINT,
        )
        self._wait_ready(timeout=60)

    def _wait_ready(self, timeout: float) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            assert self.process is not None
            if not self.process.alive():
                raise RuntimeError(
                    "postgres exited during startup:\n" + self.process.log_text(limit=20_000)
                )
            try:
                with psycopg.connect(self.uri("postgres"), connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError as exc:
                last = exc
                time.sleep(0.1)
        raise RuntimeError(f"postgres did not accept connections in {timeout}s: {last}")

    def uri(self, dbname: str) -> str:
        return f"postgresql://{PG_USER}@{self.host}:{self.port}/{dbname}"

    def new_database(self, prefix: str = "t") -> str:
        """CREATE a fresh, empty database and return its postgresql:// URI."""
        import psycopg

        name = f"{prefix}_{next(self._counter)}_{uuid.uuid4().hex[:8]}".lower()
        with psycopg.connect(self.uri("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.uri(name)

    def log_text(self, start: int = 0) -> str:
        return self.process.log_text(start) if self.process else ""

    def log_size(self) -> int:
        return self.process.log_size() if self.process else 0

    def stop(self) -> None:
        try:
            if self.process is not None:
                self.process.stop(timeout=20)
        finally:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
