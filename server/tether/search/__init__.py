"""MLflow's search grammar (filters, order_by, page tokens) translated into SQL."""

from tether.search.experiments import search_experiment_ids
from tether.search.filter_parser import parse_experiment_filter, parse_search_filter
from tether.search.grammar import Comparison, OrderBy
from tether.search.order_by import parse_experiment_order_by, parse_order_by
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
