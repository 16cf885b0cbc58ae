"""A local OpenID provider standing in for Microsoft Entra ID: its own RSA keys, a discovery
document and a JWKS endpoint over HTTP on loopback, and a way to mint access tokens the way
Entra does (RS256, `kid` header, `iss` / `aud` / `exp` / `nbf` / `oid` / `tid` claims).

    with OpenIdProvider("my-tenant") as idp:
        idp.metadata_url   # what TETHER_ENTRA_METADATA_URL points at
        idp.token(audience="api://tether", oid="...", groups=[...])
        idp.rotate()       # a new signing key, published alongside (or instead of) the old
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa


class _Key:
    def __init__(self) -> None:
        self.kid = uuid.uuid4().hex[:16]
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwk(self) -> dict[str, Any]:
        public: dict[str, Any] = json.loads(
            jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key())
        )
        public.update({"kid": self.kid, "use": "sig", "alg": "RS256"})
        return public


class OpenIdProvider:
    def __init__(self, tenant_id: str) -> None:
        self.tenant_id = tenant_id
        self.keys = [_Key()]
        self.published = list(self.keys)
        self.jwks_requests = 0
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == f"/{provider.tenant_id}/v2.0/.well-known/openid-configuration":
                    body = {
                        "issuer": provider.issuer,
                        "jwks_uri": f"{provider.url}/{provider.tenant_id}/discovery/v2.0/keys",
                        "id_token_signing_alg_values_supported": ["RS256"],
                    }
                elif self.path == f"/{provider.tenant_id}/discovery/v2.0/keys":
                    provider.jwks_requests += 1
                    body = {"keys": [key.jwk() for key in provider.published]}
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.issuer = f"https://login.microsoftonline.com/{tenant_id}/v2.0"
        self.metadata_url = f"{self.url}/{tenant_id}/v2.0/.well-known/openid-configuration"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def rotate(self, *, keep_old: bool = True) -> None:
        """Sign with a new key from now on; publish it beside the old one (or alone)."""
        key = _Key()
        self.keys.append(key)
        self.published = [*self.published, key] if keep_old else [key]

    def token(
        self,
        *,
        audience: str,
        oid: str | None = None,
        issuer: str | None = None,
        lifetime: float = 3600,
        not_before: float | None = None,
        groups: list[str] | None = None,
        roles: list[str] | None = None,
        upn: str = "someone@example.com",
        key: _Key | None = None,
        extra: dict[str, Any] | None = None,
    ) -> str:
        now = time.time()
        claims: dict[str, Any] = {
            "iss": issuer or self.issuer,
            "aud": audience,
            "iat": int(now),
            "nbf": int(not_before if not_before is not None else now - 5),
            "exp": int(now + lifetime),
            "tid": self.tenant_id,
            "upn": upn,
            "ver": "2.0",
        }
        if oid is not None:
            claims["oid"] = oid
        if groups is not None:
            claims["groups"] = groups
        if roles is not None:
            claims["roles"] = roles
        claims.update(extra or {})
        signer = key or self.keys[-1]
        return jwt.encode(claims, signer.private, algorithm="RS256", headers={"kid": signer.kid})

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> OpenIdProvider:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
