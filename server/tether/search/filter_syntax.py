"""The structure of a filter string: a recursive-descent parser from tokens to raw clauses.

Only the shape is checked here (identifier, comparator, value or list, AND between clauses);
`filter_parser` (runs, experiments) and `tether.registry.search` check each raw clause against
their entity, key and value rules. `TokenCursor` and `closing_parenthesis` are also what the
logged models' own grammar (`tether.tracking.logged_models.filters`) is read with.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from tether.errors import invalid_parameter
from tether.search.limits import MAX_FILTER_CLAUSES
from tether.search.tokenizer import (
    COMMA,
    IDENT,
    LPAREN,
    NUMBER,
    OP,
    RPAREN,
    SEMI,
    STRING,
    Token,
    tokenize,
)


@dataclass(frozen=True)
class RawValue:
    """A value token as written: a string, a number, a bare word, or a parenthesised list."""

    kind: str  # STRING, NUMBER, IDENT or LPAREN (a list)
    raw: str
    items: tuple[str, ...] | None = None  # the parsed list for LPAREN, None if ill-formed
    list_error: str | None = None


@dataclass(frozen=True)
class RawClause:
    ident: Token
    comparator: str  # upper-cased
    value: RawValue | None  # None for IS [NOT] NULL


_COMPARATOR_WORDS = ("LIKE", "ILIKE", "RLIKE", "REGEXP")


class TokenCursor:
    """A filter's tokens and a position in them: what each filter grammar's parser reads
    (this module's for runs, experiments and the registry; the logged models' own)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.pos = 0

    def peek(self, offset: int = 0) -> Token | None:
        index = self.pos + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def semicolons(self) -> tuple[list[Token], bool]:
        """The `;` tokens, and whether anything but `;` follows the first (a second
        statement, which MLflow's parsers name in their own message)."""
        semis = [i for i, t in enumerate(self.tokens) if t.kind == SEMI]
        more = bool(semis) and any(t.kind != SEMI for t in self.tokens[semis[0] :])
        return [self.tokens[i] for i in semis], more

    def count_clause(self, parsed: int) -> None:
        """Refuse a filter with more than `MAX_FILTER_CLAUSES` clauses (`parsed` so far)."""
        if parsed >= MAX_FILTER_CLAUSES:
            raise invalid_parameter(
                f"The filter has too many clauses: the limit is {MAX_FILTER_CLAUSES}."
            )

    def next_clause(self) -> bool:
        """Step over ANDs (MLflow tolerates stray ones); False at the end of the filter."""
        while (token := self.peek()) is not None and token.is_word("AND"):
            self.pos += 1
        return self.peek() is not None


class FilterParser(TokenCursor):
    def __init__(self, text: str, quote_invalid: bool) -> None:
        super().__init__(text)
        self.quote_invalid = quote_invalid

    def _invalid(self, tokens: list[Token]) -> Exception:
        shown = _group_parentheses(self.text, tokens)
        # MLflow quotes each invalid token for runs, not for experiments.
        clauses = ", ".join(f"'{raw}'" if self.quote_invalid else raw for raw in shown)
        return invalid_parameter(f"Invalid clause(s) in filter string: {clauses}")

    def _rest(self, start: int) -> list[Token]:
        """Tokens from `start` up to the next AND, for an 'Invalid clause(s)' message."""
        out = []
        for token in self.tokens[start:]:
            if token.is_word("AND"):
                break
            out.append(token)
        return out or self.tokens[start : start + 1]

    def parse(self) -> list[RawClause]:
        semis, more_statements = self.semicolons()
        if more_statements:
            raise invalid_parameter(
                f"Search filter contained multiple expression {self.text!r}. "
                "Provide AND-ed expression list."
            )
        if semis:
            raise self._invalid(semis)
        clauses: list[RawClause] = []
        while self.next_clause():
            self.count_clause(len(clauses))
            clauses.append(self._clause())
        return clauses

    def _clause(self) -> RawClause:
        start = self.pos
        ident = self.peek()
        assert ident is not None
        is_identifier = (ident.kind == IDENT and not _is_keyword(ident)) or (
            ident.kind == STRING and ident.quote == '"'
        )
        if not is_identifier:
            if ident.kind == STRING and self._looks_like_comparison(1):
                raise invalid_parameter(
                    f"Invalid comparison clause. Expected 'Identifier' found '{ident.raw}'"
                )
            if ident.kind == IDENT:  # a keyword such as OR / NOT where a clause should start
                raise self._invalid([ident])
            raise self._invalid(self._rest(start))
        self.pos += 1
        comparator = self._comparator()
        if comparator is None:
            raise self._invalid(self._rest(start))
        if comparator in ("IS NULL", "IS NOT NULL"):
            return RawClause(ident, comparator, None)
        value_token = self.peek()
        if value_token is None:
            raise self._invalid(self._rest(start))
        if comparator in ("IN", "NOT IN"):
            if value_token.kind != LPAREN:
                raise self._invalid(self._rest(start))
            return RawClause(ident, comparator, self._list())
        if value_token.kind == LPAREN:
            value = self._list()
        elif value_token.kind in (STRING, NUMBER) or (
            value_token.kind == IDENT and not _is_keyword(value_token)
        ):
            self.pos += 1
            value = RawValue(value_token.kind, value_token.raw)
        else:
            raise self._invalid(self._rest(start))
        following = self.peek()
        if following is not None and (
            following.kind == OP
            or following.is_word(*_COMPARATOR_WORDS)
            or (following.kind == IDENT and following.is_word("IS", "IN"))
        ):
            # `a = 'x' = 'y'`: sqlparse nests the first comparison as the left operand.
            raise invalid_parameter(
                "Invalid comparison clause. Expected 'Identifier' found "
                f"'{self.text[ident.start : self.tokens[self.pos - 1].end]}'"
            )
        return RawClause(ident, comparator, value)

    def _looks_like_comparison(self, offset: int) -> bool:
        token = self.peek(offset)
        return token is not None and (token.kind == OP or token.is_word(*_COMPARATOR_WORDS))

    def _comparator(self) -> str | None:
        token = self.peek()
        if token is None:
            return None
        if token.kind == OP:
            self.pos += 1
            return token.raw
        if token.is_word(*_COMPARATOR_WORDS):
            self.pos += 1
            return token.word
        if token.is_word("IN"):
            self.pos += 1
            return "IN"
        nxt = self.peek(1)
        if token.is_word("NOT") and nxt is not None and nxt.is_word("IN"):
            self.pos += 2
            return "NOT IN"
        if token.is_word("IS") and nxt is not None:
            if nxt.is_word("NULL"):
                self.pos += 2
                return "IS NULL"
            third = self.peek(2)
            if nxt.is_word("NOT") and third is not None and third.is_word("NULL"):
                self.pos += 3
                return "IS NOT NULL"
        return None

    def _list(self) -> RawValue:
        """A parenthesised list starting at the current '(' (consumed through its ')')."""
        open_token = self.tokens[self.pos]
        end_index = closing_parenthesis(self.tokens, self.pos)
        if end_index is None:
            raise self._invalid(self.tokens[self.pos :])
        inner = self.tokens[self.pos + 1 : end_index]
        raw = self.text[open_token.start : self.tokens[end_index].end]
        self.pos = end_index + 1
        items, error = _parse_list_items(inner)
        return RawValue(LPAREN, raw, items, error)


