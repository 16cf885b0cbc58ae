"""Decode a JSON request body with bounded work: strict UTF-8, bounded nesting and size.

The byte limit (`tether.api.limits`) bounds a body's size, not the work it causes: 32 MiB of
`[],` is 11 million lists, which orjson took 8 s and 1 GiB to build (measured), all the while
holding the GIL, so running the parse on a thread alone would not have kept the event loop
answering. So, before anything is parsed, a body is refused (400) when it could build more
than `MAX_CONTAINERS` arrays and objects or more than `MAX_ELEMENTS` values: both are counted
over the raw bytes (`[` and `{`; `,`), strings included, with `bytes.count` (C speed, in
slices so that no single call holds the GIL for long: ~3 ms per 4 MiB). Counting inside
strings too over-counts, never under-counts, and stays far below the limits for anything an
MLflow client sends (log-batch's 1,000 metrics: ~1,000 objects, ~5,000 commas; a 1 MiB dataset
schema, estimated: ~20,000 braces). At the limits a parse costs ~20 ms (100,000 lists) + ~80
ms (1,000,000 numbers), measured: a tenth of a second at worst, no longer a stall.

Nesting deeper than `MAX_DEPTH` is refused too (orjson stops at 1,024 levels itself; the
stdlib's parser and encoder recurse and would raise RecursionError near 1,000), told from
the brackets alone when they pair up (`_surely_shallow`), else by a walk over the parsed
value. Bodies up to `INLINE_BYTES` (MLflow's small writes: log-metric, set-tag, ...) are
decoded on the event loop: their worst case (~1,300 lists, walked) took 0.4 ms on a busy
2-core machine, where the hop to a thread and back took 0.1 ms; larger ones are decoded on
the store's thread pool.

Strings are strict UTF-8: a lone surrogate, as an escape (`"\\ud800"`) or as raw CESU-8 bytes
(ED A0 80), is refused with 400 (orjson refuses both). NaN and Infinity literals, which orjson
refuses and MLflow's parser (Python's json) accepts, are accepted through the stdlib parser,
with the same strictness: the body must be valid in the encoding that parser detects (UTF-8,
with or without a BOM, as every MLflow client sends; UTF-16/32) and no string may hold a
lone surrogate. Every refusal is MLflow's INVALID_PARAMETER_VALUE.
"""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any

import orjson

from tether.errors import MlflowError, invalid_parameter
from tether.threads import blocking

MAX_DEPTH = 64
MAX_CONTAINERS = 100_000
MAX_ELEMENTS = 1_000_000
INLINE_BYTES = 4 * 1024
_SLICE = 4 * 1024 * 1024

_SURROGATE = re.compile("[\ud800-\udfff]")


async def decode_body(body: bytes) -> Any:
    """The JSON value of `body` (not yet checked to be an object), decoded within the bounds."""
    if len(body) <= INLINE_BYTES:
        return decode(body)
    return await blocking(decode, body)


def decode(body: bytes) -> Any:
    parsed = _decode_bounded(body)
    if isinstance(parsed, str):
        # Some older clients double-encode the body; MLflow accepts that (one level). The
        # inner document is no larger than the body and gets the same bounds; one that is no
        # JSON leaves the string, which the caller refuses as no object.
        with contextlib.suppress(ValueError, MlflowError):
            return _decode_bounded(parsed.encode("utf-8"))
    return parsed


def _decode_bounded(body: bytes) -> Any:
    containers = _count(body, b"[") + _count(body, b"{")
    if containers > MAX_CONTAINERS:
        raise invalid_parameter(
            f"Malformed JSON request body: more than {MAX_CONTAINERS} arrays and objects."
        )
    if len(body) >= MAX_ELEMENTS and _count(body, b",") + 1 > MAX_ELEMENTS:
        raise invalid_parameter(f"Malformed JSON request body: more than {MAX_ELEMENTS} values.")
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc):
            raise _too_deep() from None
        return _stdlib_decode(body)
    if containers > MAX_DEPTH and not _surely_shallow(body, containers):
        _check_depth(parsed)
    return parsed


def _count(body: bytes, char: bytes) -> int:
    if len(body) <= _SLICE:
        return body.count(char)
    return sum(body.count(char, start, start + _SLICE) for start in range(0, len(body), _SLICE))


_NOT_BRACKETS = bytes(c for c in range(256) if c not in b"[]{}")


def _surely_shallow(body: bytes, opening: int) -> bool:
    """Whether the body's brackets surely nest no deeper than MAX_DEPTH, told at C speed: of
    its brackets alone, each pass removes every innermost pair (`[]`, then `{}`), so at least
    one level and at most two; empty within MAX_DEPTH // 2 passes means no deeper than
    MAX_DEPTH. Brackets inside strings can spoil the pairing: then the walk over the parsed
    value decides (on log-batch's 1,000 metrics the walk costs about as much as the parse,
    this check ~35 us, measured)."""
    brackets = b"".join(
        body[start : start + _SLICE].translate(None, _NOT_BRACKETS)
        for start in range(0, len(body), _SLICE)
    )
    if len(brackets) != 2 * opening:
        return False
    for _ in range(MAX_DEPTH // 2):
        brackets = brackets.replace(b"[]", b"").replace(b"{}", b"")
        if not brackets:
            return True
    return False


def _stdlib_decode(body: bytes) -> Any:
    """orjson refused `body`: it may use NaN/Infinity, or a BOM or UTF-16/32, which Python's
    json (and so MLflow) accept. The stdlib decodes bytes with 'surrogatepass' (raw CESU-8
    surrogates pass) and turns `\\ud800` escapes into lone surrogates: decode strictly first
    (in the encoding it would detect), and look for surrogates after."""
    encoding = json.detect_encoding(body)
    try:
        text = body.decode(encoding)
    except UnicodeDecodeError as exc:
        name = "UTF-8" if encoding.startswith("utf-8") else encoding.upper()
        raise invalid_parameter(
            f"Malformed JSON request body: invalid {name} at byte {exc.start}."
        ) from None
    try:
        parsed = json.loads(text)
    except RecursionError:
        raise _too_deep() from None
    except ValueError as exc:
        raise invalid_parameter(f"Malformed JSON request body: {exc}") from None
    _check_depth(parsed, strings=True)
    return parsed


def _check_depth(value: Any, *, strings: bool = False) -> None:
    """Refuse nesting deeper than MAX_DEPTH (and, with `strings`, lone surrogates in keys or
    string values), level by level: no recursion, one pass over the values. (Exact type
    checks: the parsers build plain dicts and lists, and `isinstance` with a union is several
    times slower.)"""
    level = [value]
    if strings:
        _check_strings(level)
    depth = 0
    while level:
        depth += 1
        if depth > MAX_DEPTH:
            raise _too_deep()
        below: list[Any] = []
        for item in level:
            if type(item) is dict:
                if strings:
                    _check_strings(item.keys())
                below.extend(item.values())
            elif type(item) is list:
                below.extend(item)
        if strings:
            _check_strings(below)
        level = [item for item in below if type(item) is dict or type(item) is list]


def _check_strings(values: Any) -> None:
    for value in values:
        if isinstance(value, str) and not value.isascii() and _SURROGATE.search(value):
            raise invalid_parameter(
                "Malformed JSON request body: a string holds a lone UTF-16 surrogate "
                "(not valid Unicode)."
            )


def _too_deep() -> Exception:
    return invalid_parameter(f"Malformed JSON request body: nested deeper than {MAX_DEPTH} levels.")
