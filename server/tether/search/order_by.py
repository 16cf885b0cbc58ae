"""Run and experiment order_by clauses (`ident [ASC | DESC]`), parsed as MLflow parses them."""

from __future__ import annotations

from tether.errors import invalid_parameter
from tether.search.grammar import (
    ATTRIBUTE,
    ATTRIBUTE_ALIASES,
    DATASET,
    EXPERIMENT_ORDER_BY_ATTRIBUTES,
    RUN_ORDER_BY_ATTRIBUTES,
    OrderBy,
)
from tether.search.identifiers import experiment_identifier, run_identifier
from tether.search.limits import MAX_FILTER_LENGTH, check_size
from tether.search.tokenizer import IDENT, STRING, Segment, tokenize


def parse_order_by_tokens(order_by: str) -> tuple[list[Segment], bool]:
    """(identifier segments, ascending) of `ident [ASC|DESC]`, with MLflow's messages."""
    could_not_parse = invalid_parameter(
        f"Invalid order_by clause '{order_by}'. Could not be parsed."
    )
    if not isinstance(order_by, str):
        raise could_not_parse
    check_size("The order_by clause", order_by, MAX_FILTER_LENGTH, "characters")
    try:
        tokens = tokenize(order_by)
    except Exception:
        raise could_not_parse from None
    if not tokens:
        raise could_not_parse
    first = tokens[0]
    if first.kind == STRING and first.quote == '"':
        segments = [Segment(first.raw[1:-1], '"')]
    elif first.kind == IDENT:
        segments = list(first.segments)
    else:
        raise could_not_parse
    if len(tokens) == 1:
        return segments, True
    if len(tokens) == 2 and tokens[1].kind == IDENT and len(tokens[1].segments) == 1:
        direction = tokens[1].segments[0].text.lower()
        if tokens[1].segments[0].quote or direction not in ("asc", "desc"):
            raise invalid_parameter(f"Invalid ordering key in order_by clause '{order_by}'.")
        return segments, direction == "asc"
    raise could_not_parse


def _entity_key_direction(order_by: str) -> tuple[str | None, str, bool]:
    """(entity prefix or None, key, ascending): the first segment is the entity when a key
    follows it."""
    segments, ascending = parse_order_by_tokens(order_by)
    if len(segments) == 1:
        return None, segments[0].text, ascending
    return segments[0].text, ".".join(s.text for s in segments[1:]), ascending


def parse_order_by(order_by: str) -> OrderBy:
    """Parse one `search_runs` order_by clause: `metrics.x DESC`, `attributes.start_time`..."""
    entity_raw, key, ascending = _entity_key_direction(order_by)
    entity, key = run_identifier(entity_raw, key, RUN_ORDER_BY_ATTRIBUTES)
    if entity == ATTRIBUTE:
        key = ATTRIBUTE_ALIASES.get(key, key)
    elif entity == DATASET:
        raise invalid_parameter(f"Invalid identifier type '{entity}'")
    return OrderBy(entity, key, ascending)


def parse_experiment_order_by(order_by: str) -> OrderBy:
    """Parse one `search_experiments` order_by clause (attributes only)."""
    entity_raw, key, ascending = _entity_key_direction(order_by)
    entity, key = experiment_identifier(entity_raw, key, EXPERIMENT_ORDER_BY_ATTRIBUTES)
    if entity != ATTRIBUTE:
        raise invalid_parameter(f"Invalid order_by entity: {entity}")
    return OrderBy(entity, key, ascending)


def check_no_duplicates(order_by: list[str], parsed: list[OrderBy]) -> None:
    """MLflow rejects a run order_by naming the same field twice (after alias resolution)."""
    seen: set[tuple[str, str]] = set()
    for clause in parsed:
        field = (clause.entity, clause.key)
        if field in seen:
            raise invalid_parameter(f"`order_by` contains duplicate fields: {order_by}")
        seen.add(field)
