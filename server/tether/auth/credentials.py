"""Who a request's Authorization header signs in: HTTP basic, a personal access token, or a
Microsoft Entra ID access token (both bearer tokens, as `MLFLOW_TRACKING_TOKEN` sends them).

Basic credentials are checked with scrypt once, then remembered (`CredentialCache`): a
training loop sends the same credentials thousands of times, and the KDF costs ~70 ms of CPU
by design. The cache key is an HMAC of the password under a per-process random key (the
password itself is never kept), and an entry is only trusted while the user's stored hash is
the one it was verified against: the user row is read on every request, so a changed
password or a deleted user stops working at once, in every worker, without any
invalidation message.

Every refusal is the same 401 whatever the reason (unknown user, wrong password, unknown or
expired token), and an unknown user costs one KDF run like a known one, so answers do not
tell which users exist. Failures are counted per username and per client address
(`FailureLimiter`): past the limit, 429 until the window has passed. No credential, token or
hash is ever put in a message or a log line.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

from tether.auth import passwords
from tether.auth.permissions import Grant
from tether.auth.store import TOKEN_PREFIX, AuthStore, User
from tether.clock import now_ms
from tether.errors import MlflowError

log = logging.getLogger("tether.auth")

NOT_AUTHENTICATED = (
    "You are not authenticated. Please see "
    "https://www.mlflow.org/docs/latest/auth/index.html#authenticating-to-mlflow "
    "on how to authenticate."
)


@dataclass(frozen=True)
class Identity:
    """The signed-in caller. `default_permission` overrides the configured default for this
    caller (Entra ID group or app-role mapping)."""

    user_id: int
    username: str
    is_admin: bool
    via: str  # "password", "token" or "entra"
    display_name: str | None = None
    default_permission: str | None = None
    grants: tuple[Grant, ...] = ()  # read with the user, at sign-in


class AuthFailure(MlflowError):
    """A refused sign-in: 401 (with the Basic challenge) or 429 (with Retry-After)."""

    def __init__(self, message: str, error_code: str, retry_after: int | None = None) -> None:
        super().__init__(message, error_code)
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        if self.retry_after is not None:
            return {"Retry-After": str(self.retry_after)}
        return {"WWW-Authenticate": 'Basic realm="mlflow"'}


def unauthenticated() -> AuthFailure:
    return AuthFailure(NOT_AUTHENTICATED, "UNAUTHENTICATED")


class CredentialCache:
    """Verified (username, password) pairs for `ttl` seconds, at most `size` of them."""

    def __init__(self, ttl: float, size: int = 10_000) -> None:
        self.ttl = ttl
        self.size = size
        self._key = secrets.token_bytes(32)
        self._entries: OrderedDict[tuple[str, bytes], tuple[float, str]] = OrderedDict()
        self._lock = threading.Lock()

    def _digest(self, username: str, password: str) -> tuple[str, bytes]:
        return username, hmac.new(self._key, password.encode("utf-8"), hashlib.sha256).digest()

    def verified(self, username: str, password: str, stored_hash: str | None) -> bool:
        if self.ttl <= 0 or stored_hash is None:
            return False
        key = self._digest(username, password)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return False
            expires, verified_hash = entry
            if expires < time.monotonic() or not hmac.compare_digest(verified_hash, stored_hash):
                del self._entries[key]
                return False
            return True

    def remember(self, username: str, password: str, stored_hash: str) -> None:
        if self.ttl <= 0:
            return
        key = self._digest(username, password)
        with self._lock:
            self._entries[key] = (time.monotonic() + self.ttl, stored_hash)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def forget(self, username: str) -> None:
        with self._lock:
            for key in [k for k in self._entries if k[0] == username]:
                del self._entries[key]


class FailureLimiter:
    """Failed sign-ins in a sliding window, per key ("user:<name>", "client:<address>")."""

    def __init__(
        self,
        per_user: int,
        per_client: int,
        window: float,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        self.limits = {"user": per_user, "client": per_client}
        self.window = window
        self.clock = clock
        self.max_keys = max_keys
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float] | None:
        times = self._failures.get(key)
        if times is None:
            return None
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        return times

    def retry_after(self, *keys: str) -> int | None:
        """Seconds until the first blocked key may try again, or None if none is blocked."""
        now = self.clock()
        waits = []
        with self._lock:
            for key in keys:
                limit = self.limits[key.split(":", 1)[0]]
                times = self._recent(key, now)
                if times is not None and len(times) >= limit:
                    waits.append(int(times[-limit] + self.window - now) + 1)
        return max(waits) if waits else None

    def fail(self, *keys: str) -> None:
        now = self.clock()
        with self._lock:
            for key in keys:
                times = self._recent(key, now) or deque()
                times.append(now)
                self._failures[key] = times
                self._failures.move_to_end(key)
            while len(self._failures) > self.max_keys:
                self._failures.popitem(last=False)


def parse_basic(value: str) -> tuple[str, str] | None:
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    username, sep, password = decoded.partition(":")
    if not sep:
        return None
    return username, password


class Authenticator:
    """Signs requests in (called from a worker thread: it reads the store and may run the
    KDF). `entra` validates Entra ID tokens when configured."""

    def __init__(
        self,
        store: AuthStore,
        cache: CredentialCache,
        limiter: FailureLimiter,
        entra: Callable[[str], Identity] | None = None,
    ) -> None:
        self.store = store
        self.cache = cache
        self.limiter = limiter
        self.entra = entra

    def authenticate(self, authorization: str, client: str) -> Identity:
        scheme, _, value = authorization.partition(" ")
        scheme = scheme.lower()
        if scheme == "basic":
            credentials = parse_basic(value)
            if credentials is None:
                self._refuse(None, client)
            assert credentials is not None
            return self._basic(*credentials, client)
        if scheme == "bearer" and value.strip():
            return self._bearer(value.strip(), client)
        self._refuse(None, client)
        raise AssertionError("unreachable")

    def _blocked(self, keys: list[str]) -> None:
        wait = self.limiter.retry_after(*keys)
        if wait is not None:
            raise AuthFailure(
                "Too many failed sign-in attempts: try again later.",
                "REQUEST_LIMIT_EXCEEDED",
                retry_after=wait,
            )

    def _refuse(self, username: str | None, client: str) -> None:
        keys = [f"client:{client}"] + ([f"user:{username}"] if username is not None else [])
        self.limiter.fail(*keys)
        raise unauthenticated()

    def _basic(self, username: str, password: str, client: str) -> Identity:
        user = self.store.signing_in(username)
        stored = user.password_hash if user is not None else None
        if user is not None and self.cache.verified(username, password, stored):
            return _identity(user, "password")
        self._blocked([f"user:{username}", f"client:{client}"])
        # The KDF runs for an unknown user too: the time taken tells nothing.
        matches = passwords.verify_password(password, stored)
        if user is None or not matches:
            log.info("refused a sign-in from %s", client)
            self._refuse(username, client)
        assert user is not None and stored is not None
        self.cache.remember(username, password, stored)
        return _identity(user, "password")

    def _bearer(self, token: str, client: str) -> Identity:
        self._blocked([f"client:{client}"])
        if token.startswith(TOKEN_PREFIX):
            user = self.store.user_for_token(token, now_ms())
            if user is None:
                log.info("refused an access token from %s", client)
                self._refuse(None, client)
            assert user is not None
            return _identity(user, "token")
        if self.entra is not None:
            try:
                return self.entra(token)
            except AuthFailure:
                self.limiter.fail(f"client:{client}")
                raise
        self._refuse(None, client)
        raise AssertionError("unreachable")


def _identity(user: User, via: str) -> Identity:
    return Identity(
        user.id, user.username, user.is_admin, via, user.display_name, grants=user.grants
    )
