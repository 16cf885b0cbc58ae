"""MLflow's search grammar: run and experiment filter strings, and order_by clauses.

A small hand-written tokenizer and recursive-descent parser that accepts what MLflow's
`SearchUtils` / `SearchExperimentsUtils` accept (they are built on sqlparse) and rejects what
they reject, with MLflow's error messages where practical. Every error is an
`invalid_parameter` `MlflowError`; no input makes this module raise anything else.

Grammar (keywords case-insensitive):

    filter      := [AND]* clause ([AND]* clause)* [AND]*      (MLflow tolerates stray ANDs)
    clause      := ident comparator value
                 | ident IS [NOT] NULL
                 | ident [NOT] IN '(' string (',' string)* [','] ')'
    ident       := segment ('.' segment)*      -- `entity.key`; no prefix means attribute
    segment     := word | `backticked` | "double quoted" | 'single quoted' (not first)
    comparator  := = | != | <> | == | < | <= | > | >= | LIKE | ILIKE | RLIKE | REGEXP
    value       := 'string' | "string" | number
    order_by    := ident [ASC | DESC]

String values keep their text verbatim between the quotes (no unescaping), as MLflow does;
items of an IN list are Python string literals (MLflow reads the list with `ast.literal_eval`).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from tether.errors import invalid_parameter

EntityType = Literal["metric", "parameter", "tag", "attribute", "dataset"]
Value = float | int | str | tuple[str, ...] | None

METRIC: EntityType = "metric"
PARAM: EntityType = "parameter"
TAG: EntityType = "tag"
ATTRIBUTE: EntityType = "attribute"
DATASET: EntityType = "dataset"


@dataclass(frozen=True)
class Comparison:
    """One `entity.key comparator value` clause of a filter.

    `comparator` is upper-case and one of the comparators allowed for the entity/key.
    `key` has attribute aliases resolved (`created` -> `start_time`, `run name` -> `run_name`).
    `value`: float for metrics, int or float for numeric attributes, tuple[str, ...] for
    IN / NOT IN, None for IS NULL / IS NOT NULL, str otherwise.
    """

    entity: EntityType
    key: str
    comparator: str
    value: Value


@dataclass(frozen=True)
class OrderBy:
    entity: EntityType
    key: str
    ascending: bool


# ------------------------------------------------------------------------------ vocabulary

_ENTITY_ALIASES: dict[str, EntityType] = {
    "metric": METRIC,
    "metrics": METRIC,
    "parameter": PARAM,
    "parameters": PARAM,
    "param": PARAM,
    "params": PARAM,
    "tag": TAG,
    "tags": TAG,
    "attribute": ATTRIBUTE,
    "attributes": ATTRIBUTE,
    "attr": ATTRIBUTE,
    "run": ATTRIBUTE,
    "dataset": DATASET,
    "datasets": DATASET,
}
_ENTITY_NAMES = ["metric", "parameter", "tag", "attribute", "dataset"]

_ATTRIBUTE_ALIASES = {
    "created": "start_time",
    "Created": "start_time",
    "run name": "run_name",
    "Run name": "run_name",
    "Run Name": "run_name",
}
RUN_NUMERIC_ATTRIBUTES = frozenset({"start_time", "end_time", "created", "Created"})
RUN_SEARCH_ATTRIBUTES = frozenset(
    {"artifact_uri", "end_time", "run_id", "run_name", "start_time", "status", "user_id"}
    | set(_ATTRIBUTE_ALIASES)
)
RUN_ORDER_BY_ATTRIBUTES = frozenset(
    {"artifact_uri", "end_time", "run_id", "run_name", "start_time", "status", "user_id"}
    | {"created", "Created"}
)
DATASET_KEYS = frozenset({"name", "digest", "context"})

METRIC_COMPARATORS = frozenset({">", ">=", "!=", "=", "<", "<="})
NUMERIC_ATTRIBUTE_COMPARATORS = METRIC_COMPARATORS
PARAM_COMPARATORS = frozenset({"!=", "=", "LIKE", "ILIKE", "IS NULL", "IS NOT NULL"})
TAG_COMPARATORS = PARAM_COMPARATORS
STRING_ATTRIBUTE_COMPARATORS = frozenset({"!=", "=", "LIKE", "ILIKE", "IN", "NOT IN"})
DATASET_COMPARATORS = STRING_ATTRIBUTE_COMPARATORS

EXPERIMENT_SEARCH_ATTRIBUTES = frozenset(
    {"name", "experiment_id", "creation_time", "last_update_time"}
)
EXPERIMENT_ORDER_BY_ATTRIBUTES = EXPERIMENT_SEARCH_ATTRIBUTES
EXPERIMENT_NUMERIC_ATTRIBUTES = frozenset({"creation_time", "last_update_time"})
_EXPERIMENT_ENTITY_TYPES = ("attribute", "tag", "tags")

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1


def _fmt_set(values: Iterable[str]) -> str:
    """A deterministic rendering of a Python set literal, as MLflow's messages show them."""
    return "{" + ", ".join(repr(v) for v in sorted(values)) + "}"


