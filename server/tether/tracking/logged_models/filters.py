"""The `search_logged_models` filter grammar, parsed and validated as MLflow's
`mlflow.utils.search_logged_model_utils.parse_filter_string` does (with MLflow's messages),
on the tokenizer the run-search parser uses.

    filter      := [AND]* clause ([AND]+ clause)* [AND]*
    clause      := ident comparator value
    ident       := [entity '.'] key          -- entity: attributes | metrics | params | tags
    comparator  := = | != | < | <= | > | >= | LIKE | ILIKE | IN | NOT IN
    value       := 'string' | number | word | '(' python literal list ')'

As in MLflow: the entity prefix is lower-case and plural; a key is stripped of backticks;
metrics and the two timestamps are numeric (numeric comparators, a number), everything else is
a string (string comparators; a value is its text with single quotes stripped, a list is read
with `ast.literal_eval`). Where MLflow answers 500 (an unknown attribute, a non-numeric value
for a numeric field, a list where one value is expected) Tether answers 400.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Literal

from tether.errors import invalid_parameter
from tether.search.filter_syntax import TokenCursor, closing_parenthesis
from tether.search.tokenizer import IDENT, LPAREN, NUMBER, OP, STRING, Token

EntityType = Literal["attributes", "metrics", "params", "tags"]
ENTITY_TYPES: tuple[EntityType, ...] = ("attributes", "metrics", "params", "tags")

# MLflow's SqlLoggedModel.ALIASES (applied to bare attribute names; Tether also applies them
# after an `attributes.` prefix, where MLflow fails with a 500).
ALIASES = {
    "creation_time": "creation_timestamp_ms",
    "creation_timestamp": "creation_timestamp_ms",
    "last_updated_timestamp": "last_updated_timestamp_ms",
}
NUMERIC_ATTRIBUTES = frozenset({"creation_timestamp_ms", "last_updated_timestamp_ms"})
# The columns of MLflow's logged_models table, which its filter and order_by accept.
ATTRIBUTES = frozenset(
    {
        "model_id",
        "experiment_id",
        "name",
        "artifact_location",
        "creation_timestamp_ms",
        "last_updated_timestamp_ms",
        "status",
        "lifecycle_stage",
        "model_type",
        "source_run_id",
        "status_message",
    }
)
NUMERIC_OPS = ("<", "<=", ">", ">=", "=", "!=")
STRING_OPS = ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN")

_ENTITY_RE = re.compile(r"^([a-z]+)\.(.+)$", re.DOTALL)
_COMPARATOR_WORDS = ("LIKE", "ILIKE", "RLIKE", "REGEXP", "IN")
_KEYWORDS = ("AND", "OR", "NOT", "IN", "IS", "NULL", "LIKE", "ILIKE", "RLIKE", "REGEXP")

Value = float | str | tuple[str, ...]


@dataclass(frozen=True)
class Comparison:
    entity: EntityType
    key: str
    op: str
    value: Value

    @property
    def label(self) -> str:
        return f"{self.entity}.{self.key}"


def _generic(filter_string: str) -> Exception:
    return invalid_parameter(
        f"Invalid filter string: {filter_string!r}. Expected a list of comparisons separated "
        "by 'AND' (e.g. 'metrics.loss > 0.1 AND params.lr = 0.01')."
    )


def entity_and_key(identifier: str) -> tuple[EntityType, str]:
    """MLflow's `Entity.from_str`: `metrics.x` -> ("metrics", "x"); `name` -> attribute."""
    match = _ENTITY_RE.match(identifier)
    if match is None:
        return "attributes", ALIASES.get(identifier, identifier).strip("`")
    entity = match.group(1)
    if entity not in ENTITY_TYPES:
        raise invalid_parameter(
            f"Invalid entity type: {entity!r}. Expected one of {list(ENTITY_TYPES)}."
        )
    key = match.group(2).strip("`")
    if entity == "attributes":
        key = ALIASES.get(key, key)
    return entity, key


def is_numeric(entity: EntityType, key: str) -> bool:
    return entity == "metrics" or (entity == "attributes" and key in NUMERIC_ATTRIBUTES)


@dataclass(frozen=True)
class _RawClause:
    ident: Token
    op: str
    value: Token | None  # None for a parenthesised list
    list_text: str | None


