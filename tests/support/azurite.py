"""Azurite (Microsoft's Azure Storage emulator, npm package `azurite`) for the blob-store tests.

Installed once with npm into <repo>/.cache/azurite (or $TETHER_TEST_CACHE_DIR/azurite) and
started on a free loopback port per test session. Clients reach it through a connection string
with the emulator's well-known account key, exactly as they would reach a real account.
"""

from __future__ import annotations

import fcntl
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from .mlflow2 import cache_dir
from .net import WaitTimeout, free_port
from .servers import ServerProcess

AZURITE_SPEC = "azurite@3.35.0"
ACCOUNT = "devstoreaccount1"
# The emulator's fixed, published development key (not a secret).
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
_MARKER = ".tether-azurite-ok"


class AzuriteUnavailable(Exception):
    pass


def ensure_azurite() -> Path:
    """Path of the `azurite-blob` launcher; `npm install`ed on first use, reused after."""
    root = cache_dir() / "azurite"
    launcher = root / "node_modules" / ".bin" / "azurite-blob"
    root.mkdir(parents=True, exist_ok=True)
    with (root.parent / "azurite.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        marker = root / _MARKER
        if launcher.is_file() and marker.is_file() and marker.read_text() == AZURITE_SPEC:
            return launcher
        npm = shutil.which("npm")
        if npm is None:
            raise AzuriteUnavailable("npm is not installed: it is needed to install Azurite")
        argv = [npm, "install", "--no-save", "--no-audit", "--no-fund", "--prefix", str(root)]
        result = subprocess.run([*argv, AZURITE_SPEC], capture_output=True, text=True, timeout=900)
        if result.returncode != 0 or not launcher.is_file():
            raise AzuriteUnavailable(
                f"`npm install {AZURITE_SPEC}` failed ({result.returncode}):\n"
                f"{result.stdout[-5000:]}\n{result.stderr[-5000:]}"
            )
        marker.write_text(AZURITE_SPEC)
        return launcher


def _supports(launcher: Path, flag: str) -> bool:
    result = subprocess.run([str(launcher), "--help"], capture_output=True, text=True, timeout=60)
    return flag in result.stdout + result.stderr


class Azurite(ServerProcess):
    """A running Azurite blob service: `.connection_string`, `.blob_endpoint`,
    `.new_container()`, `.wasbs(container, prefix)`."""

    kind = "azurite"

    def __init__(self) -> None:
        launcher = ensure_azurite()
        tmpdir = Path(tempfile.mkdtemp(prefix="tether-azurite-"))
        port = free_port()
        argv = [
            str(launcher),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
            "--location",
            str(tmpdir / "data"),
            "--skipApiVersionCheck",
            "--loose",
            "--silent",
        ]
        if _supports(launcher, "--disableTelemetry"):
            argv.append("--disableTelemetry")  # else it tries to reach Application Insights
        self.blob_endpoint = f"http://127.0.0.1:{port}/{ACCOUNT}"
        self.connection_string = (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={self.blob_endpoint};"
        )
        super().__init__(argv, port=port, tmpdir=tmpdir, env=None, owns_tmpdir=True)

    def _wait_ready(self, timeout: float = 60.0) -> None:
        """Azurite has no health route: ready once it accepts connections."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.process.alive():
                raise WaitTimeout("azurite exited")
            try:
                with socket.create_connection((self.host, self.port), timeout=1):
                    return
            except OSError:
                if time.monotonic() >= deadline:
                    raise WaitTimeout(f"azurite did not listen in {timeout} s") from None
                time.sleep(0.1)

    def new_container(self, prefix: str = "tether") -> str:
        """Create a fresh, uniquely named container and return its name."""
        from azure.storage.blob import BlobServiceClient

        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        with BlobServiceClient.from_connection_string(self.connection_string) as client:
            client.create_container(name)
        return name

    @staticmethod
    def wasbs(container: str, prefix: str = "") -> str:
        return f"wasbs://{container}@{ACCOUNT}.blob.core.windows.net/{prefix}".rstrip("/")

    def env(self) -> dict[str, str]:
        return {"AZURE_STORAGE_CONNECTION_STRING": self.connection_string}
