"""A clause's value and comparator, checked as MLflow's search parsers check them.

Shared by the run and experiment filters (`filter_parser`) and the registry's filters
(`tether.registry.search`), which MLflow builds on the same `SearchUtils` helpers, so the
messages are MLflow's and the same wherever the check is the same. Every error is an
`invalid_parameter` `MlflowError`.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from tether.db.int64 import bindable
from tether.errors import invalid_parameter
from tether.search.filter_syntax import ILL_FORMED, RawValue
from tether.search.grammar import Value, fmt_set
from tether.search.tokenizer import IDENT, LPAREN, STRING


def quoted_string(value: RawValue) -> str:
    """The text between the quotes (verbatim, as MLflow keeps it); a bare word is refused."""
    if value.kind == STRING:
        return value.raw[1:-1]
    raise invalid_parameter(
        "Parameter value is either not quoted or unidentified quote "
        f"types used for string value {value.raw}. Use either single or double "
        "quotes.",
    )


def list_items(value: RawValue) -> tuple[str, ...]:
    """The strings of a parenthesised list, or MLflow's message for an ill-formed one."""
    if value.items is None:
        raise invalid_parameter(value.list_error or ILL_FORMED)
    return value.items


def string_or_list(
    key: str, value: RawValue, list_supported: Collection[str]
) -> str | tuple[str, ...] | None:
    """A string attribute's value: a quoted string, or a list where `key` supports one.

    None for a value of neither kind (a number): each grammar words that error its own way.
    """
    if value.kind in (STRING, IDENT):
        return quoted_string(value)
    if value.kind == LPAREN:
        if key not in list_supported:
            raise invalid_parameter(
                f"Only {sorted(list_supported)} attributes support "
                "comparison with a list of quoted string values."
            )
        return list_items(value)
    return None


def key_value_string(entity: str, value: RawValue) -> str:
    """The value of a tag or param clause: a quoted string."""
    if value.kind in (STRING, IDENT):
        return quoted_string(value)
    raise invalid_parameter(
        f"Expected a quoted string value for {entity} (e.g. 'my-value'). Got value {value.raw}"
    )


def number(value: RawValue) -> int | float:
    """A numeric literal; an integer beyond int64 compares as a float rather than fail to bind."""
    if re.fullmatch(r"-?\d+", value.raw):
        return bindable(int(value.raw))
    return float(value.raw)


def check_comparator(allowed: frozenset[str], comparator: str, close_quote: bool = True) -> None:
    if comparator not in allowed:
        quote = "'" if close_quote else ""  # MLflow's messages close the quote for some only
        raise invalid_parameter(
            f"Invalid comparator '{comparator}' not one of '{fmt_set(allowed)}{quote}"
        )


def check_list_use(comparator: str, value: Value, raw: RawValue) -> None:
    """A list goes with IN / NOT IN, and IN / NOT IN with a list."""
    is_list = isinstance(value, tuple)
    if is_list != (comparator in ("IN", "NOT IN")):
        raise invalid_parameter(
            f"Invalid comparison clause: comparator '{comparator}' cannot be used with value "
            f"{raw.raw}. Use IN or NOT IN with a parenthesised list of quoted strings."
        )
