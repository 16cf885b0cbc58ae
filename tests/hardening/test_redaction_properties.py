"""Property tests of the log redaction and formatters (hypothesis): a planted secret never
survives `redact` or `mask` in any encoding (plain, percent-encoded once or twice, `+` for
spaces), whatever surrounds it and wherever a long value is cut; and the formatters never
raise and always write one line, for any text (lone surrogates, controls, line separators,
bidirectional overrides, 4-byte characters, very long values)."""

from __future__ import annotations

import io
import json
import logging
import urllib.parse
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tether.observability.logs import (
    FIELD_LIMIT,
    JsonFormatter,
    RedactFilter,
    RequestContextFilter,
    SafeStreamHandler,
    TextFormatter,
)
from tether.observability.redact import mask, redact

# Secret values: long enough to be unmistakable, from the characters real ones use (base64,
# JWT, URL-safe passwords).
_VALUE = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=._-~",
    min_size=12,
    max_size=60,
).map(lambda v: f"Zq{v}")  # starts with letters: never empty, never a lone "=" run


def _secret_forms(value: str) -> st.SearchStrategy[str]:
    """How a secret appears in text, before any encoding."""
    password = urllib.parse.quote(value, safe="")  # as it must be written inside a URI
    return st.sampled_from(
        [
            f"sig={value}",
            f"https://acct.blob.core.windows.net/c/run/f.bin?sv=2024-01-01&sp=r&sig={value}",
            f"AccountKey={value}",
            f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={value};"
            "EndpointSuffix=core.windows.net",
            f"postgresql://tether:{password}@db.internal:5432/tether",
            f"postgresql+psycopg://u:{password}@h/db",
            f"Authorization: Bearer {value}",
            f"Bearer {value}",
            f"password={value}",
            f"client_secret={value}",
        ]
    )


def _encode(text: str, times: int, plus: bool) -> str:
    for _ in range(times):
        text = urllib.parse.quote_plus(text, safe="") if plus else urllib.parse.quote(text, safe="")
    return text


# Anything around a secret: arbitrary text (surrogates, controls and all), ended by a
# separator so that the secret's name is a word of its own ("xsig=" is another name).
_AROUND = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
_BEFORE = st.tuples(
    _AROUND, st.sampled_from(["", " ", "\n", "&", "?", ";", '"', "%26", "%2526", "="])
)
_AFTER = st.tuples(st.sampled_from(["", " ", "\n", "&", '"', "%26", "'"]), _AROUND)


def _traces(value: str) -> list[str]:
    """The value as it may appear once planted: plain and encoded once or twice."""
    once = urllib.parse.quote(value, safe="")
    return [value, once, urllib.parse.quote(once, safe=""), urllib.parse.quote_plus(value, safe="")]


@st.composite
def planted(draw: st.DrawFn) -> tuple[str, str]:
    value = draw(_VALUE)
    form = draw(_secret_forms(value))
    times = draw(st.integers(0, 2))
    secret = _encode(form, times, plus=draw(st.booleans()))
    before, separator = draw(_BEFORE)
    assume(separator or not before)  # at the very start, or after a separator
    closing, after = draw(_AFTER)
    text = f"{before}{separator}{secret}{closing}{after}"
    # The surrounding text must not itself contain the value (hypothesis could write it).
    assume(not any(trace in before + after for trace in _traces(value)))
    return text, value


def _leaks(text: str, value: str) -> bool:
    return any(trace in text for trace in _traces(value))


@settings(max_examples=1500, deadline=None)
@given(planted())
def test_a_planted_secret_never_survives_redaction(case: tuple[str, str]) -> None:
    text, value = case
    assert not _leaks(redact(text), value), text


@settings(max_examples=500, deadline=None)
@given(planted(), st.integers(min_value=8, max_value=400), st.integers(0, 3000))
def test_a_secret_never_survives_a_cut(case: tuple[str, str], limit: int, padding: int) -> None:
    """Long text is cut before it is redacted: wherever the cut falls, nothing leaks.

    Padding ends with a separator: "zsig=" is another name, not a signature (see `_AROUND`)."""
    text, value = case
    for padded in (f"{'x' * padding} {text}", f"{text} {'y' * padding}", f"{'z' * padding}&{text}"):
        assert not _leaks(mask(padded, limit), value), padded


def _handler(formatter: logging.Formatter) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = SafeStreamHandler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(RequestContextFilter())
    handler.addFilter(RedactFilter())
    logger = logging.Logger(f"tether.property.{type(formatter).__name__}")
    logger.addHandler(handler)
    return logger, stream


class _Unprintable:
    def __str__(self) -> str:
        raise ValueError("no text")

    __repr__ = __str__


_ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=200)
_VALUES = st.one_of(
    _ANY_TEXT,
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.just(_Unprintable()),
    st.builds(lambda s, n: s * n, _ANY_TEXT, st.integers(0, 50_000)),  # very long
)


@pytest.mark.parametrize("formatter", [JsonFormatter, TextFormatter])
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    message=_ANY_TEXT,
    args=st.lists(_VALUES, max_size=3),
    fields=st.dictionaries(st.sampled_from(["method", "path", "status", "client"]), _VALUES),
    with_exception=st.booleans(),
)
def test_formatters_never_raise_and_write_one_line(
    formatter: type[logging.Formatter],
    message: str,
    args: list[Any],
    fields: dict[str, Any],
    with_exception: bool,
) -> None:
    logger, stream = _handler(formatter())
    if with_exception:
        try:
            raise RuntimeError(message)
        except RuntimeError:
            logger.exception(message, *args, extra=fields)  # a broken format string included
    else:
        logger.warning(message, *args, extra=fields)
    output = stream.getvalue()
    assert output.endswith("\n")
    lines = output[
        :-1
    ].splitlines()  # Python's line breaks: \n, \r, \x0b, \x1c-\x1e, \x85, \u2028...
    assert len(lines) == 1, output
    output.encode("utf-8")  # no lone surrogate reaches the stream
    if formatter is JsonFormatter:
        entry = json.loads(lines[0])
        assert entry["level"] == "ERROR" if with_exception else "WARNING"
        assert len(entry["message"]) <= FIELD_LIMIT + 100
        assert ("exception" in entry) == with_exception
