"""`mlflow server`'s protections for a server a browser talks to (MLflow >= 3.5 semantics).

- Host allow-list (DNS rebinding: a hostile page whose name resolves to 127.0.0.1 sends
  its own Host): a request whose Host matches none of `--allowed-hosts` is answered 403
  `Invalid Host header - possible DNS rebinding attack detected`. Default: loopback names
  and addresses (any port) and the private ranges (10.*, 172.16-31.*, 192.168.*, fc00:*,
  fd00:*). `*` allows any host. `/health` and `/version` are exempt (probes).
- Cross-origin writes: a POST/PUT/DELETE/PATCH to the API (`/api/`, `/ajax-api/`, and
  Tether's own form posts under `/tether/`) carrying an `Origin` that is neither loopback nor
  in `--cors-allowed-origins` is answered 403 `Cross-origin request blocked`. As in MLflow,
  this includes the UI's own POSTs when it is opened under another name than loopback: list
  that origin in `--cors-allowed-origins`.
- CORS headers (starlette's CORSMiddleware, as mlflow's FastAPI app): loopback origins plus
  the allowed ones, with credentials; `*` allows any origin without credentials (and then
  nothing is blocked).
- Every response: `X-Content-Type-Options: nosniff` and `X-Frame-Options` (`SAMEORIGIN`;
  `NONE` leaves it out).
`--disable-security-middleware` turns all of it off.
"""

from __future__ import annotations

import fnmatch
import logging
from urllib.parse import urlsplit

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tether.config import Settings

log = logging.getLogger("tether.security")

INVALID_HOST = b"Invalid Host header - possible DNS rebinding attack detected"
CORS_BLOCKED = b"Cross-origin request blocked"
EXEMPT_FROM_HOST_CHECK = ("/health", "/version")
STATE_CHANGING = frozenset({"POST", "PUT", "DELETE", "PATCH"})
GUARDED_PREFIXES = ("/api/", "/ajax-api/", "/tether/")
_LOOPBACK = ("localhost", "127.0.0.1", "[::1]", "0.0.0.0")
_LOOPBACK_ORIGIN_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]", "::1"})
LOOPBACK_ORIGIN_REGEX = (
    r"^http://localhost(:[0-9]+)?$|^http://127\.0\.0\.1(:[0-9]+)?$|^http://\[::1\](:[0-9]+)?$"
)


def _split(value: str | None) -> list[str]:
    return [item.strip() for item in (value or "").split(",") if item.strip()]


def default_allowed_hosts() -> list[str]:
    with_port = [("[[]" + h[1:] if h.startswith("[") else h) + ":*" for h in _LOOPBACK]
    private = ["192.168.*", "10.*", *[f"172.{i}.*" for i in range(16, 32)], "fc00:*", "fd00:*"]
    return [*_LOOPBACK, *with_port, *private]


def host_allowed(allowed: list[str], host: str) -> bool:
    if not host:
        return False
    if "*" in allowed:
        return True
    return any(fnmatch.fnmatch(host, p) if "*" in p else host == p for p in allowed)


def is_loopback_origin(origin: str) -> bool:
    try:
        return urlsplit(origin).hostname in _LOOPBACK_ORIGIN_HOSTS
    except ValueError:
        return False


def blocks_write(origin: str, method: str, allowed_origins: list[str]) -> bool:
    if not origin or method not in STATE_CHANGING or is_loopback_origin(origin):
        return False
    return not any(fnmatch.fnmatch(origin, p) if "*" in p else origin == p for p in allowed_origins)


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return ""


async def _refuse(send: Send, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 403,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(body))],
        }
    )
    await send({"type": "http.response.body", "body": body})


class HostCheck:
    def __init__(self, app: ASGIApp, allowed_hosts: list[str]) -> None:
        self.app = app
        self.allowed = allowed_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] not in EXEMPT_FROM_HOST_CHECK:
            host = _header(scope, b"host")
            if not host_allowed(self.allowed, host):
                log.warning("refused a request with Host %r (not in --allowed-hosts)", host[:200])
                await _refuse(send, INVALID_HOST)
                return
        await self.app(scope, receive, send)


class CrossOriginWriteBlock:
    def __init__(self, app: ASGIApp, allowed_origins: list[str]) -> None:
        self.app = app
        self.allowed = allowed_origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(GUARDED_PREFIXES):
            origin = _header(scope, b"origin")
            if blocks_write(origin, scope["method"], self.allowed):
                log.warning("blocked a cross-origin %s from %r", scope["method"], origin[:200])
                await _refuse(send, CORS_BLOCKED)
                return
        await self.app(scope, receive, send)


class SecurityHeaders:
    def __init__(self, app: ASGIApp, x_frame_options: str) -> None:
        self.app = app
        self.frame = x_frame_options.upper().encode("latin-1")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v)
                    for k, v in message.get("headers", ())
                    if k.lower() not in (b"x-content-type-options", b"x-frame-options")
                ]
                headers.append((b"x-content-type-options", b"nosniff"))
                if self.frame and self.frame != b"NONE":
                    headers.append((b"x-frame-options", self.frame))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install(app: FastAPI, settings: Settings) -> None:
    """Add the middlewares (call after the app's own: these wrap them)."""
    if settings.disable_security_middleware:
        log.warning("security middleware disabled: no Host check, CORS or security headers")
        return
    origins = _split(settings.cors_allowed_origins)
    if "*" in origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=["*"],
            allow_credentials=False,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["*"],
        )
    else:
        app.add_middleware(CrossOriginWriteBlock, allowed_origins=origins)
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_origin_regex=LOOPBACK_ORIGIN_REGEX,
            allow_credentials=True,
            allow_methods=["GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"],
            allow_headers=["*"],
            expose_headers=["*"],
        )
    hosts = _split(settings.allowed_hosts) or default_allowed_hosts()
    if "*" not in hosts:
        app.add_middleware(HostCheck, allowed_hosts=hosts)
    app.add_middleware(SecurityHeaders, x_frame_options=settings.x_frame_options)
