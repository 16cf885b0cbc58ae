"""Secrets that must never reach a log line or a readiness report, and how they are masked."""

from __future__ import annotations

import re
from collections.abc import Callable

MASK = "[REDACTED]"


def _authorization(match: re.Match[str]) -> str:
    scheme = f"{match[2]} " if match[2] else ""
    return f"{match[1]}{scheme}{MASK}"


# (pattern, replacement) applied in order; each keeps the name and masks the value.
_RULES: tuple[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]], ...] = (
    # SAS signatures in blob URLs (also when percent-encoded inside another URL).
    (re.compile(r"(?i)\b(sig(?:=|%3D))[^&\s\"'<>]+"), rf"\g<1>{MASK}"),
    # Authorization headers in any rendering (dict repr, HTTP text, JSON), any scheme.
    (
        re.compile(
            r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?)(?:(bearer|basic|sharedkey|token)\s+)?"
            r"[^\"'\s,;}]+"
        ),
        _authorization,
    ),
    # A bare bearer token (e.g. in an exception text or a percent-encoded path).
    (
        re.compile(r"(?i)\b(bearer)(?:\s+|%20|\+)(?!\[REDACTED\])[A-Za-z0-9._~+/=%-]+"),
        rf"\g<1> {MASK}",
    ),
    # Connection-string and query-string secrets.
    (
        re.compile(
            r"(?i)\b(accountkey|sharedaccesskey|sharedaccesssignature|client_secret|password)"
            r"=[^;&\s\"']+"
        ),
        rf"\g<1>={MASK}",
    ),
    # The password of a database (or any) URI: scheme://user:password@host.
    (re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^:/@\s\"']*:)[^@\s\"'/]+@"), r"\g<1>***@"),
)


# Every rule above needs one of these: text without any (nearly every access-log line) is
# returned after one scan instead of five substitutions.
_TRIGGER = re.compile(
    r"(?i)sig(?:=|%3D)|authorization|bearer|accountkey|sharedaccess|client_secret|password|://"
)


def redact(text: str) -> str:
    if not text or _TRIGGER.search(text) is None:
        return text
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return text


def redact_query(query: str) -> str:
    """A request's query string for the access log: SAS signatures masked."""
    return redact(query) if query else query