class _Parser(TokenCursor):
    def parse(self) -> list[_RawClause]:
        semis, more_statements = self.semicolons()
        if more_statements:
            raise invalid_parameter(
                f"Invalid filter string: {self.text!r}. Expected a single SQL expression."
            )
        if semis:
            raise _generic(self.text)
        clauses: list[_RawClause] = []
        while self.next_clause():
            if clauses and not self.tokens[self.pos - 1].is_word("AND"):
                raise _generic(self.text)  # two clauses without AND between them
            self.count_clause(len(clauses))
            clauses.append(self._clause())
        return clauses

    def _clause(self) -> _RawClause:
        ident = self.peek()
        if ident is None or ident.kind != IDENT or ident.is_word(*_KEYWORDS):
            raise _generic(self.text)
        self.pos += 1
        op = self._comparator()
        value = self.peek()
        if value is None:
            raise _generic(self.text)
        if value.kind == LPAREN:
            return _RawClause(ident, op, None, self._list())
        if value.kind in (STRING, NUMBER) or (
            value.kind == IDENT and not value.is_word(*_KEYWORDS)
        ):
            self.pos += 1
            return _RawClause(ident, op, value, None)
        raise _generic(self.text)

    def _comparator(self) -> str:
        token = self.peek()
        if token is None:
            raise _generic(self.text)
        if token.kind == OP:
            self.pos += 1
            return token.raw
        if token.is_word(*_COMPARATOR_WORDS):
            self.pos += 1
            return token.word
        nxt = self.peek(1)
        if token.is_word("NOT") and nxt is not None and nxt.is_word(*_COMPARATOR_WORDS):
            self.pos += 2
            return f"NOT {nxt.word}"
        raise _generic(self.text)  # IS [NOT] NULL included: MLflow refuses it too

    def _list(self) -> str:
        start = self.tokens[self.pos]
        end = closing_parenthesis(self.tokens, self.pos)
        if end is None:
            raise _generic(self.text)
        self.pos = end + 1
        return self.text[start.start : self.tokens[end].end]


def _list_value(text: str, label: str) -> tuple[str, ...]:
    bad = invalid_parameter(
        f"Invalid list {text} for {label}: expected a parenthesised list of quoted strings."
    )
    try:
        parsed = ast.literal_eval(text)
    except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError):
        raise bad from None
    if isinstance(parsed, str):
        return (parsed,)
    if not isinstance(parsed, tuple):
        raise bad
    items: list[str] = []
    for item in parsed:
        # Numbers compare as their text, as they do against MLflow's SQLite text columns.
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise bad
        items.append(item if isinstance(item, str) else str(item))
    return tuple(items)


def parse_filter(filter_string: str | None) -> list[Comparison]:
    if not filter_string:
        return []
    comparisons: list[Comparison] = []
    for raw in _Parser(filter_string).parse():
        entity, key = entity_and_key(raw.ident.raw)
        op = raw.op.upper()
        numeric = is_numeric(entity, key)
        ops = NUMERIC_OPS if numeric else STRING_OPS
        label = f"{entity}.{key}"
        if op not in ops:
            raise invalid_parameter(
                f"Invalid comparison operator for {label}: {op!r}. Expected one of {ops}."
            )
        if entity == "attributes" and key not in ATTRIBUTES:
            raise invalid_parameter(
                f"Invalid attribute key {key!r} specified. Valid keys are {sorted(ATTRIBUTES)}."
            )
        value: Value
        if numeric:
            if raw.value is None or raw.value.kind != NUMBER:
                shown = raw.list_text if raw.value is None else raw.value.raw
                raise invalid_parameter(
                    f"Invalid value {shown} for {label}: expected a number (e.g. {label} > 0.5)."
                )
            value = float(raw.value.raw)
        elif op in ("IN", "NOT IN"):
            if raw.list_text is None:
                raise _generic(filter_string)
            value = _list_value(raw.list_text, label)
        else:
            if raw.value is None:
                raise invalid_parameter(
                    f"Invalid value {raw.list_text} for {label}: comparator {op!r} takes a "
                    "single value; use IN or NOT IN with a list."
                )
            value = raw.value.raw.strip("'")
        comparisons.append(Comparison(entity, key, op, value))
    return comparisons
