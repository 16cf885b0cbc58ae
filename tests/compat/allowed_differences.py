"""The one list of fields in which Tether's answers may differ from the reference server's.

Every differential helper (`compat.diff`, `logged_models.lmdiff`, `registry.helpers`, the
GraphQL differential) compares whole normalised bodies: a field the reference answers and
Tether does not, or the reverse, fails the test unless it is listed here with its reason. So a
new MLflow release's new fields show up as failing tests instead of silently passing.

An entry names the field, where it may appear (`error`: the top level of an error body;
`anywhere`: at any depth) and the side that may have it alone (`ref`, `tet` or `both`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Allowed:
    field: str
    where: Literal["error", "anywhere"]
    side: Literal["ref", "tet", "both"]
    reason: str


ALLOWED: tuple[Allowed, ...] = (
    Allowed(
        "sqlstate",
        "error",
        "ref",
        "MLflow 3.x's error classification (a SQLSTATE code); no MLflow client reads it.",
    ),
    Allowed(
        "error_class",
        "error",
        "ref",
        "MLflow 3.x's error classification (a class name); no MLflow client reads it.",
    ),
)


def allowed(field: str, side: str, *, top_of_error: bool) -> bool:
    """Whether `field` on `side` ("ref" or "tet") is left out of the comparison."""
    return any(
        entry.field == field
        and entry.side in (side, "both")
        and (entry.where == "anywhere" or top_of_error)
        for entry in ALLOWED
    )
