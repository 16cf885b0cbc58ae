"""Microsoft Entra ID access tokens as bearer credentials.

A token is accepted when (PyJWT with `cryptography`):
- its header names RS256 (the only algorithm Entra signs access tokens with; `none`, HS256
  and anything else are refused before a key is even looked up) and a `kid`;
- it verifies against that key of the tenant's published signing keys: the JWKS whose URL the
  tenant's OpenID configuration names, fetched over HTTPS and cached (`jwks_cache_seconds`);
  an unknown `kid` fetches the set again (keys rotate), at most once per
  `refresh_floor_seconds` so made-up kids cannot turn Tether into a request amplifier;
- its issuer is the configuration's (or the v1 form `https://sts.windows.net/<tenant>/`,
  which Entra uses when the app registration issues v1 tokens), its audience one of the
  configured ones (the app registration's client id, `api://...`), `exp` is in the future and
  `nbf` in the past (60 s of clock skew), and it carries an `oid`.
The user is the token's object id (`oid`); its UPN (or preferred_username / name) is kept for
display. Optional mappings turn group ids (`groups`) or app roles (`roles`) into admin rights
or a default permission for that user.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt

from tether.auth import permissions
from tether.auth.credentials import AuthFailure, Identity, unauthenticated
from tether.auth.store import AuthStore

log = logging.getLogger("tether.auth.entra")

ALGORITHMS = ("RS256",)
LEEWAY_SECONDS = 60


@dataclass(frozen=True)
class EntraConfig:
    tenant_id: str
    audiences: tuple[str, ...]
    metadata_url: str
    issuers: tuple[str, ...] = ()  # extra accepted issuers (beside the metadata's)
    admin_groups: frozenset[str] = frozenset()
    admin_roles: frozenset[str] = frozenset()
    # group id or app role -> permission name (READ, USE, EDIT, MANAGE)
    default_permissions: dict[str, str] = field(default_factory=dict)
    jwks_cache_seconds: float = 3600.0
    refresh_floor_seconds: float = 5.0
    timeout_seconds: float = 10.0


class SigningKeys:
    """The tenant's OpenID configuration and signing keys, fetched lazily and cached."""

    def __init__(self, config: EntraConfig, client: httpx.Client | None = None) -> None:
        self.config = config
        self.client = client or httpx.Client(timeout=config.timeout_seconds, follow_redirects=False)
        self._lock = threading.Lock()
        self._issuer: str | None = None
        self._jwks_uri: str | None = None
        self._keys: dict[str, Any] = {}
        self._fetched_at = 0.0

    def issuer(self) -> str:
        with self._lock:
            self._metadata()
            assert self._issuer is not None
            return self._issuer

    def _metadata(self) -> None:
        if self._jwks_uri is not None:
            return
        document = self._get_json(self.config.metadata_url)
        issuer, jwks_uri = document.get("issuer"), document.get("jwks_uri")
        if not isinstance(issuer, str) or not isinstance(jwks_uri, str):
            raise RuntimeError("the OpenID configuration has no issuer or jwks_uri")
        tenant = self.config.tenant_id
        self._issuer = issuer.replace("{tenantid}", tenant)
        self._jwks_uri = jwks_uri

    def key(self, kid: str) -> Any:
        with self._lock:
            self._metadata()
            now = time.monotonic()
            stale = now - self._fetched_at > self.config.jwks_cache_seconds
            unknown = kid not in self._keys
            if stale or (unknown and now - self._fetched_at >= self.config.refresh_floor_seconds):
                self._refresh(now)
            return self._keys.get(kid)

    def _refresh(self, now: float) -> None:
        assert self._jwks_uri is not None
        document = self._get_json(self._jwks_uri)
        keys: dict[str, Any] = {}
        for entry in document.get("keys", []):
            if not isinstance(entry, dict) or entry.get("kty") != "RSA" or "kid" not in entry:
                continue
            try:
                keys[str(entry["kid"])] = jwt.PyJWK(entry, algorithm="RS256").key
            except jwt.PyJWTError:
                continue
        self._keys = keys
        self._fetched_at = now
        log.info("fetched %d Entra ID signing keys", len(keys))

    def _get_json(self, url: str) -> dict[str, Any]:
        response = self.client.get(url)
        response.raise_for_status()
        document = response.json()
        if not isinstance(document, dict):
            raise RuntimeError(f"{url} did not answer a JSON object")
        return document


class EntraValidator:
    """Validates a bearer token and signs its user in (creating the user at first sign-in)."""

    def __init__(
        self,
        config: EntraConfig,
        store: AuthStore,
        keys: SigningKeys | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.store = store
        self.keys = keys or SigningKeys(config)
        self.clock = clock

    def __call__(self, token: str) -> Identity:
        claims = self.validate(token)
        self.store.ensure_entra_user(str(claims["oid"]), _display_name(claims))
        user = self.store.signing_in(str(claims["oid"]))
        if user is None:  # deleted in between
            raise unauthenticated()
        groups = _strings(claims.get("groups")) | _strings(claims.get("roles"))
        admin = bool(groups & (self.config.admin_groups | self.config.admin_roles))
        mapped = [
            self.config.default_permissions[g]
            for g in groups
            if g in self.config.default_permissions
        ]
        default = None
        for name in mapped:
            default = name if default is None else permissions.higher(default, name)
        return Identity(
            user.id,
            user.username,
            user.is_admin or admin,
            "entra",
            user.display_name,
            default,
            grants=user.grants,
        )

    def validate(self, token: str) -> dict[str, Any]:
        """The token's claims, or a 401 (the reason is logged, never answered)."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise self._refuse("not a JWT") from None
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in ALGORITHMS:
            raise self._refuse(f"algorithm {alg!r} is not accepted")
        if not isinstance(kid, str):
            raise self._refuse("no key id")
        try:
            key = self.keys.key(kid)
            issuers = self._issuers()
        except (httpx.HTTPError, RuntimeError, ValueError) as exc:
            log.warning("cannot read the Entra ID signing keys: %s", exc)
            raise self._refuse("signing keys unavailable") from None
        if key is None:
            raise self._refuse("unknown signing key")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=list(ALGORITHMS),
                audience=list(self.config.audiences),
                issuer=issuers,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise self._refuse(type(exc).__name__) from None
        if not isinstance(claims.get("oid"), str) or not claims["oid"]:
            raise self._refuse("no oid claim")
        tid = claims.get("tid")
        if tid is not None and tid != self.config.tenant_id:
            raise self._refuse("another tenant")
        return claims

    def _issuers(self) -> Sequence[str]:
        return [self.keys.issuer(), *self.config.issuers]

    @staticmethod
    def _refuse(reason: str) -> AuthFailure:
        log.info("refused an Entra ID token: %s", reason)
        return unauthenticated()


def _strings(value: Any) -> set[str]:
    if isinstance(value, list):
        return {item for item in value if isinstance(item, str)}
    return set()


def _display_name(claims: dict[str, Any]) -> str | None:
    for name in ("upn", "preferred_username", "unique_name", "name"):
        value = claims.get(name)
        if isinstance(value, str) and value:
            return value
    return None
