"""MLflow's own parsers (the installed package) as test oracles for ours.

An outcome is ("OK", result), ("ERR", message) or ("CRASH", repr): "CRASH" is an exception
other than MlflowException / MlflowError (on MLflow's side a bug: a 500 from `mlflow server`;
on ours always a test failure). The search tests (tests/search/mlflow_oracle.py) and the
registry's parser tests build their (MLflow, ours) pairs from these pieces.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from mlflow.exceptions import MlflowException

from tether.errors import MlflowError

from .compare import sorted_sets

Outcome = tuple[str, Any]


def outcome(func: Callable[..., Any], *args: Any) -> Outcome:
    try:
        return ("OK", func(*args))
    except (MlflowException, MlflowError) as exc:
        return ("ERR", exc.message)
    except Exception as exc:
        return ("CRASH", repr(exc))


def assert_agrees(mlflow_outcome: Outcome, ours: Outcome) -> None:
    """Both accept with equal results, or both refuse with the same message (set literals in
    it compared sorted: MLflow prints Python sets in hash order). Ours never crashes."""
    assert ours[0] != "CRASH", ours
    assert ours[0] == mlflow_outcome[0], (mlflow_outcome, ours)
    if ours[0] == "OK":
        assert ours == mlflow_outcome
    else:
        assert sorted_sets(ours[1]) == sorted_sets(mlflow_outcome[1])


def assert_fuzz_agrees(
    text: str,
    mlflow_outcome: Outcome,
    ours: Outcome,
    allowed: Callable[[Outcome, Outcome], bool],
) -> None:
    """Never a crash of ours; equal results where both accept; a verdict that differs from
    MLflow's only where `allowed(mlflow_outcome, ours)` says so (a documented divergence)."""
    assert ours[0] != "CRASH", (text, ours)
    if mlflow_outcome[0] == ours[0] == "OK":
        assert ours == mlflow_outcome, text
    elif mlflow_outcome[0] != ours[0]:
        assert allowed(mlflow_outcome, ours), (text, mlflow_outcome, ours)


def random_filter(
    rng: random.Random,
    *,
    idents: Sequence[str],
    comparators: Sequence[str],
    values: Sequence[str],
    noise: Sequence[str],
    joiners: Sequence[str] = (" AND ",),
) -> str:
    """One to three clauses, mostly `<ident> <comparator> [<value>]`, sometimes noise words,
    joined by one of `joiners` (a single joiner is used without drawing a random number)."""
    clauses = []
    for _ in range(rng.randint(1, 3)):
        if rng.random() < 0.85:
            comparator = rng.choice(comparators)
            clause = f"{rng.choice(idents)} {comparator}"
            if "NULL" not in comparator.upper():
                clause += " " + rng.choice(values)
        else:
            words = [*noise, *idents]
            clause = " ".join(rng.choice(words) for _ in range(rng.randint(1, 4)))
        clauses.append(clause)
    joiner = joiners[0] if len(joiners) == 1 else rng.choice(joiners)
    return joiner.join(clauses)


def random_texts(rng: random.Random, alphabet: str, count: int) -> Iterator[str]:
    """`count` strings of 0 to 30 characters of `alphabet` (parsers must refuse, not crash)."""
    for _ in range(count):
        yield "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
