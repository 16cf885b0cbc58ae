"""The int64 range: the one bound on integers that reach SQL or the protocol.

Protobuf's int64 fields and the store's BIGINT columns hold the same integers on both
backends. An integer outside the range must never be bound to a statement (SQLite raises
OverflowError, PostgreSQL an out-of-range error: a 500 either way), so every caller either
refuses it first (`in_range`) or, where MLflow compares it with a number, widens it to a float
(`bindable`), which keeps its order against every int64.

Some key columns are INTEGER (experiment ids, as in MLflow's schema): 32 bits on PostgreSQL.
A request's int64 compared with one must be bound as a BIGINT (`bigint`): psycopg casts a
parameter to its column's type (`::INTEGER`), which fails beyond int32, while an int8 parameter
compares with an int4 column through PostgreSQL's cross-type operators (index included) and
simply matches nothing, as the value matches nothing on SQLite.
"""

from __future__ import annotations

import math

import sqlalchemy as sa
from sqlalchemy.sql.elements import BindParameter

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def in_range(number: int) -> bool:
    return INT64_MIN <= number <= INT64_MAX


def bindable(number: int) -> int | float:
    """`number`, or beyond int64 the float of it (same order against every int64): it binds.

    Beyond a double's range (about 1.8e308) the float is an infinity of the same sign, which
    keeps that order too (against every finite double as well) and binds on both backends.
    """
    if in_range(number):
        return number
    try:
        return float(number)
    except OverflowError:  # float() refuses rather than rounds to infinity
        return math.inf if number > 0 else -math.inf


def bigint(number: int) -> BindParameter[int]:
    """`number` (an int64) as a BIGINT parameter, for comparing with an INTEGER column."""
    return sa.literal(number, sa.BigInteger)
