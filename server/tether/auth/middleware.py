"""Pure ASGI: sign in every HTTP request that carries an Authorization header.

Valid credentials leave the caller's `Identity` in the scope (`gate.IDENTITY_KEY`); invalid
ones are answered here (401 with the Basic challenge, or 429 with Retry-After, and MLflow's
JSON error body) before anything is routed or read. A request without credentials goes on
anonymous: whether that is enough is the route's rule to say (public routes: health,
readiness, version, static files, server-info), so probes need no credentials and everything
else answers 401.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from tether.api.responses import JsonResponse
from tether.auth.credentials import Authenticator, AuthFailure
from tether.auth.gate import IDENTITY_KEY
from tether.threads import blocking


class Authentication:
    def __init__(self, app: ASGIApp, *, authenticator: Authenticator) -> None:
        self.app = app
        self.authenticator = authenticator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        authorization = None
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                authorization = value.decode("latin-1")
                break
        scope[IDENTITY_KEY] = None
        if authorization is not None:
            client = scope.get("client")
            address = client[0] if client else "unknown"
            try:
                scope[IDENTITY_KEY] = await blocking(
                    self.authenticator.authenticate, authorization, address
                )
            except AuthFailure as failure:
                response = JsonResponse(
                    failure.to_body(), status_code=failure.http_status, headers=failure.headers
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
