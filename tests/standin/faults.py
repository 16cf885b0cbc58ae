"""Fault plans: "the next N requests matching this path regex get that treatment".

A rule (JSON, `POST /_standin/faults`, a single rule or a list):

    {"path": "runs/create$",      # re.search against the request path (no query); default ".*"
     "method": "POST",             # optional, case-insensitive
     "times": 1,                   # how many matching requests it hits; null = until cleared
     "action": "status",           # see ACTIONS
     "status": 503,                # action "status": 5xx, 429, 408, ...
     "retry_after": "2",           # optional Retry-After header value (429/503)
     "body": null,                 # optional body to send instead of the Azure-shaped default
     "seconds": 1.5,               # action "delay": wait, then handle normally
     "issued_before": 1790000000.0,# action "reject_tokens": default = when the rule was added
     "every": 7                    # optional: only every 7th matching request (7th, 14th, ...)
    }

Actions (docs/azureml-protocol.md §7.1, §7.3, §8.2 items 6 and 7):
- `status`: answer `status` without touching the backend (throttling / outage);
- `drop`: close the connection without a response, before anything is applied (reset);
- `lost_response`: apply the request (forward it to MLflow / record the artifacts), then close
  the connection without sending the response (ambiguous outcome of a committed write);
- `delay`: sleep `seconds`, then handle normally (client timeouts);
- `reject_tokens`: 401 for tokens issued before `issued_before` (token expiry / revocation);
  checked in the auth step, so a fresh token gets through.
Authenticated requests only consume `status`/`drop`/`lost_response`/`delay` rules (a request
refused with 401 does not use them up). Rules are tried in the order they were added; an
`every` rule counts every request it matches (even one another rule took), so two of them
("a 429 every 7th request, a 503 every 11th") keep their own rhythm.
"""

from __future__ import annotations

import itertools
import re
import time
from dataclasses import dataclass, field
from typing import Any

ACTIONS = ("status", "drop", "lost_response", "delay", "reject_tokens")

_ids = itertools.count(1)


@dataclass
class FaultRule:
    action: str
    path: str = ".*"
    method: str | None = None
    times: int | None = 1
    status: int = 503
    retry_after: str | None = None
    body: Any = None
    seconds: float = 0.0
    issued_before: float = 0.0
    every: int | None = None
    id: int = field(default_factory=lambda: next(_ids))
    hits: int = 0
    seen: int = 0  # requests matched so far (what `every` counts)
    _regex: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown fault action {self.action!r}; known: {ACTIONS}")
        if self.times is not None and self.times < 0:
            raise ValueError("times must be >= 0 or null")
        if self.every is not None and self.every < 1:
            raise ValueError("every must be >= 1 or null")
        self._regex = re.compile(self.path)
        if self.method is not None:
            self.method = self.method.upper()
        if self.action == "reject_tokens" and not self.issued_before:
            self.issued_before = time.time()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FaultRule:
        allowed = {
            "action",
            "path",
            "method",
            "times",
            "status",
            "retry_after",
            "body",
            "seconds",
            "issued_before",
            "every",
        }
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(f"unknown fault fields {sorted(unknown)}")
        if "retry_after" in data and data["retry_after"] is not None:
            data = {**data, "retry_after": str(data["retry_after"])}
        return cls(**data)

    def matches(self, method: str, path: str) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        if self.method is not None and self.method != method.upper():
            return False
        return self._regex.search(path) is not None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "action": self.action,
            "path": self.path,
            "method": self.method,
            "times": self.times,
            "hits": self.hits,
            "status": self.status,
            "retry_after": self.retry_after,
            "seconds": self.seconds,
            "issued_before": self.issued_before,
            "every": self.every,
            "seen": self.seen,
        }


class FaultPlan:
    def __init__(self) -> None:
        self.rules: list[FaultRule] = []

    def add(self, data: dict[str, Any] | list[dict[str, Any]]) -> list[FaultRule]:
        items = data if isinstance(data, list) else [data]
        rules = [FaultRule.from_json(dict(item)) for item in items]
        self.rules.extend(rules)
        return rules

    def clear(self) -> None:
        self.rules.clear()

    def take(self, method: str, path: str) -> FaultRule | None:
        """The first live non-token rule matching the request (for an `every` rule: on its
        turn), counted as used. Every `every` rule that matches counts the request."""
        chosen = None
        for rule in self.rules:
            if rule.action == "reject_tokens" or not rule.matches(method, path):
                continue
            if rule.every is not None:
                rule.seen += 1
                if rule.seen % rule.every:
                    continue
            if chosen is None:
                chosen = rule
        if chosen is not None:
            chosen.hits += 1
        return chosen

    def rejects_token(self, method: str, path: str, issued_at: float) -> FaultRule | None:
        for rule in self.rules:
            if rule.action != "reject_tokens" or not rule.matches(method, path):
                continue
            if issued_at < rule.issued_before:
                rule.hits += 1
                return rule
        return None

    def as_json(self) -> list[dict[str, Any]]:
        return [rule.as_json() for rule in self.rules]
