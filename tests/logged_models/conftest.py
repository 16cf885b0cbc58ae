"""Fixtures for the logged-model tests: the reference `mlflow server` and Tether side by side."""

from __future__ import annotations

import pytest

pytest.register_assert_rewrite("logged_models.lmdiff", "compat.diff")

from logged_models.lmdiff import ModelPair  # noqa: E402
from support import MlflowRest  # noqa: E402


@pytest.fixture
def pair(reference_rest: MlflowRest, tether_rest: MlflowRest) -> ModelPair:
    """`pair.same("GET", ("logged-models/", model))`: runs once per Tether backend."""
    return ModelPair(reference_rest, tether_rest)
