"""`--static-prefix /mlflow`: serve everything under a path prefix, as `mlflow server` does,
for a reverse proxy that forwards `/mlflow/...` unchanged.

The UI asks for its files and the API with relative URLs (`static-files/...`,
`ajax-api/...`, `graphql`), so opened at `/mlflow/` it stays under the prefix; clients use
`MLFLOW_TRACKING_URI=http://host/mlflow`. The prefix is taken off the path before routing,
so every route is the same code with or without it (`root_path` is left alone: Starlette
would strip it from the path once more). Tether's pages link with relative URLs for this. Requests
outside the prefix get MLflow's 404, except the probes (`/health`, `/ready`, `/version`,
`/metrics`), which answer at both places: health checks (the image's, a load balancer's)
need not know the prefix. `/mlflow` alone redirects to `/mlflow/`, where relative URLs work.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from tether.api.responses import JsonResponse
from tether.errors import MlflowError

PROBES = frozenset({"/health", "/ready", "/version", "/metrics"})


class StaticPrefix:
    def __init__(self, app: ASGIApp, prefix: str) -> None:
        self.app = app
        self.prefix = prefix.rstrip("/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan (Tether serves no websockets)
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path == self.prefix:
            query = scope.get("query_string", b"")
            location = self.prefix + "/" + ("?" + query.decode("latin-1") if query else "")
            await _redirect(send, location)
            return
        if path.startswith(self.prefix + "/"):
            # In place, not a copy: what routing records in the scope (the route, for the
            # request metrics) must reach the middlewares outside this one; the full path is
            # put back for them (the access log).
            raw = scope.get("raw_path")
            scope["path"] = path[len(self.prefix) :]
            if isinstance(raw, bytes) and raw.startswith(self.prefix.encode() + b"/"):
                scope["raw_path"] = raw[len(self.prefix) :]
            try:
                await self.app(scope, receive, send)
            finally:
                scope["path"] = path
                if raw is not None:
                    scope["raw_path"] = raw
            return
        if path in PROBES:
            await self.app(scope, receive, send)
            return
        error = MlflowError(f"No API endpoint at {path}", "ENDPOINT_NOT_FOUND")
        await JsonResponse(error.to_body(), status_code=404)(scope, receive, send)


async def _redirect(send: Send, location: str) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 308,
            "headers": [(b"location", location.encode("latin-1")), (b"content-length", b"0")],
        }
    )
    await send({"type": "http.response.body", "body": b""})
