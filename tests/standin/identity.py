"""A local managed-identity endpoint (App Service protocol) issuing short-lived test tokens.

azure-identity's `ManagedIdentityCredential` picks the App Service flavour when
`IDENTITY_ENDPOINT` and `IDENTITY_HEADER` are set (and `IDENTITY_SERVER_THUMBPRINT` is not);
msal then sends (msal/managed_identity.py, `_obtain_token_on_app_service`):

    GET $IDENTITY_ENDPOINT?api-version=2019-08-01&resource=<resource>[&client_id=<id>]
    X-IDENTITY-HEADER: $IDENTITY_HEADER
    Metadata: true

and reads `access_token` and `expires_on` (epoch seconds; App Service sends a string) from the
JSON answer, or `statusCode` / `message` on failure. The tokens are HS256 JWTs (see tokens.py)
that the workspace stand-in verifies with the same secret. docs/azureml-protocol.md §3.

Control API (no auth, loopback only): `POST /_standin/identity` with any of
`{"lifetime": seconds, "fail_next": n, "fail_status": 500}`; `GET /_standin/identity/requests`.

Run: `python -m standin.identity <config.json>` with tests/ on PYTHONPATH (see
`ManagedIdentityEndpoint`, which does this).
"""

from __future__ import annotations

import json
import secrets
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from standin.procs import child_env, python_app_argv
from standin.serving import Listener, serve
from standin.tokens import ARM_AUDIENCES, DEFAULT_TENANT, Claims, mint_token
from support.net import free_port
from support.servers import ServerProcess

TOKEN_PATH = "/msi/token"
APP_SERVICE_API_VERSION = "2019-08-01"


@dataclass
class IdentityConfig:
    port: int
    secret: str  # signs tokens; shared with the workspace stand-in
    identity_header: str  # the value clients must send as X-IDENTITY-HEADER
    lifetime: float = 120.0
    client_id: str = "00000000-0000-4000-8000-0000c11e0001"
    object_id: str = "00000000-0000-4000-8000-00000000a11e"
    tenant_id: str = DEFAULT_TENANT
    resources: list[str] = field(default_factory=lambda: list(ARM_AUDIENCES))


def _error(status: int, message: str) -> JSONResponse:
    # The App Service token service answers errors as {"statusCode", "message"} (msal reads both).
    return JSONResponse({"statusCode": status, "message": message}, status_code=status)


