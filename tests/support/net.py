"""Loopback ports and readiness polling."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import httpx

# Ports handed out by this process, so two servers started back to back never get the same one
# even if the first has not bound yet.
_handed_out: set[int] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise RuntimeError("no free loopback port found")


class WaitTimeout(Exception):
    pass


def wait_for_http(
    url: str,
    timeout: float = 60.0,
    *,
    expect_status: int = 200,
    alive: Callable[[], bool] | None = None,
    interval: float = 0.1,
) -> None:
    """Poll `url` with GET until it answers `expect_status`.

    `alive`, when given, is checked between attempts: once it returns False (the server process
    died) waiting stops at once with WaitTimeout instead of running out the clock.
    """
    deadline = time.monotonic() + timeout
    last_error = "no attempt made"
    with httpx.Client(timeout=5.0, trust_env=False) as client:
        while True:
            try:
                response = client.get(url)
                if response.status_code == expect_status:
                    return
                last_error = f"HTTP {response.status_code}: {response.text[:200]}"
            except httpx.HTTPError as exc:
                last_error = f"{type(exc).__name__}: {exc}"
            if alive is not None and not alive():
                raise WaitTimeout(f"process exited while waiting for {url} ({last_error})")
            if time.monotonic() >= deadline:
                raise WaitTimeout(
                    f"{url} did not answer {expect_status} in {timeout}s: {last_error}"
                )
            time.sleep(interval)
