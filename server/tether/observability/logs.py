"""Log output of `tether serve`: text or one JSON object per line, request ids, no secrets.

The same configuration is handed to uvicorn (`log_config`), so its own lines (startup,
errors) look like ours, in every worker process.
"""

from __future__ import annotations

import datetime
import logging
import logging.config
import re
import sys
from typing import Any

import orjson

from tether.observability.context import current_request_id
from tether.observability.redact import clip, mask

FORMATS = ("text", "json")
LEVELS = ("critical", "error", "warning", "info", "debug")
ACCESS_LOGGER = "tether.access"
# Fields an access-log line carries besides its message (see tether.observability.middleware).
ACCESS_FIELDS = ("method", "path", "status", "duration_ms", "client")
# Chatty at INFO (a line per outgoing HTTP call, per migration plugin): shown with debug only.
_QUIET_LIBRARIES = ("httpx", "httpcore", "azure", "urllib3", "alembic")


# Longest value of a log field, in characters (longer ones keep their head and tail around a
# marker): a message or an access line's path, and a traceback or stack. A request's path is
# at most uvicorn's 16 KiB request head; a recursion error's traceback was 3 MB.
FIELD_LIMIT = 8 * 1024
TRACE_LIMIT = 64 * 1024


class RequestContextFilter(logging.Filter):
    """Stamps each record with the id of the request being served (None outside requests)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id()
        return True


class RedactFilter(logging.Filter):
    """Masks SAS signatures, tokens, account keys and URI passwords in the message, its
    arguments, the traceback and every access field, before any formatter sees them, and
    shortens what is too long (`FIELD_LIMIT`, `TRACE_LIMIT`).

    Never raises (a filter's exception would reach the code that logs): a record it cannot
    prepare is replaced by a notice naming the failure."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            _scrub(record)
        except Exception as exc:  # a record it cannot prepare still gets a (safe) line
            record.msg = f"log record could not be prepared: {type(exc).__name__}"
            record.args = None
            record.exc_info = record.exc_text = record.stack_info = None
            for name in ACCESS_FIELDS:
                if hasattr(record, name):
                    setattr(record, name, None)
        return True


def _scrub(record: logging.LogRecord) -> None:
    record.msg = mask(_message(record), FIELD_LIMIT)
    record.args = None
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = mask(record.exc_text, TRACE_LIMIT)
    if record.stack_info:
        record.stack_info = mask(record.stack_info, TRACE_LIMIT)
    for name in ACCESS_FIELDS:
        value = getattr(record, name, None)
        if isinstance(value, str):
            setattr(record, name, mask(value, FIELD_LIMIT))


def _message(record: logging.LogRecord) -> str:
    """The record's message; with a broken format string or unprintable arguments, their
    raw parts (never an exception)."""
    try:
        return record.getMessage()
    except Exception:
        return f"{_text(record.msg)} {_text(record.args)}"


def _text(value: object) -> str:
    """`str(value)`, or a placeholder when its `__str__` fails."""
    try:
        return str(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"


class TextFormatter(logging.Formatter):
    """`<time> <LEVEL> <logger> [<request id or ->] <message>`, always one line: a traceback
    or stack follows the message on the same line, and newlines, other control characters,
    Unicode line separators, bidirectional overrides and lone surrogates are escaped
    (`\\n`, `\\x1b`, `\\u2028`, `\\ud800`), so no value can start a line of its own.
    Never raises."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        try:
            return self._format(record)
        except Exception as exc:
            return _escape(_fallback_text(record, exc))

    def _format(self, record: logging.LogRecord) -> str:
        record.message = clip(_message(record), FIELD_LIMIT)
        record.asctime = self.formatTime(record, self.datefmt)
        request = getattr(record, "request_id", None) or current_request_id() or "-"
        line = f"{record.asctime} {record.levelname} {record.name} [{request}] {record.message}"
        if record.exc_info and not record.exc_text:
            record.exc_text = clip(self.formatException(record.exc_info), TRACE_LIMIT)
        if record.exc_text:
            line = f"{line} | {clip(record.exc_text, TRACE_LIMIT)}"
        if record.stack_info:
            line = f"{line} | {clip(record.stack_info, TRACE_LIMIT)}"
        return _escape(line)


# What must not reach a text line as is: C0 and C1 controls (newlines included), DEL, the
# Unicode line and paragraph separators, bidirectional controls, and lone surrogates (not
# encodable as UTF-8).
_UNSAFE_TEXT = re.compile(
    "[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    if char in _ESCAPES:
        return _ESCAPES[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _escape(line: str) -> str:
    return line if _UNSAFE_TEXT.search(line) is None else _UNSAFE_TEXT.sub(_escape_char, line)


def _fallback_text(record: logging.LogRecord, exc: Exception) -> str:
    return f"{_iso(record.created)} ERROR tether.logs [-] {_failure(record, exc)}"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: timestamp, level, logger, message, request_id, plus the
    access fields when present and the exception text when there is one.

    Never raises: a value orjson refuses (a lone surrogate, an integer beyond 64 bits, an
    object whose `str` fails) is replaced by a printable form, and a record that still
    cannot be written becomes a line saying so."""

    def format(self, record: logging.LogRecord) -> str:
        try:
            entry = self._entry(record)
        except Exception as exc:
            return _fallback_json(record, exc)
        try:
            return _one_line(orjson.dumps(entry, default=_text).decode())
        except Exception:  # the slow path: only for records with unencodable values
            pass
        try:
            return _one_line(orjson.dumps({k: _json_safe(v) for k, v in entry.items()}).decode())
        except Exception as exc:
            return _fallback_json(record, exc)

    def _entry(self, record: logging.LogRecord) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "timestamp": _iso(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": clip(_message(record), FIELD_LIMIT),
            "request_id": getattr(record, "request_id", current_request_id()),
        }
        for name in ACCESS_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = clip(value, FIELD_LIMIT) if isinstance(value, str) else value
        if record.exc_info and not record.exc_text:
            record.exc_text = clip(self.formatException(record.exc_info), TRACE_LIMIT)
        if record.exc_text:
            entry["exception"] = clip(record.exc_text, TRACE_LIMIT)
        if record.stack_info:
            entry["stack"] = clip(record.stack_info, TRACE_LIMIT)
        return entry


# Line breaks to Python's `str.splitlines` (and some log shippers) that JSON leaves unescaped.
_JSON_LINE_BREAKS = re.compile("[\x85\u2028\u2029]")


def _one_line(line: str) -> str:
    """orjson's output with the characters above escaped (they occur only inside strings)."""
    if _JSON_LINE_BREAKS.search(line) is None:
        return line
    return _JSON_LINE_BREAKS.sub(lambda m: f"\\u{ord(m.group()):04x}", line)


_INT64 = range(-(2**63), 2**64)  # what orjson writes as a number


def _json_safe(value: object) -> object:
    """A value orjson can write: strings with lone surrogates escaped (`\\ud800`), numbers
    beyond 64 bits and anything else as text."""
    if value is None or isinstance(value, bool | float):
        return value
    if isinstance(value, int):
        return value if value in _INT64 else str(value)
    text = value if isinstance(value, str) else _text(value)
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _failure(record: logging.LogRecord, exc: Exception) -> str:
    return f"a log record of {_text(record.name)!r} could not be written: {type(exc).__name__}"


_LAST_RESORT = '{"level":"ERROR","logger":"tether.logs","message":"a log record was lost"}'


def _fallback_json(record: logging.LogRecord, exc: Exception) -> str:
    entry = {
        "timestamp": _iso(record.created),
        "level": "ERROR",
        "logger": "tether.logs",
        "message": _failure(record, exc),
        "request_id": getattr(record, "request_id", None),
    }
    try:
        return orjson.dumps({k: _json_safe(v) for k, v in entry.items()}).decode()
    except Exception:
        return _LAST_RESORT


class SafeStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """stderr, as `logging.StreamHandler`, except when a record cannot be written: Python's
    `handleError` prints the record's raw message and arguments with a multi-line traceback
    (unredacted, and not in the log's format); this writes one line in the log's format
    naming the failure, or nothing when the stream itself is broken."""

    def handleError(self, record: logging.LogRecord) -> None:
        exc = sys.exc_info()[1] or RuntimeError("unknown")
        failure = exc if isinstance(exc, Exception) else RuntimeError(type(exc).__name__)
        if isinstance(self.formatter, JsonFormatter):
            line = _fallback_json(record, failure)
        else:
            line = _escape(_fallback_text(record, failure))
        try:
            self.stream.write(line + self.terminator)
            self.flush()
        except Exception:  # the stream is what failed: nowhere left to say so
            pass


def _iso(created: float) -> str:
    moment = datetime.datetime.fromtimestamp(created, tz=datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def log_config(log_format: str = "text", level: str = "info") -> dict[str, Any]:
    """A `logging.config.dictConfig` dict: every logger (uvicorn's included) to stderr through
    the request-id and redaction filters, in the chosen format."""
    if log_format not in FORMATS:
        raise ValueError(f"log format must be one of {FORMATS}, not {log_format!r}")
    name = level.upper()
    quiet = name if name == "DEBUG" else "WARNING"
    formatter = f"{__name__}.{'JsonFormatter' if log_format == 'json' else 'TextFormatter'}"
    routed_to_root = {"handlers": [], "propagate": True}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "request_context": {"()": f"{__name__}.RequestContextFilter"},
            "redact": {"()": f"{__name__}.RedactFilter"},
        },
        "formatters": {"tether": {"()": formatter}},
        "handlers": {
            "stderr": {
                "class": f"{__name__}.SafeStreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "tether",
                "filters": ["request_context", "redact"],
            }
        },
        "root": {"handlers": ["stderr"], "level": name},
        "loggers": {
            "uvicorn": {**routed_to_root, "level": name},
            "uvicorn.error": {**routed_to_root, "level": name},
            "uvicorn.access": {**routed_to_root, "level": name},
            **{library: {"level": quiet} for library in _QUIET_LIBRARIES},
        },
    }


def configure(log_format: str = "text", level: str = "info") -> None:
    logging.config.dictConfig(log_config(log_format, level))
    lean_records()


def lean_records() -> None:
    """Stop collecting per record what no Tether format prints: the caller's file and line
    (a stack walk per record), thread and process names. The logging HOWTO's own
    "Optimization" advice; an access line per request made it measurable."""
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
