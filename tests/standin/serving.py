"""Running the stand-ins' ASGI apps under uvicorn, and closing a connection with no response.

A fault the stand-in must model is a connection that closes without a response (a reset, or a
response lost after the write committed: docs/azureml-protocol.md §7.3, §8.2 item 6). ASGI
has no way to say "drop this connection": an app that raises before answering makes uvicorn
send a 500. So the HTTP protocol class is subclassed to put each connection's transport into
the request scope (`scope["extensions"][TRANSPORT_KEY]`), and `drop_connection` aborts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import weakref
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

TRANSPORT_KEY = "tether.standin.transport"


class _WithTransport:
    def __init__(self, app: ASGIApp, transport: asyncio.BaseTransport) -> None:
        self.app = app
        self.transport = transport

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            extensions = dict(scope.get("extensions") or {})
            extensions[TRANSPORT_KEY] = self.transport
            scope = {**scope, "extensions": extensions}
        await self.app(scope, receive, send)


_open_transports: weakref.WeakSet[asyncio.Transport] = weakref.WeakSet()


class TransportExposingProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol (uvicorn[standard]), with the transport in each scope."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        _open_transports.add(transport)
        app: ASGIApp = self.app
        self.app = _WithTransport(app, transport)


async def drop_connection(scope: Scope) -> bool:
    """Abort the client's connection without writing a response; False if impossible."""
    transport = (scope.get("extensions") or {}).get(TRANSPORT_KEY)
    if transport is None:
        return False
    transport.abort()
    # Let uvicorn's connection_lost run, so it knows not to answer a request it lost.
    for _ in range(3):
        await asyncio.sleep(0)
    await asyncio.sleep(0.01)
    return True


def _abort_open_transports() -> None:
    for transport in list(_open_transports):
        transport.abort()


@dataclass(frozen=True)
class Listener:
    port: int
    host: str = "127.0.0.1"
    certfile: str | None = None
    keyfile: str | None = None


def serve(app: ASGIApp, listeners: list[Listener]) -> None:
    """Serve `app` on every listener (TLS where a cert is given) until SIGTERM/SIGINT."""
    servers = [
        uvicorn.Server(
            uvicorn.Config(
                app,
                host=listener.host,
                port=listener.port,
                ssl_certfile=listener.certfile,
                ssl_keyfile=listener.keyfile,
                http=TransportExposingProtocol,
                lifespan="off",
                log_level="warning",
                access_log=False,
                timeout_keep_alive=30,
            )
        )
        for listener in listeners
    ]

    async def main() -> None:
        loop = asyncio.get_running_loop()

        def stop() -> None:
            for server in servers:
                server.should_exit = True
            # A client's idle keep-alive TLS connection would hold the graceful shutdown for
            # the SSL close handshake (30 s): a test stand-in can just cut them.
            loop.call_later(0.3, _abort_open_transports)

        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop)
        # `_serve` is `serve` without uvicorn's own signal capture, which would let only one
        # of several servers in a process see the signal.
        await asyncio.gather(*(server._serve() for server in servers))

    asyncio.run(main())
