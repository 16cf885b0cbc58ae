"""`X-Tether-Version` on every answer: Tether's own version, since `GET /version` answers the
MLflow version whose API it implements (what MLflow clients check their features against)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = b"x-tether-version"


class ServerVersion:
    """Pure ASGI middleware adding the header to each HTTP response."""

    def __init__(self, app: ASGIApp, version: str) -> None:
        self.app = app
        self.value = version.encode("latin-1")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (HEADER, self.value)]
            await send(message)

        await self.app(scope, receive, send_with_header)
