"""Password hashing with scrypt (stdlib `hashlib.scrypt`), checked in constant time.

Stored as `scrypt$<n>$<r>$<p>$<salt b64>$<hash b64>`, so the cost can be raised later without
invalidating existing hashes. n=2**15, r=8, p=1 takes ~32 MiB and ~70 ms on one core here:
slow enough for an offline guess to be expensive, which is why a verified credential is
cached (`credentials.CredentialCache`) instead of paying this on every request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

N, R, P = 2**15, 8, 1
_SALT_BYTES = 16
_HASH_BYTES = 32
MIN_LENGTH = 12  # MLflow's own rule (mlflow.utils.validation._validate_password)


def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=n,
        r=r,
        p=p,
        maxmem=2 * 128 * r * (n + p + 2),
        dklen=_HASH_BYTES,
    )


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(_SALT_BYTES)
    digest = _derive(password, salt, N, R, P)
    return "$".join(("scrypt", str(N), str(R), str(P), _b64(salt), _b64(digest)))


def verify_password(password: str, stored: str | None) -> bool:
    """Whether `password` matches `stored`; a missing or malformed hash never matches, but
    still costs one derivation, so the time taken does not tell whether the user exists."""
    try:
        scheme, n, r, p, salt, digest = (stored or "").split("$")
        if scheme != "scrypt":
            raise ValueError(scheme)
        expected = base64.b64decode(digest)
        actual = _derive(password, base64.b64decode(salt), int(n), int(r), int(p))
    except (ValueError, TypeError):
        _derive(password, b"\0" * _SALT_BYTES, N, R, P)
        return False
    return hmac.compare_digest(actual, expected)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
