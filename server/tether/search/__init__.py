"""MLflow's search grammar (filters, order_by, page tokens) translated into SQL."""

from tether.search.experiments import search_experiment_ids
from tether.search.filter_parser import (
    Comparison,
    OrderBy,
    parse_experiment_filter,
    parse_experiment_order_by,
    parse_order_by,
    parse_search_filter,
)
from tether.search.page_token import create_page_token, parse_page_token
from tether.search.runs import search_run_ids

__all__ = [
    "Comparison",
    "OrderBy",
    "create_page_token",
    "parse_experiment_filter",
    "parse_experiment_order_by",
    "parse_order_by",
    "parse_page_token",
    "parse_search_filter",
    "search_experiment_ids",
    "search_run_ids",
]
