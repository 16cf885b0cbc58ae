"""Azure ML's limits as the worker applies them: deterministic, and every refusal reported."""

from __future__ import annotations

import re

import pytest

from tether.sync.limits import TagBudget, admit_params, azure_experiment_name
from tether.sync.state import Report

AZURE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,255}")  # docs/azureml-protocol.md §4.1


@pytest.mark.parametrize("name", ["Default", "exp-1", "a_b", "X" * 256])
def test_allowed_names_are_kept(name: str) -> None:
    assert azure_experiment_name(name) == name


@pytest.mark.parametrize(
    "name", ["/Users/me/exp", "my exp", "v1.2", "_private", "ü", "-", "x" * 300, "a/b c.d"]
)
def test_other_names_map_into_azure_charset_deterministically(name: str) -> None:
    mapped = azure_experiment_name(name)
    assert AZURE_NAME.fullmatch(mapped), mapped
    assert mapped == azure_experiment_name(name)


def test_names_that_sanitize_alike_stay_apart() -> None:
    names = ["a/b", "a b", "a.b", "a_b-"]
    mapped = {azure_experiment_name(n) for n in names}
    assert len(mapped) == len(names)
    # The salted fallback (name taken in Azure by someone else) differs from the plain form.
    assert azure_experiment_name("Default", salt="3") != "Default"
    assert AZURE_NAME.fullmatch(azure_experiment_name("Default", salt="3"))


def test_tag_budget_truncates_and_skips_with_reasons() -> None:
    reports: list[Report] = []
    budget = TagBudget({"existing"}, max_tags=2)
    sent = budget.admit(
        {"existing": "v", "long": "x" * 1500, "k" * 101: "v", "one-too-many": "v"}, reports
    )
    assert sent == {"existing": "v", "long": "x" * 1000}
    assert [(r.kind, r.subject) for r in reports] == [
        ("truncated", "tag:long"),
        ("skipped", f"tag:{'k' * 101}"),
        ("skipped", "tag:one-too-many"),
    ]
    # An already present key may always be overwritten, even at the cap.
    assert budget.admit({"existing": "w"}, reports) == {"existing": "w"}


def test_params_beyond_200_per_run_are_skipped_and_reported() -> None:
    reports: list[Report] = []
    params = {f"p{i}": str(i) for i in range(30)}
    kept, total = admit_params(params, 180, reports)
    assert list(kept) == [f"p{i}" for i in range(20)] and total == 200
    assert [r.subject for r in reports] == [f"param:p{i}" for i in range(20, 30)]
