"""Structural comparison of a Tether result with the reference server's, path by path."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any


def differences(got: Any, expected: Any, path: str = "$") -> list[str]:
    """Every place where `got` (Tether) differs from `expected` (reference), as readable lines."""
    if isinstance(got, dict) and isinstance(expected, dict):
        out = []
        for key in list(expected) + [k for k in got if k not in expected]:
            if key not in got:
                out.append(f"{path}.{key}: missing on Tether (reference: {_short(expected[key])})")
            elif key not in expected:
                out.append(f"{path}.{key}: only on Tether ({_short(got[key])})")
            else:
                out.extend(differences(got[key], expected[key], f"{path}.{key}"))
        return out
    if isinstance(got, list) and isinstance(expected, list) and len(got) == len(expected):
        return [
            line
            for i, (g, e) in enumerate(zip(got, expected, strict=True))
            for line in differences(g, e, f"{path}[{i}]")
        ]
    if got != expected:
        return [f"{path}: Tether {_short(got)} != reference {_short(expected)}"]
    return []


def assert_same(got: Any, expected: Any) -> None:
    diffs = differences(got, expected)
    assert not diffs, f"{len(diffs)} difference(s) from the reference:\n" + "\n".join(diffs[:40])


def scrub(obj: Any, text: Callable[[str], str]) -> Any:
    """`obj` as plain comparable data: `text` applied to every string (dict keys too), tuples
    as lists, NaN and infinities as their repr. Scenarios use it to put labels in place of
    generated ids and unique names."""
    if isinstance(obj, str):
        return text(obj)
    if isinstance(obj, dict):
        return {scrub(k, text): scrub(v, text) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [scrub(v, text) for v in obj]
    if isinstance(obj, float) and (math.isnan(obj) or math.isinf(obj)):
        return repr(obj)
    return obj


def sorted_sets(message: str) -> str:
    """`message` with the items of each `{...}` set literal sorted: MLflow prints Python sets,
    whose order changes from process to process."""

    def sort_items(match: re.Match[str]) -> str:
        return "{" + ", ".join(sorted(match.group(1).split(", "))) + "}"

    return re.sub(r"\{([^{}]*)\}", sort_items, message)


def _short(value: Any, limit: int = 600) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
