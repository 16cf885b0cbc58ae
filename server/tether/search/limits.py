"""Bounds on what one search request may ask for, and the page-size limits of run and
experiment searches (with MLflow's store's messages).

Every search (runs, experiments, logged models, registered models, model versions) is held to
the same bounds, each well above what the MLflow clients and UI send, and each refused with
400 INVALID_PARAMETER_VALUE before any SQL runs. Without them one request could take seconds
of CPU or crash the store: 1,001 AND-ed clauses passed SQLite's expression depth (a 500), 31
order_by keys made SQLite 3.40 segfault (64 ORDER BY terms: the server died), PostgreSQL
planned 100 EXISTS clauses for 60 s, and a 2-million-item IN list took 34 s to tokenize.

(The registry and logged-model searches have their own page-size bounds and wording, as in
MLflow; they live with those searches.)
"""

from __future__ import annotations

from collections.abc import Sized

from tether.errors import invalid_parameter

# MLflow's SEARCH_MAX_RESULTS_THRESHOLD.
MAX_RESULTS_THRESHOLD = 50000

# A filter string, in characters: room for an IN list of 5,000 run ids (MLflow's parser
# refuses more) or a registry tag value (100,000 characters) compared in full.
MAX_FILTER_LENGTH = 250_000
# Tokens of a filter or order_by clause: twice what MLflow's parser (sqlparse) accepts in one
# group (10,000), so an IN list of up to 10,000 values.
MAX_FILTER_TOKENS = 20_000
# AND-ed clauses of one filter: hand-written filters have a handful; a generated one (every
# param of a config) a few dozen. SQLite refuses around 1,000 (expression depth).
MAX_FILTER_CLAUSES = 250
# order_by keys: each sorts on a join; SQLite 3.40 crashed at 31 run keys (64 ORDER BY terms).
MAX_ORDER_BY_KEYS = 20
# A LIKE / ILIKE pattern, in characters: SQLite refuses patterns over 50,000 bytes (a pattern
# becomes a GLOB up to 3 bytes per character, or 4 bytes of UTF-8).
MAX_PATTERN_LENGTH = 10_000
# Experiment ids of one runs or logged-models search (`search_all_experiments` sends every
# experiment's id): each is a bound SQL parameter.
MAX_EXPERIMENT_IDS = 10_000
# A page token, in characters: a logged-models token carries the search's filter, order_by
# and experiment ids (base64: 4/3 of their size).
MAX_PAGE_TOKEN_LENGTH = 1_000_000


def check_size(what: str, items: Sized, limit: int, unit: str) -> None:
    """Refuse `items` (a string, a list) longer than `limit`: "<what> has N <unit>, the limit
    is <limit>"."""
    size = len(items)
    if size > limit:
        raise invalid_parameter(f"{what} has {size} {unit}, the limit is {limit}.")


def check_order_by(order_by: Sized | None) -> None:
    if order_by is not None:
        check_size("order_by", order_by, MAX_ORDER_BY_KEYS, "keys")


def check_page_token(page_token: str | None) -> None:
    if page_token:
        check_size("The page token", page_token, MAX_PAGE_TOKEN_LENGTH, "characters")


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