# ------------------------------------------------------------------------------- tokenizer

# Token kinds.
_IDENT = "IDENT"  # a dotted chain of segments, or a single bare/backticked word
_STRING = "STRING"  # a lone 'single' or "double" quoted string
_NUMBER = "NUMBER"
_OP = "OP"
_LPAREN = "("
_RPAREN = ")"
_COMMA = ","
_SEMI = ";"
_BAD = "BAD"  # a character no token starts with


@dataclass(frozen=True)
class _Segment:
    text: str  # without quotes
    quote: str  # "", "`", '"' or "'"


@dataclass(frozen=True)
class _Token:
    kind: str
    raw: str
    start: int
    end: int
    segments: tuple[_Segment, ...] = ()
    quote: str = ""  # for _STRING

    def is_word(self, *words: str) -> bool:
        """A single unquoted segment equal (case-insensitively) to one of `words`."""
        return (
            self.kind == _IDENT
            and len(self.segments) == 1
            and self.segments[0].quote == ""
            and self.segments[0].text.upper() in words
        )

    @property
    def word(self) -> str:
        return self.segments[0].text.upper() if self.kind == _IDENT else ""


_NUMBER_RE = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
_WORD_RE = re.compile(r"\w+")
_OPS = ("<=", ">=", "!=", "<>", "==", "=", "<", ">")
# sqlparse's string rules: a doubled quote or a backslash-quote does not end the string.
_QUOTED_RE = {
    "'": re.compile(r"'(?:''|\\'|[^'])*'", re.DOTALL),
    '"': re.compile(r'"(?:""|\\"|[^"])*"', re.DOTALL),
    "`": re.compile(r"`[^`]*`", re.DOTALL),
}


def _read_quoted(text: str, pos: int) -> int | None:
    """End index of the quoted segment starting at `pos`, or None when unterminated."""
    match = _QUOTED_RE[text[pos]].match(text, pos)
    return match.end() if match else None


def _is_word_start(char: str) -> bool:
    return char == "_" or (char.isalnum() and not char.isdigit())


def _tokenize(text: str) -> list[_Token]:
    if "\x00" in text:
        # PostgreSQL cannot store or compare text with NUL; no stored value contains one.
        raise invalid_parameter("Invalid filter: the NUL character is not allowed.")
    tokens: list[_Token] = []
    pos = 0
    length = len(text)
    while pos < length:
        char = text[pos]
        if char.isspace():
            pos += 1
            continue
        start = pos
        nxt = text[pos + 1] if pos + 1 < length else ""
        if char.isdigit() or (char in "-." and (nxt.isdigit() or (nxt == "." and char == "-"))):
            match = _NUMBER_RE.match(text, pos)
            if match and not (match.end() < length and _is_word_char(text[match.end()])):
                tokens.append(_Token(_NUMBER, match.group(), start, match.end()))
                pos = match.end()
                continue
        if _is_word_start(char) or char in "`\"'":
            ident = _read_ident(text, pos)
            if ident is not None:
                tokens.append(ident)
                pos = ident.end
                continue
            # An unterminated quote.
            tokens.append(_Token(_BAD, text[pos], start, pos + 1))
            pos += 1
            continue
        if char in "(),;":
            tokens.append(_Token(char, char, start, pos + 1))
            pos += 1
            continue
        op = next((op for op in _OPS if text.startswith(op, pos)), None)
        if op is not None:
            tokens.append(_Token(_OP, op, start, pos + len(op)))
            pos += len(op)
            continue
        tokens.append(_Token(_BAD, char, start, pos + 1))
        pos += 1
    return tokens


