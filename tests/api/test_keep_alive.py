"""`TETHER_TIMEOUT_KEEP_ALIVE`: how long an idle keep-alive connection stays open. Behind a
load balancer it must outlast the balancer's idle timeout, so it is an operator setting."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from support import TetherServerStarter

sqlite_only = pytest.mark.parametrize("backend_kind", ["sqlite"], indirect=True)


def _closed_within(port: int, seconds: float) -> bool:
    """Send one keep-alive request, then see whether the server hangs up the idle connection
    within `seconds`."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: t\r\nConnection: keep-alive\r\n\r\n")
        answer = b""
        while not answer.endswith(b"OK"):
            answer += sock.recv(4096)
        assert answer.startswith(b"HTTP/1.1 200")
        sock.settimeout(seconds)
        try:
            return sock.recv(1) == b""  # EOF: the server closed the idle connection
        except TimeoutError:
            return False  # still open, nothing to read


@sqlite_only
def test_idle_connections_close_after_the_configured_keep_alive(
    start_tether_server: TetherServerStarter,
) -> None:
    short = start_tether_server(env={"TETHER_TIMEOUT_KEEP_ALIVE": "1"})
    long = start_tether_server(env={"TETHER_TIMEOUT_KEEP_ALIVE": "30"})
    # Both sides of the default (5 s): 1 s closes well before it (3 s of slack for a slow
    # machine), 30 s still holds the connection after it.
    assert _closed_within(short.port, 4.0)
    assert not _closed_within(long.port, 6.0)
