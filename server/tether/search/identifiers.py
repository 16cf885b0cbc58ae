"""Identifiers: splitting `entity.key` and resolving the entity and key for runs/experiments."""

from __future__ import annotations

from tether.errors import invalid_parameter
from tether.search.grammar import (
    ATTRIBUTE,
    DATASET,
    DATASET_KEYS,
    ENTITY_ALIASES,
    ENTITY_NAMES,
    EXPERIMENT_ENTITY_TYPES,
    EntityType,
    fmt_set,
)
from tether.search.tokenizer import STRING, Token


def _strip_quotes(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in ("'", '"'):
        return value[1:-1]
    return value


def _trim_backticks(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == "`":
        return value[1:-1]
    return value


def unquote(text: str) -> str:
    """A key as MLflow reads it: one pair of quotes off, then one pair of backticks."""
    return _trim_backticks(_strip_quotes(text))


def split_ident(token: Token) -> tuple[str | None, str]:
    """(raw entity prefix or None, key) the way MLflow splits `identifier.split('.', 1)`."""
    if token.kind == STRING or len(token.segments) == 1:
        return None, unquote(token.raw)
    first = token.segments[0]
    entity_raw = token.raw[: len(first.text) + (2 if first.quote else 0)]
    key_raw = token.raw[len(entity_raw) + 1 :]
    return entity_raw, unquote(key_raw)


def _run_entity_type(entity_raw: str) -> EntityType:
    name = _trim_backticks(entity_raw)
    entity = ENTITY_ALIASES.get(name)
    if entity is None:
        raise invalid_parameter(
            f"Invalid entity type '{name}'. Valid values are {ENTITY_NAMES}",
        )
    return entity


def run_identifier(
    entity_raw: str | None, key: str, valid_attributes: frozenset[str]
) -> tuple[EntityType, str]:
    entity = ATTRIBUTE if entity_raw is None else _run_entity_type(entity_raw)
    if entity == ATTRIBUTE and key not in valid_attributes:
        raise invalid_parameter(
            f"Invalid attribute key '{key}' specified. Valid keys are '{fmt_set(valid_attributes)}'"
        )
    if entity == DATASET and key not in DATASET_KEYS:
        raise invalid_parameter(
            f"Invalid dataset key '{key}' specified. Valid keys are '{fmt_set(DATASET_KEYS)}'"
        )
    return entity, key


def experiment_identifier(
    entity_raw: str | None, key: str, valid_attributes: frozenset[str]
) -> tuple[EntityType, str]:
    if entity_raw is None:
        entity: EntityType = ATTRIBUTE
    else:
        if entity_raw not in EXPERIMENT_ENTITY_TYPES:
            raise invalid_parameter(
                f"Invalid entity type '{entity_raw}'. "
                f"Valid entity types are {EXPERIMENT_ENTITY_TYPES}"
            )
        entity = ENTITY_ALIASES[entity_raw]
    if entity == ATTRIBUTE and key not in valid_attributes:
        raise invalid_parameter(
            f"Invalid attribute key '{key}' specified. Valid keys are '{fmt_set(valid_attributes)}'"
        )
    return entity, key