def _is_word_char(char: str) -> bool:
    return char == "_" or char.isalnum()


def _read_ident(text: str, pos: int) -> _Token | None:
    """An identifier chain (`a.b`, `` `a`.b ``, `metrics."x y"`) or a lone quoted string."""
    start = pos
    segments: list[_Segment] = []
    first = True
    while True:
        char = text[pos] if pos < len(text) else ""
        if char and char in "`\"'":
            end = _read_quoted(text, pos)
            if end is None:
                if first:
                    return None
                # `metrics.'unterminated`: stop the chain before the quote.
                break
            segments.append(_Segment(text[pos + 1 : end - 1], char))
            pos = end
        else:
            match = _WORD_RE.match(text, pos)
            if match:
                segments.append(_Segment(match.group(), ""))
                pos = match.end()
            else:
                segments.append(_Segment("", ""))  # `metrics. = 1`: an empty key, as MLflow
        first = False
        if pos < len(text) and text[pos] == ".":
            pos += 1
            continue
        break
    raw = text[start:pos]
    if len(segments) == 1 and segments[0].quote in ("'", '"'):
        return _Token(_STRING, raw, start, pos, quote=segments[0].quote)
    return _Token(_IDENT, raw, start, pos, tuple(segments))


# -------------------------------------------------------------------------------- helpers


