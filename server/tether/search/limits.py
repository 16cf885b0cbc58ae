"""Page-size limits of run and experiment searches, with MLflow's store's messages.

(The registry and logged-model searches have their own bounds and wording, as in MLflow; they
live with those searches.)
"""

from __future__ import annotations

from tether.errors import invalid_parameter

# MLflow's SEARCH_MAX_RESULTS_THRESHOLD.
MAX_RESULTS_THRESHOLD = 50000


def validate_max_results(max_results: int, threshold: int = MAX_RESULTS_THRESHOLD) -> None:
    """MLflow's `_validate_max_results_param`: a positive integer no larger than `threshold`."""
    if isinstance(max_results, bool) or not isinstance(max_results, int) or max_results < 1:
        raise invalid_parameter(
            f"Invalid value {max_results} for parameter 'max_results' supplied. It must be "
            "a positive integer"
        )
    if max_results > threshold:
        raise invalid_parameter(
            f"Invalid value {max_results} for parameter 'max_results' supplied. It must be at "
            f"most {threshold}"
        )
