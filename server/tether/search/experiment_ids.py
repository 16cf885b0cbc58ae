"""Experiment ids as MLflow reads them: the one parser for every endpoint that takes one.

MLflow reads every experiment id with the same function (`_parse_experiment_id`: Python's
`int()`, so " 7", "+7" and "1_0" are ids too), on every endpoint and in the `experiment_id`
clauses of a `search_experiments` filter; what differs per endpoint is only *when* it runs
among the other checks, which is each caller's business (`search_runs` and
`search_logged_models` read the ids after the filter, order_by and page token, as MLflow's
store does). So there is one parser here, without variants.

The deliberate differences: an integer beyond int64 fails in MLflow's database (a 500); here
it is refused with MLflow's message for a non-integer, before it reaches SQL. And a search
takes at most `MAX_EXPERIMENT_IDS` ids (each is a bound SQL parameter).
"""

from __future__ import annotations

from collections.abc import Sequence

from tether.db.int64 import in_range
from tether.errors import invalid_parameter
from tether.search.limits import MAX_EXPERIMENT_IDS, check_size


def parse_experiment_id(experiment_id: str | int) -> int:
    """The integer id, or MLflow's INVALID_PARAMETER_VALUE error."""
    try:
        number = int(experiment_id)
    except (TypeError, ValueError):
        number = None
    if number is None or not in_range(number):
        raise invalid_parameter(
            f"Invalid experiment ID '{experiment_id}'. Experiment ID must be a valid integer."
        )
    return number


def parse_experiment_ids(experiment_ids: Sequence[str | int]) -> list[int]:
    """The integer ids, at most `MAX_EXPERIMENT_IDS` of them."""
    check_size("experiment_ids", experiment_ids, MAX_EXPERIMENT_IDS, "ids")
    return [parse_experiment_id(e) for e in experiment_ids]