def _strip_quotes(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in ("'", '"'):
        return value[1:-1]
    return value


def _trim_backticks(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == "`":
        return value[1:-1]
    return value


def _split_ident(token: _Token) -> tuple[str | None, str]:
    """(raw entity prefix or None, key) the way MLflow splits `identifier.split('.', 1)`."""
    if token.kind == _STRING:
        return None, _trim_backticks(_strip_quotes(token.raw))
    first = token.segments[0]
    if len(token.segments) == 1:
        return None, _trim_backticks(_strip_quotes(token.raw))
    entity_raw = token.raw[: len(first.text) + (2 if first.quote else 0)]
    key_raw = token.raw[len(entity_raw) + 1 :]
    return entity_raw, _trim_backticks(_strip_quotes(key_raw))


def _run_entity_type(entity_raw: str) -> EntityType:
    name = _trim_backticks(entity_raw)
    entity = _ENTITY_ALIASES.get(name)
    if entity is None:
        raise invalid_parameter(
            f"Invalid entity type '{name}'. Valid values are {_ENTITY_NAMES}",
        )
    return entity


def _run_identifier(
    entity_raw: str | None, key: str, valid_attributes: frozenset[str]
) -> tuple[EntityType, str]:
    entity = ATTRIBUTE if entity_raw is None else _run_entity_type(entity_raw)
    if entity == ATTRIBUTE and key not in valid_attributes:
        raise invalid_parameter(
            f"Invalid attribute key '{key}' specified. "
            f"Valid keys are '{_fmt_set(valid_attributes)}'"
        )
    if entity == DATASET and key not in DATASET_KEYS:
        raise invalid_parameter(
            f"Invalid dataset key '{key}' specified. Valid keys are '{_fmt_set(DATASET_KEYS)}'"
        )
    return entity, key


def _experiment_identifier(
    entity_raw: str | None, key: str, valid_attributes: frozenset[str]
) -> tuple[EntityType, str]:
    if entity_raw is None:
        entity: EntityType = ATTRIBUTE
    else:
        if entity_raw not in _EXPERIMENT_ENTITY_TYPES:
            raise invalid_parameter(
                f"Invalid entity type '{entity_raw}'. "
                f"Valid entity types are {_EXPERIMENT_ENTITY_TYPES}"
            )
        entity = _ENTITY_ALIASES[entity_raw]
    if entity == ATTRIBUTE and key not in valid_attributes:
        raise invalid_parameter(
            f"Invalid attribute key '{key}' specified. "
            f"Valid keys are '{_fmt_set(valid_attributes)}'"
        )
    return entity, key


# ----------------------------------------------------------------------- filter structure


@dataclass(frozen=True)
class _RawValue:
    """A value token as written: a string, a number, a bare word, or a parenthesised list."""

    kind: str  # _STRING, _NUMBER, _IDENT or _LPAREN (a list)
    raw: str
    items: tuple[str, ...] | None = None  # the parsed list for _LPAREN, None if ill-formed
    list_error: str | None = None


@dataclass(frozen=True)
class _RawClause:
    ident: _Token
    comparator: str  # upper-cased
    value: _RawValue | None  # None for IS [NOT] NULL


_COMPARATOR_WORDS = ("LIKE", "ILIKE", "RLIKE", "REGEXP")


class _FilterParser:
    def __init__(self, text: str, quote_invalid: bool) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.pos = 0
        self.quote_invalid = quote_invalid

    def _peek(self, offset: int = 0) -> _Token | None:
        index = self.pos + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def _invalid(self, tokens: list[_Token]) -> Exception:
        shown = _group_parentheses(self.text, tokens)
        # MLflow quotes each invalid token for runs, not for experiments.
        clauses = ", ".join(f"'{raw}'" if self.quote_invalid else raw for raw in shown)
        return invalid_parameter(f"Invalid clause(s) in filter string: {clauses}")

    def _rest(self, start: int) -> list[_Token]:
        """Tokens from `start` up to the next AND, for an 'Invalid clause(s)' message."""
        out = []
        for token in self.tokens[start:]:
            if token.is_word("AND"):
                break
            out.append(token)
        return out or self.tokens[start : start + 1]

    def parse(self) -> list[_RawClause]:
        semis = [i for i, t in enumerate(self.tokens) if t.kind == _SEMI]
        if semis and any(t.kind != _SEMI for t in self.tokens[semis[0] :]):
            raise invalid_parameter(
                f"Search filter contained multiple expression {self.text!r}. "
                "Provide AND-ed expression list."
            )
        if semis:
            raise self._invalid([self.tokens[i] for i in semis])
        clauses: list[_RawClause] = []
        while True:
            while (token := self._peek()) is not None and token.is_word("AND"):
                self.pos += 1
            if self._peek() is None:
                return clauses
            clauses.append(self._clause())

    def _clause(self) -> _RawClause:
        start = self.pos
        ident = self._peek()
        assert ident is not None
        is_identifier = (ident.kind == _IDENT and not _is_keyword(ident)) or (
            ident.kind == _STRING and ident.quote == '"'
        )
        if not is_identifier:
            if ident.kind == _STRING and self._looks_like_comparison(1):
                raise invalid_parameter(
                    f"Invalid comparison clause. Expected 'Identifier' found '{ident.raw}'"
                )
            if ident.kind == _IDENT:  # a keyword such as OR / NOT where a clause should start
                raise self._invalid([ident])
            raise self._invalid(self._rest(start))
        self.pos += 1
        comparator = self._comparator()
        if comparator is None:
            raise self._invalid(self._rest(start))
        if comparator in ("IS NULL", "IS NOT NULL"):
            return _RawClause(ident, comparator, None)
        value_token = self._peek()
        if value_token is None:
            raise self._invalid(self._rest(start))
        if comparator in ("IN", "NOT IN"):
            if value_token.kind != _LPAREN:
                raise self._invalid(self._rest(start))
            return _RawClause(ident, comparator, self._list())
        if value_token.kind == _LPAREN:
            value = self._list()
        elif value_token.kind in (_STRING, _NUMBER) or (
            value_token.kind == _IDENT and not _is_keyword(value_token)
        ):
            self.pos += 1
            value = _RawValue(value_token.kind, value_token.raw)
        else:
            raise self._invalid(self._rest(start))
        following = self._peek()
        if following is not None and (
            following.kind == _OP
            or following.is_word(*_COMPARATOR_WORDS)
            or (following.kind == _IDENT and following.is_word("IS", "IN"))
        ):
            # `a = 'x' = 'y'`: sqlparse nests the first comparison as the left operand.
            raise invalid_parameter(
                "Invalid comparison clause. Expected 'Identifier' found "
                f"'{self.text[ident.start : self.tokens[self.pos - 1].end]}'"
            )
        return _RawClause(ident, comparator, value)

    def _looks_like_comparison(self, offset: int) -> bool:
        token = self._peek(offset)
        return token is not None and (token.kind == _OP or token.is_word(*_COMPARATOR_WORDS))

    def _comparator(self) -> str | None:
        token = self._peek()
        if token is None:
            return None
        if token.kind == _OP:
            self.pos += 1
            return token.raw
        if token.is_word(*_COMPARATOR_WORDS):
            self.pos += 1
            return token.word
        if token.is_word("IN"):
            self.pos += 1
            return "IN"
        nxt = self._peek(1)
        if token.is_word("NOT") and nxt is not None and nxt.is_word("IN"):
            self.pos += 2
            return "NOT IN"
        if token.is_word("IS") and nxt is not None:
            if nxt.is_word("NULL"):
                self.pos += 2
                return "IS NULL"
            third = self._peek(2)
            if nxt.is_word("NOT") and third is not None and third.is_word("NULL"):
                self.pos += 3
                return "IS NOT NULL"
        return None

    def _list(self) -> _RawValue:
        """A parenthesised list starting at the current '(' (consumed through its ')')."""
        open_token = self.tokens[self.pos]
        depth = 0
        end_index = None
        for index in range(self.pos, len(self.tokens)):
            kind = self.tokens[index].kind
            if kind == _LPAREN:
                depth += 1
            elif kind == _RPAREN:
                depth -= 1
                if depth == 0:
                    end_index = index
                    break
        if end_index is None:
            raise self._invalid(self.tokens[self.pos :])
        inner = self.tokens[self.pos + 1 : end_index]
        raw = self.text[open_token.start : self.tokens[end_index].end]
        self.pos = end_index + 1
        items, error = _parse_list_items(inner)
        return _RawValue(_LPAREN, raw, items, error)


def _group_parentheses(text: str, tokens: list[_Token]) -> list[str]:
    """Token texts for a message, a balanced `( ... )` shown as one item (as sqlparse does)."""
    shown: list[str] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token.kind == _LPAREN:
            depth = 0
            for end in range(index, len(tokens)):
                depth += {_LPAREN: 1, _RPAREN: -1}.get(tokens[end].kind, 0)
                if depth == 0:
                    shown.append(text[token.start : tokens[end].end])
                    index = end + 1
                    break
            else:
                shown.append(token.raw)
                index += 1
            continue
        shown.append(token.raw)
        index += 1
    return shown


def _is_keyword(token: _Token) -> bool:
    return token.is_word("AND", "OR", "NOT", "IN", "IS", "NULL", *_COMPARATOR_WORDS)


_ILL_FORMED = (
    "While parsing a list in the query, expected a non-empty list of string values, "
    "but got ill-formed list."
)
_EMPTY_LIST = (
    "While parsing a list in the query, expected a non-empty list of string values, "
    "but got empty list"
)


def _parse_list_items(inner: list[_Token]) -> tuple[tuple[str, ...] | None, str | None]:
    """Items of `( 'a', "b", )`, each read as a Python string literal; or an error message."""
    if not inner:
        return None, _EMPTY_LIST
    items: list[str] = []
    non_strings: list[str] = []
    expect_item = True
    for token in inner:
        if expect_item:
            if token.kind == _STRING:
                try:
                    item = ast.literal_eval(token.raw)
                except (SyntaxError, ValueError, MemoryError, RecursionError):
                    return None, _ILL_FORMED
                if not isinstance(item, str):
                    return None, _ILL_FORMED
                items.append(item)
            elif token.kind == _NUMBER:
                non_strings.append(token.raw)
                items.append(token.raw)
            else:
                return None, _ILL_FORMED
            expect_item = False
        elif token.kind == _COMMA:
            expect_item = True
        else:
            return None, _ILL_FORMED
    if non_strings:
        shown = ", ".join(repr(item) if item not in non_strings else item for item in items) + (
            "," if len(items) == 1 else ""
        )
        return None, (
            "While parsing a list in the query, expected string value, punctuation, "
            f"or whitespace, but got different type in list: ({shown})"
        )
    return tuple(items), None


# ------------------------------------------------------------------------- value checks


def _quoted_string(value: _RawValue) -> str:
    if value.kind == _STRING:
        return value.raw[1:-1]
    raise invalid_parameter(
        "Parameter value is either not quoted or unidentified quote "
        f"types used for string value {value.raw}. Use either single or double "
        "quotes.",
    )


def _number(value: _RawValue) -> int | float:
    text = value.raw
    if re.fullmatch(r"-?\d+", text):
        number = int(text)
        # Beyond BIGINT, compare as a float (same order) rather than fail to bind.
        return number if _INT64_MIN <= number <= _INT64_MAX else float(number)
    return float(text)


def _checked_list(value: _RawValue, list_supported: frozenset[str], key: str) -> tuple[str, ...]:
    if key not in list_supported:
        raise invalid_parameter(
            f"Only {sorted(list_supported)} attributes support "
            "comparison with a list of quoted string values."
        )
    return _list_items(value)


def _list_items(value: _RawValue) -> tuple[str, ...]:
    if value.items is None:
        raise invalid_parameter(value.list_error or _ILL_FORMED)
    return value.items


def _run_value(entity: EntityType, key: str, value: _RawValue) -> Value:
    """MLflow's `SearchUtils._get_value`: check the value's type for the entity and key."""
    if entity == METRIC:
        if value.kind != _NUMBER:
            raise invalid_parameter(f"Expected numeric value type for metric. Found {value.raw}")
        return float(value.raw)
    if entity in (PARAM, TAG):
        if value.kind in (_STRING, _IDENT):
            return _quoted_string(value)
        raise invalid_parameter(
            f"Expected a quoted string value for {entity} (e.g. 'my-value'). Got value {value.raw}"
        )
    if entity == ATTRIBUTE:
        return _attribute_value(
            key, value, RUN_NUMERIC_ATTRIBUTES, frozenset({"run_id"}), allow_float=True
        )
    # Datasets.
    if value.kind in (_STRING, _IDENT):
        return _quoted_string(value)
    if value.kind == _LPAREN:
        return _list_items(value)
    raise invalid_parameter(
        f"Expected a quoted string value for dataset attributes. Got value {value.raw}"
    )


def _attribute_value(
    key: str,
    value: _RawValue,
    numeric: frozenset[str],
    list_supported: frozenset[str],
    allow_float: bool,
) -> Value:
    if key in numeric:
        if value.kind != _NUMBER:
            raise invalid_parameter(
                f"Expected numeric value type for numeric attribute: {key}. Found {value.raw}"
            )
        number = _number(value)
        if not allow_float and isinstance(number, float):
            raise invalid_parameter(f"Invalid value for numeric attribute '{key}': {value.raw!r}")
        return number
    if value.kind in (_STRING, _IDENT):
        return _quoted_string(value)
    if value.kind == _LPAREN:
        return _checked_list(value, list_supported, key)
    raise invalid_parameter(f"Expected a quoted string value for attributes. Got value {value.raw}")


def _check_comparator(allowed: frozenset[str], comparator: str, close_quote: bool = True) -> None:
    if comparator not in allowed:
        quote = "'" if close_quote else ""
        raise invalid_parameter(
            f"Invalid comparator '{comparator}' not one of '{_fmt_set(allowed)}{quote}"
        )


def _check_list_use(comparator: str, value: Value, raw: _RawValue | None) -> None:
    is_list = isinstance(value, tuple)
    if is_list != (comparator in ("IN", "NOT IN")):
        shown = raw.raw if raw is not None else ""
        raise invalid_parameter(
            f"Invalid comparison clause: comparator '{comparator}' cannot be used with value "
            f"{shown}. Use IN or NOT IN with a parenthesised list of quoted strings."
        )


# ------------------------------------------------------------------------------ public API


def parse_search_filter(filter_string: str | None) -> list[Comparison]:
    """Parse a `search_runs` filter into comparisons, validated as MLflow validates them."""
    if not filter_string:
        return []
    if not isinstance(filter_string, str):
        raise invalid_parameter(f"Invalid filter '{filter_string}'. Could not be parsed.")
    if not filter_string.strip():
        raise invalid_parameter(f"Invalid filter '{filter_string}'. Could not be parsed.")
    raw_clauses = _FilterParser(filter_string, quote_invalid=True).parse()
    comparisons = []
    for clause in raw_clauses:
        entity_raw, key = _split_ident(clause.ident)
        entity, key = _run_identifier(entity_raw, key, RUN_SEARCH_ATTRIBUTES)
        comparator = clause.comparator
        if clause.value is None:
            if entity not in (TAG, PARAM):
                raise invalid_parameter(
                    "IS NULL / IS NOT NULL is only supported for tags and params, "
                    f"not for '{entity}' '{key}'"
                )
            comparisons.append(Comparison(entity, key, comparator, None))
            continue
        value = _run_value(entity, key, clause.value)
        if entity == METRIC:
            _check_comparator(METRIC_COMPARATORS, comparator, close_quote=False)
        elif entity == PARAM:
            _check_comparator(PARAM_COMPARATORS, comparator)
        elif entity == TAG:
            _check_comparator(TAG_COMPARATORS, comparator, close_quote=False)
        elif entity == DATASET:
            _check_comparator(DATASET_COMPARATORS, comparator, close_quote=False)
        elif key in RUN_NUMERIC_ATTRIBUTES:
            # MLflow's message names the string comparators here; we name the valid ones.
            _check_comparator(NUMERIC_ATTRIBUTE_COMPARATORS, comparator, close_quote=False)
        else:
            _check_comparator(STRING_ATTRIBUTE_COMPARATORS, comparator)
        _check_list_use(comparator, value, clause.value)
        if entity == ATTRIBUTE:
            key = _ATTRIBUTE_ALIASES.get(key, key)
        comparisons.append(Comparison(entity, key, comparator, value))
    return comparisons


def parse_experiment_filter(filter_string: str | None) -> list[Comparison]:
    """Parse a `search_experiments` filter (`name`, `experiment_id`, times, `tags.`)."""
    if not filter_string:
        return []
    if not isinstance(filter_string, str) or not filter_string.strip():
        raise invalid_parameter(f"Invalid filter '{filter_string}'. Could not be parsed.")
    raw_clauses = _FilterParser(filter_string, quote_invalid=False).parse()
    comparisons = []
    for clause in raw_clauses:
        entity_raw, key = _split_ident(clause.ident)
        entity, key = _experiment_identifier(entity_raw, key, EXPERIMENT_SEARCH_ATTRIBUTES)
        comparator = clause.comparator
        if clause.value is None:
            if entity != TAG:
                raise invalid_parameter(
                    f"IS NULL / IS NOT NULL is only supported for tags, not for attribute '{key}'"
                )
            comparisons.append(Comparison(entity, key, comparator, None))
            continue
        value: Value
        if entity == TAG:
            value = _run_value(TAG, key, clause.value)
            if comparator not in ("=", "!=", "LIKE", "ILIKE"):
                raise invalid_parameter(f"Invalid comparator for tag: {comparator}")
        else:
            value = _attribute_value(
                key,
                clause.value,
                EXPERIMENT_NUMERIC_ATTRIBUTES,
                frozenset({"experiment_id"}),
                allow_float=True,
            )
            value = _check_experiment_attribute(key, comparator, value, clause.value)
        _check_list_use(comparator, value, clause.value)
        comparisons.append(Comparison(entity, key, comparator, value))
    return comparisons


def _parse_experiment_id(value: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = None
    if number is None or not _INT64_MIN <= number <= _INT64_MAX:
        raise invalid_parameter(
            f"Invalid experiment ID '{value}'. Experiment ID must be a valid integer."
        )
    return number


def _check_experiment_attribute(key: str, comparator: str, value: Value, raw: _RawValue) -> Value:
    if key == "experiment_id":
        if comparator not in ("=", "!=", "IN", "NOT IN"):
            raise invalid_parameter(f"Invalid comparator for experiment_id: {comparator}")
        if isinstance(value, tuple):
            return tuple(str(_parse_experiment_id(v)) for v in value)
        return str(_parse_experiment_id(str(value)))
    if key in EXPERIMENT_NUMERIC_ATTRIBUTES:
        _check_comparator(NUMERIC_ATTRIBUTE_COMPARATORS, comparator, close_quote=False)
        if isinstance(value, float):
            raise invalid_parameter(f"Invalid value for numeric attribute '{key}': {raw.raw!r}")
        return value
    _check_comparator(STRING_ATTRIBUTE_COMPARATORS, comparator)
    if comparator not in ("=", "!=", "LIKE", "ILIKE"):
        raise invalid_parameter(f"Invalid comparator for string attribute: {comparator}")
    return value


def _parse_order_by_tokens(order_by: str) -> tuple[list[_Segment], bool]:
    """(identifier segments, ascending) of `ident [ASC|DESC]`, with MLflow's messages."""
    could_not_parse = invalid_parameter(
        f"Invalid order_by clause '{order_by}'. Could not be parsed."
    )
    if not isinstance(order_by, str):
        raise could_not_parse
    try:
        tokens = _tokenize(order_by)
    except Exception:
        raise could_not_parse from None
    if not tokens:
        raise could_not_parse
    first = tokens[0]
    if first.kind == _STRING and first.quote == '"':
        segments = [_Segment(first.raw[1:-1], '"')]
    elif first.kind == _IDENT:
        segments = list(first.segments)
    else:
        raise could_not_parse
    if len(tokens) == 1:
        return segments, True
    if len(tokens) == 2 and tokens[1].kind == _IDENT and len(tokens[1].segments) == 1:
        direction = tokens[1].segments[0].text.lower()
        if tokens[1].segments[0].quote or direction not in ("asc", "desc"):
            raise invalid_parameter(f"Invalid ordering key in order_by clause '{order_by}'.")
        return segments, direction == "asc"
    raise could_not_parse


def parse_order_by(order_by: str) -> OrderBy:
    """Parse one `search_runs` order_by clause: `metrics.x DESC`, `attributes.start_time`..."""
    segments, ascending = _parse_order_by_tokens(order_by)
    if len(segments) == 1:
        entity_raw, key = None, segments[0].text
    else:
        entity_raw, key = segments[0].text, ".".join(s.text for s in segments[1:])
    entity, key = _run_identifier(entity_raw, key, RUN_ORDER_BY_ATTRIBUTES)
    if entity == ATTRIBUTE:
        key = _ATTRIBUTE_ALIASES.get(key, key)
    elif entity == DATASET:
        raise invalid_parameter(f"Invalid identifier type '{entity}'")
    return OrderBy(entity, key, ascending)


def parse_experiment_order_by(order_by: str) -> OrderBy:
    """Parse one `search_experiments` order_by clause (attributes only)."""
    segments, ascending = _parse_order_by_tokens(order_by)
    if len(segments) == 1:
        entity_raw, key = None, segments[0].text
    else:
        entity_raw, key = segments[0].text, ".".join(s.text for s in segments[1:])
    entity, key = _experiment_identifier(entity_raw, key, EXPERIMENT_ORDER_BY_ATTRIBUTES)
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
