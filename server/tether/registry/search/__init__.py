"""`search-registered-models` / `search-model-versions`, as MLflow's SQL store does them.

`filters` and `order_by` read the request as MLflow's registry does (its grammar, checks and
messages); `sql` turns the result into one paged query.
"""

from tether.registry.search.filters import Clause, parse_model_filter, parse_version_filter
from tether.registry.search.order_by import parse_model_order_by, parse_version_order_by
from tether.registry.search.sql import (
    MODEL_MAX_RESULTS_THRESHOLD,
    VERSION_MAX_RESULTS_THRESHOLD,
    search_model_ids,
    search_version_keys,
)

__all__ = [
    "MODEL_MAX_RESULTS_THRESHOLD",
    "VERSION_MAX_RESULTS_THRESHOLD",
    "Clause",
    "parse_model_filter",
    "parse_model_order_by",
    "parse_version_filter",
    "parse_version_order_by",
    "search_model_ids",
    "search_version_keys",
]
