"""Fixtures for the trace tests: the reference `mlflow server` and Tether side by side."""

from __future__ import annotations

import pytest

pytest.register_assert_rewrite("traces.tracediff", "compat.diff")

from support import MlflowRest  # noqa: E402
from traces.tracediff import TracePair  # noqa: E402


@pytest.fixture
def pair(reference_rest: MlflowRest, tether_rest: MlflowRest) -> TracePair:
    """`pair.same3("GET", "traces/<id>")`: runs once per Tether backend."""
    return TracePair(reference_rest, tether_rest)
