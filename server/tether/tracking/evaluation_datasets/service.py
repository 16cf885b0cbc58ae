"""Evaluation-dataset search: the request is checked as MLflow's store checks it (page size,
page token), then nothing is found, since Tether stores no evaluation dataset yet. The filter
and order clauses are not parsed: with no dataset there is nothing to filter or order."""

from __future__ import annotations

from tether.errors import invalid_parameter
from tether.search.page_token import parse_page_token
from tether.tracking.evaluation_datasets.schemas import EvaluationDataset

# MLflow's SEARCH_MAX_RESULTS_THRESHOLD, and its default page (the proto field's default).
MAX_RESULTS = 50000
DEFAULT_MAX_RESULTS = 1000


def search(max_results: int | None, page_token: str) -> tuple[list[EvaluationDataset], str | None]:
    """(datasets, next page token). MLflow's handler passes `max_results or None`, so an
    explicit 0 is refused as "None" (an absent one means the default)."""
    size: int | None = DEFAULT_MAX_RESULTS if max_results is None else (max_results or None)
    if size is None or size < 1:
        raise invalid_parameter(
            f"Invalid value {size} for parameter 'max_results' supplied. "
            "It must be a positive integer"
        )
    if size > MAX_RESULTS:
        raise invalid_parameter(
            f"Invalid value {size} for parameter 'max_results' supplied. "
            f"It must be at most {MAX_RESULTS}"
        )
    parse_page_token(page_token or None)
    return [], None