def build_app(config: IdentityConfig) -> Starlette:
    state: dict[str, Any] = {"lifetime": config.lifetime, "fail_next": 0, "fail_status": 500}
    log: list[dict[str, Any]] = []

    async def token(request: Request) -> Response:
        params = request.query_params
        entry: dict[str, Any] = {
            "time": time.time(),
            "resource": params.get("resource"),
            "api_version": params.get("api-version"),
            "client_id": params.get("client_id"),
        }
        log.append(entry)
        response = _token_response(request)
        entry["status"] = response.status_code
        return response

    def _token_response(request: Request) -> Response:
        params = request.query_params
        if request.headers.get("x-identity-header") != config.identity_header:
            return _error(401, "X-IDENTITY-HEADER is missing or does not match.")
        if state["fail_next"] > 0:
            state["fail_next"] -= 1
            return _error(state["fail_status"], "Injected failure of the identity endpoint.")
        if params.get("api-version") != APP_SERVICE_API_VERSION:
            return _error(400, f"api-version must be {APP_SERVICE_API_VERSION}.")
        resource = params.get("resource")
        if not resource:
            return _error(400, "resource is required.")
        if resource not in config.resources:
            return _error(400, f"This stand-in issues tokens only for {config.resources}.")
        client_id = params.get("client_id")
        if client_id is not None and client_id != config.client_id:
            return _error(400, f"No managed identity with client_id {client_id} is assigned.")
        if params.get("mi_res_id") or params.get("object_id"):
            return _error(400, "Only system-assigned or client_id identities are modelled.")
        access_token, claims = mint_token(
            config.secret,
            audience=resource,
            lifetime=float(state["lifetime"]),
            object_id=config.object_id,
            tenant_id=config.tenant_id,
            client_id=config.client_id,
        )
        return JSONResponse(
            {
                "access_token": access_token,
                "expires_on": str(int(claims.expires_at)),
                "resource": resource,
                "token_type": "Bearer",
                "client_id": config.client_id,
            }
        )

    async def control(request: Request) -> Response:
        body = await request.json()
        for key in ("lifetime", "fail_next", "fail_status"):
            if key in body:
                state[key] = body[key]
        return JSONResponse(state)

    async def requests_log(request: Request) -> Response:
        return JSONResponse(log)

    async def health(request: Request) -> Response:
        return PlainTextResponse("OK")

    return Starlette(
        routes=[
            Route(TOKEN_PATH, token, methods=["GET"]),
            Route("/_standin/identity", control, methods=["POST"]),
            Route("/_standin/identity/requests", requests_log, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
        ]
    )


def main(argv: list[str]) -> None:
    config = IdentityConfig(**json.loads(Path(argv[1]).read_text()))
    serve(build_app(config), [Listener(config.port)])


# ------------------------------------------------------------------------------ test side


class ManagedIdentityEndpoint(ServerProcess):
    """The identity endpoint as a subprocess. `.env` holds what a client process needs.

    `.endpoint` (IDENTITY_ENDPOINT), `.identity_header` (IDENTITY_HEADER), `.secret` (signs the
    tokens; `.mint()` makes tokens without a request, e.g. already expired ones), `.client_id`.
    """

    kind = "azureml-identity"

    def __init__(self, *, lifetime: float = 120.0, tmpdir: Path | None = None) -> None:
        owns_tmpdir = tmpdir is None
        tmpdir = tmpdir or Path(tempfile.mkdtemp(prefix="tether-azid-"))
        port = free_port()
        self.config = IdentityConfig(
            port=port,
            secret=secrets.token_urlsafe(32),
            identity_header=secrets.token_urlsafe(16),
            lifetime=lifetime,
        )
        self.secret = self.config.secret
        self.identity_header = self.config.identity_header
        self.client_id = self.config.client_id
        self.tenant_id = self.config.tenant_id
        config_path = tmpdir / "identity.json"
        config_path.write_text(json.dumps(asdict(self.config)))
        argv = python_app_argv("standin.identity", config_path)
        super().__init__(argv, port=port, tmpdir=tmpdir, env=child_env(), owns_tmpdir=owns_tmpdir)
        self.endpoint = f"{self.url}{TOKEN_PATH}"

    @property
    def env(self) -> dict[str, str]:
        """IDENTITY_ENDPOINT / IDENTITY_HEADER for a process using ManagedIdentityCredential."""
        return {"IDENTITY_ENDPOINT": self.endpoint, "IDENTITY_HEADER": self.identity_header}

    def mint(self, *, lifetime: float = 120.0, issued_at: float | None = None) -> str:
        token, _ = self.mint_with_claims(lifetime=lifetime, issued_at=issued_at)
        return token

    def mint_with_claims(
        self,
        *,
        lifetime: float = 120.0,
        issued_at: float | None = None,
        audience: str | None = None,
    ) -> tuple[str, Claims]:
        return mint_token(
            self.secret,
            lifetime=lifetime,
            issued_at=issued_at,
            audience=audience or ARM_AUDIENCES[0],
            object_id=self.config.object_id,
            tenant_id=self.tenant_id,
            client_id=self.client_id,
        )

    def configure(
        self,
        *,
        lifetime: float | None = None,
        fail_next: int | None = None,
        fail_status: int | None = None,
    ) -> dict[str, Any]:
        body = {
            k: v
            for k, v in {
                "lifetime": lifetime,
                "fail_next": fail_next,
                "fail_status": fail_status,
            }.items()
            if v is not None
        }
        response = httpx.post(f"{self.url}/_standin/identity", json=body, timeout=10)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def reset(self) -> None:
        self.configure(lifetime=self.config.lifetime, fail_next=0, fail_status=500)

    def requests(self) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/_standin/identity/requests", timeout=10)
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()
        return result

    def __repr__(self) -> str:
        return f"<ManagedIdentityEndpoint {self.endpoint}>"


if __name__ == "__main__":
    main(sys.argv)
