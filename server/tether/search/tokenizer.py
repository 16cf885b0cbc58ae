"""The tokenizer shared by the filter and order_by parsers, after sqlparse's lexing rules."""

from __future__ import annotations

import re
from dataclasses import dataclass

from tether.errors import invalid_parameter
from tether.search.limits import MAX_FILTER_LENGTH, MAX_FILTER_TOKENS, check_size

# Token kinds.
IDENT = "IDENT"  # a dotted chain of segments, or a single bare/backticked word
STRING = "STRING"  # a lone 'single' or "double" quoted string
NUMBER = "NUMBER"
OP = "OP"
LPAREN = "("
RPAREN = ")"
COMMA = ","
SEMI = ";"
BAD = "BAD"  # a character no token starts with


@dataclass(frozen=True)
class Segment:
    text: str  # without quotes
    quote: str  # "", "`", '"' or "'"


@dataclass(frozen=True)
class Token:
    kind: str
    raw: str
    start: int
    end: int
    segments: tuple[Segment, ...] = ()
    quote: str = ""  # for STRING

    def is_word(self, *words: str) -> bool:
        """A single unquoted segment equal (case-insensitively) to one of `words`."""
        return (
            self.kind == IDENT
            and len(self.segments) == 1
            and self.segments[0].quote == ""
            and self.segments[0].text.upper() in words
        )

    @property
    def word(self) -> str:
        return self.segments[0].text.upper() if self.kind == IDENT else ""


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


def tokenize(text: str, what: str = "The filter") -> list[Token]:
    """The tokens of a filter or order_by clause (`what` names it in errors), within
    `MAX_FILTER_LENGTH` characters and `MAX_FILTER_TOKENS` tokens: the work is bounded before
    it starts, whatever the request's size."""
    check_size(what, text, MAX_FILTER_LENGTH, "characters")
    if "\x00" in text:
        # PostgreSQL cannot store or compare text with NUL; no stored value contains one.
        raise invalid_parameter("Invalid filter: the NUL character is not allowed.")
    tokens: list[Token] = []
    pos = 0
    length = len(text)
    while pos < length:
        if len(tokens) > MAX_FILTER_TOKENS:
            raise invalid_parameter(
                f"{what} has too many tokens: the limit is {MAX_FILTER_TOKENS}."
            )
        char = text[pos]
        if char.isspace():
            pos += 1
            continue
        start = pos
        nxt = text[pos + 1] if pos + 1 < length else ""
        if char.isdigit() or (char in "-." and (nxt.isdigit() or (nxt == "." and char == "-"))):
            match = _NUMBER_RE.match(text, pos)
            if match and not (match.end() < length and _is_word_char(text[match.end()])):
                tokens.append(Token(NUMBER, match.group(), start, match.end()))
                pos = match.end()
                continue
        if _is_word_start(char) or char in "`\"'":
            ident = _read_ident(text, pos)
            if ident is not None:
                tokens.append(ident)
                pos = ident.end
                continue
            # An unterminated quote.
            tokens.append(Token(BAD, text[pos], start, pos + 1))
            pos += 1
            continue
        if char in "(),;":
            tokens.append(Token(char, char, start, pos + 1))
            pos += 1
            continue
        op = next((op for op in _OPS if text.startswith(op, pos)), None)
        if op is not None:
            tokens.append(Token(OP, op, start, pos + len(op)))
            pos += len(op)
            continue
        tokens.append(Token(BAD, char, start, pos + 1))
        pos += 1
    return tokens


def _is_word_char(char: str) -> bool:
    return char == "_" or char.isalnum()


def _read_ident(text: str, pos: int) -> Token | None:
    """An identifier chain (`a.b`, `` `a`.b ``, `metrics."x y"`) or a lone quoted string."""
    start = pos
    segments: list[Segment] = []
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
            segments.append(Segment(text[pos + 1 : end - 1], char))
            pos = end
        else:
            match = _WORD_RE.match(text, pos)
            if match:
                segments.append(Segment(match.group(), ""))
                pos = match.end()
            else:
                segments.append(Segment("", ""))  # `metrics. = 1`: an empty key, as MLflow
        first = False
        if pos < len(text) and text[pos] == ".":
            pos += 1
            continue
        break
    raw = text[start:pos]
    if len(segments) == 1 and segments[0].quote in ("'", '"'):
        return Token(STRING, raw, start, pos, quote=segments[0].quote)
    return Token(IDENT, raw, start, pos, tuple(segments))
