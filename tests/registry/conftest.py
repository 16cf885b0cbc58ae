"""Fixtures for the registry's differential tests (helpers in `registry.helpers`)."""

from __future__ import annotations

import pytest

pytest.register_assert_rewrite("compat.diff", "registry.helpers")

from registry.helpers import RegistryPair  # noqa: E402
from support import MlflowRest  # noqa: E402


@pytest.fixture
def pair(reference_rest: MlflowRest, tether_rest: MlflowRest) -> RegistryPair:
    """The reference server and Tether side by side; runs once per Tether backend."""
    return RegistryPair(reference_rest, tether_rest)
