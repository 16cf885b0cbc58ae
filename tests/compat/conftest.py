"""Fixtures for differential tests: the reference `mlflow server` and Tether side by side."""

from __future__ import annotations

import pytest

pytest.register_assert_rewrite("compat.diff")

from compat.diff import Pair  # noqa: E402
from support import MlflowRest  # noqa: E402


@pytest.fixture
def pair(reference_rest: MlflowRest, tether_rest: MlflowRest) -> Pair:
    """`pair.same("GET", "runs/get", {"run_id": run})`: runs once per Tether backend."""
    return Pair(reference_rest, tether_rest)
