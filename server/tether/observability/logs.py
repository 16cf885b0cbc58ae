"""Log output of `tether serve`: text or one JSON object per line, request ids, no secrets.

The same configuration is handed to uvicorn (`log_config`), so its own lines (startup,
errors) look like ours, in every worker process.
"""

from __future__ import annotations

import datetime
import logging
import logging.config
from typing import Any

import orjson

from tether.observability.context import current_request_id
from tether.observability.redact import redact

FORMATS = ("text", "json")
LEVELS = ("critical", "error", "warning", "info", "debug")
ACCESS_LOGGER = "tether.access"
# Fields an access-log line carries besides its message (see tether.observability.middleware).
ACCESS_FIELDS = ("method", "path", "status", "duration_ms", "client")
# Chatty at INFO (a line per outgoing HTTP call, per migration plugin): shown with debug only.
_QUIET_LIBRARIES = ("httpx", "httpcore", "azure", "urllib3", "alembic")


class RequestContextFilter(logging.Filter):
    """Stamps each record with the id of the request being served (None outside requests)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id()
        return True


class RedactFilter(logging.Filter):
    """Masks SAS signatures, tokens, account keys and URI passwords in the message, its
    arguments and the traceback, before any formatter sees them."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: keep the raw parts, still masked
            message = f"{record.msg} {record.args}"
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        path = getattr(record, "path", None)
        if isinstance(path, str):
            record.path = redact(path)
        return True


class TextFormatter(logging.Formatter):
    """`<time> <LEVEL> <logger> [<request id or ->] <message>`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        request = getattr(record, "request_id", None) or current_request_id() or "-"
        return f"{record.asctime} {record.levelname} {record.name} [{request}] {record.message}"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: timestamp, level, logger, message, request_id, plus the
    access fields when present and the exception text when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": _iso(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", current_request_id()),
        }
        for name in ACCESS_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return orjson.dumps(entry, default=str).decode()


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
                "class": "logging.StreamHandler",
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