def closing_parenthesis(tokens: list[Token], start: int) -> int | None:
    """Index of the `)` that closes the `(` at `tokens[start]`; None when it is never closed."""
    depth = 0
    for index in range(start, len(tokens)):
        kind = tokens[index].kind
        if kind == LPAREN:
            depth += 1
        elif kind == RPAREN:
            depth -= 1
            if depth == 0:
                return index
    return None


def parse_clauses(filter_string: str | None, *, quote_invalid: bool) -> list[RawClause]:
    """The raw clauses of a filter (none for an empty one); a blank filter is MLflow's
    "Could not be parsed". `quote_invalid`: MLflow quotes each invalid token in its message
    for run filters, not for experiment or registry filters."""
    if not filter_string:
        return []
    if not isinstance(filter_string, str) or not filter_string.strip():
        raise invalid_parameter(f"Invalid filter '{filter_string}'. Could not be parsed.")
    return FilterParser(filter_string, quote_invalid=quote_invalid).parse()


def _group_parentheses(text: str, tokens: list[Token]) -> list[str]:
    """Token texts for a message, a balanced `( ... )` shown as one item (as sqlparse does)."""
    shown: list[str] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        end = closing_parenthesis(tokens, index) if token.kind == LPAREN else None
        if end is not None:
            shown.append(text[token.start : tokens[end].end])
            index = end + 1
            continue
        shown.append(token.raw)
        index += 1
    return shown


def _is_keyword(token: Token) -> bool:
    return token.is_word("AND", "OR", "NOT", "IN", "IS", "NULL", *_COMPARATOR_WORDS)


ILL_FORMED = (
    "While parsing a list in the query, expected a non-empty list of string values, "
    "but got ill-formed list."
)
_EMPTY_LIST = (
    "While parsing a list in the query, expected a non-empty list of string values, "
    "but got empty list"
)


def _parse_list_items(inner: list[Token]) -> tuple[tuple[str, ...] | None, str | None]:
    """Items of `( 'a', "b", )`, each read as a Python string literal; or an error message."""
    if not inner:
        return None, _EMPTY_LIST
    items: list[str] = []
    non_strings: list[str] = []
    expect_item = True
    for token in inner:
        if expect_item:
            if token.kind == STRING:
                try:
                    item = ast.literal_eval(token.raw)
                except (SyntaxError, ValueError, MemoryError, RecursionError):
                    return None, ILL_FORMED
                if not isinstance(item, str):
                    return None, ILL_FORMED
                items.append(item)
            elif token.kind == NUMBER:
                non_strings.append(token.raw)
                items.append(token.raw)
            else:
                return None, ILL_FORMED
            expect_item = False
        elif token.kind == COMMA:
            expect_item = True
        else:
            return None, ILL_FORMED
    if non_strings:
        shown = ", ".join(repr(item) if item not in non_strings else item for item in items) + (
            "," if len(items) == 1 else ""
        )
        return None, (
            "While parsing a list in the query, expected string value, punctuation, "
            f"or whitespace, but got different type in list: ({shown})"
        )
    return tuple(items), None
