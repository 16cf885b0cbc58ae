"""Access tokens shared by the managed-identity stand-in and the workspace stand-in.

Entra ID issues RS256 JWTs; here they are HS256 JWTs signed with a secret that both stand-ins
read from their config, so the two can run in separate processes and the workspace can check a
token without asking the identity endpoint. Claims follow Entra's names (`aud`, `iss`, `iat`,
`nbf`, `exp`, `oid`, `tid`, `appid`) so that a client which peeks at them sees the usual shape;
`iat` keeps milliseconds so "tokens issued before T" is exact (RFC 7519 allows fractional
NumericDate values). docs/azureml-protocol.md §3 (scope = ARM resource, bearer header) and
§8.1 (signed test tokens with a short `exp` to exercise the worker's refresh path).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

# Resources ARM accepts tokens for (azure-identity turns ".../.default" scopes into these).
ARM_AUDIENCES = (
    "https://management.azure.com",
    "https://management.azure.com/",
    "https://management.core.windows.net/",
)
DEFAULT_TENANT = "72f988bf-0000-4000-8000-standin00000"


class TokenError(Exception):
    """Why a token was refused; `reason` is one of the constants below."""

    MALFORMED = "malformed"
    BAD_SIGNATURE = "bad_signature"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    WRONG_AUDIENCE = "wrong_audience"

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Claims:
    audience: str
    issued_at: float
    expires_at: float
    object_id: str
    tenant_id: str
    token_id: str
    raw: dict[str, Any]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: str, signing_input: str) -> str:
    mac = hmac.new(secret.encode(), signing_input.encode("ascii"), hashlib.sha256)
    return _b64(mac.digest())


def mint_token(
    secret: str,
    *,
    audience: str = ARM_AUDIENCES[0],
    lifetime: float = 120.0,
    issued_at: float | None = None,
    object_id: str = "00000000-0000-4000-8000-00000000a11e",
    tenant_id: str = DEFAULT_TENANT,
    client_id: str | None = None,
) -> tuple[str, Claims]:
    """A signed token and its claims; a negative `lifetime` gives an already expired token."""
    iat = round(time.time() if issued_at is None else issued_at, 3)
    exp = int(iat + lifetime)
    payload: dict[str, Any] = {
        "aud": audience,
        "iss": f"https://sts.windows.net/{tenant_id}/",
        "iat": iat,
        "nbf": int(iat) - 300,
        "exp": exp,
        "oid": object_id,
        "sub": object_id,
        "tid": tenant_id,
        "appid": client_id or object_id,
        "idtyp": "app",
        "jti": uuid.uuid4().hex,
    }
    header = {"alg": "HS256", "typ": "JWT", "kid": "tether-standin"}
    signing_input = (
        _b64(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + _b64(json.dumps(payload, separators=(",", ":")).encode())
    )
    token = f"{signing_input}.{_sign(secret, signing_input)}"
    return token, _claims(payload)


def _claims(payload: dict[str, Any]) -> Claims:
    return Claims(
        audience=str(payload["aud"]),
        issued_at=float(payload["iat"]),
        expires_at=float(payload["exp"]),
        object_id=str(payload.get("oid", "")),
        tenant_id=str(payload.get("tid", "")),
        token_id=str(payload.get("jti", "")),
        raw=payload,
    )


def verify_token(
    token: str,
    secret: str,
    *,
    audiences: tuple[str, ...] = ARM_AUDIENCES,
    now: float | None = None,
) -> Claims:
    """The claims of a valid token; TokenError (with a reason) otherwise."""
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenError(TokenError.MALFORMED, "IDX12741: JWT is not well formed.")
    signing_input = f"{parts[0]}.{parts[1]}"
    if not hmac.compare_digest(_sign(secret, signing_input), parts[2]):
        raise TokenError(TokenError.BAD_SIGNATURE, "The token signature is invalid.")
    try:
        payload = json.loads(_unb64(parts[1]))
        claims = _claims(payload)
    except (ValueError, KeyError, TypeError) as exc:
        raise TokenError(TokenError.MALFORMED, f"The token payload is invalid: {exc}") from None
    current = time.time() if now is None else now
    if claims.expires_at <= current:
        raise TokenError(
            TokenError.EXPIRED,
            f"The access token expiry UTC time '{_utc(claims.expires_at)}' is earlier than "
            f"current UTC time '{_utc(current)}'.",
        )
    if float(payload.get("nbf", 0)) > current:
        raise TokenError(TokenError.NOT_YET_VALID, "The access token is not yet valid.")
    if claims.audience not in audiences:
        raise TokenError(
            TokenError.WRONG_AUDIENCE,
            f"The access token has been obtained for wrong audience or resource "
            f"'{claims.audience}'. It should exactly match with one of the allowed audiences "
            f"{', '.join(repr(a) for a in audiences)}.",
        )
    return claims


def _utc(ts: float) -> str:
    return time.strftime("%m/%d/%Y %H:%M:%S", time.gmtime(ts))
