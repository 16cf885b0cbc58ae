"""Logs under hostile requests: no planted secret in any line, in any encoding; every JSON
line one object, every text line one line; long values shortened; a record that cannot be
written gives one line in the log's format, never Python's raw traceback.

Regressions: `%26sig%3D...`, `AccountKey%3D...` and encoded database URIs in query strings,
and the refused-artifact-path warning, logged secrets in clear; `%0a` in a path forged a text
line; a 2,000-segment path wrote a 3 MB line; the JSON formatter's failure printed an
unredacted multi-line traceback to stderr.
"""

from __future__ import annotations

import io
import json
import logging
import re
import time
import urllib.parse

import pytest

from support import MlflowRest, TetherServer, TetherServerStarter
from tether.observability.logs import (
    FIELD_LIMIT,
    TRACE_LIMIT,
    JsonFormatter,
    RedactFilter,
    SafeStreamHandler,
    TextFormatter,
)

# The store plays no part here: one backend is enough.
sqlite_only = pytest.mark.parametrize("backend_kind", ["sqlite"], indirect=True)

SECRET = "Zq7SECRETvalue0123456789"
PROXY = "/api/2.0/mlflow-artifacts/artifacts"


def _q(text: str, times: int = 1) -> str:
    for _ in range(times):
        text = urllib.parse.quote(text, safe="")
    return text


# Query strings and paths a client may send, each hiding SECRET (plain, encoded, encoded twice).
SAS = f"https://a.blob.core.windows.net/c/f?sv=1&sig={SECRET}"
HOSTILE_TARGETS = [
    f"/api/2.0/mlflow/experiments/search?u={_q(SAS)}",
    f"/api/2.0/mlflow/experiments/search?u={_q(SAS, 2)}",
    f"/api/2.0/mlflow/experiments/search?c={_q('AccountName=a;AccountKey=' + SECRET + ';x=y')}",
    f"/api/2.0/mlflow/experiments/search?db={_q('postgresql://tether:' + SECRET + '@db:5432/t')}",
    f"/api/2.0/mlflow/experiments/search?db={_q('postgresql://tether:' + SECRET + '@db/t', 2)}",
    f"/api/2.0/mlflow/experiments/search?h={_q('Authorization: Bearer ' + SECRET)}",
    f"/api/2.0/mlflow/experiments/search?t=Bearer+{SECRET}",
    f"/api/2.0/mlflow/experiments/search?x=1&sig={SECRET}",
    f"/api/2.0/mlflow/no-such/{_q('sig=' + SECRET, 2)}",
    f"{PROXY}/%2e%2e/{_q('AccountKey=' + SECRET)}",  # the refused-path warning logs it
    f"{PROXY}/a/{_q('..')}/{_q('postgresql://u:' + SECRET + '@h/d')}",
    f"{PROXY}/a%0a2026-01-01T00:00:00.000Z%20INFO%20forged",  # a forged line, if unescaped
    f"{PROXY}/{'/'.join(['d'] * 2000)}/Bearer%20{SECRET}",  # 2,000 segments
]


@pytest.fixture
def json_server(start_tether_server: TetherServerStarter) -> TetherServer:
    return start_tether_server(extra_args=["--log-format", "json"])


@pytest.fixture
def text_server(start_tether_server: TetherServerStarter) -> TetherServer:
    return start_tether_server(extra_args=["--log-format", "text"])


def _send_all(server: TetherServer) -> list[str]:
    """Send every hostile target (byte for byte) and return the request ids they got."""
    ids = []
    with MlflowRest(server.url, timeout=30) as rest:
        for index, target in enumerate(HOSTILE_TARGETS):
            request_id = f"hostile-{index}"
            request = rest.client.build_request("GET", server.url)
            request.url = request.url.copy_with(raw_path=target.encode())
            request.headers["X-Request-Id"] = request_id
            answer = rest.client.send(request)
            assert answer.status_code < 500, (target[:200], answer.text[:300])
            ids.append(request_id)
    return ids


def _wait_for(server: TetherServer, start: int, marker: str) -> str:
    deadline = time.monotonic() + 60
    while marker not in (text := server.log_text(start)):
        assert time.monotonic() < deadline, text[-2000:]
        time.sleep(0.05)
    return text


@sqlite_only
def test_json_lines_stay_json_short_and_without_secrets(json_server: TetherServer) -> None:
    start = json_server.log_size()
    ids = _send_all(json_server)
    text = _wait_for(json_server, start, f'"request_id":"{ids[-1]}","method"')
    assert SECRET not in text
    for encoded in (_q(SECRET), _q(SECRET, 2)):
        assert encoded not in text
    entries = []
    for line in text.splitlines():  # Python's line breaks, \u2028 and \x85 included
        assert len(line) < FIELD_LIMIT * 3 + TRACE_LIMIT + 1000, line[:300]
        entries.append(json.loads(line))
    access = {e["request_id"]: e for e in entries if e["logger"] == "tether.access"}
    assert set(ids) <= set(access)
    # The access lines keep what is not secret readable.
    assert "AccountName=a;AccountKey=[REDACTED]" in urllib.parse.unquote(
        access["hostile-2"]["path"]
    )
    assert access["hostile-11"]["path"].startswith(f"{PROXY}/a\n2026")  # escaped by JSON
    warnings = [e for e in entries if e["logger"] == "tether.artifacts"]
    assert warnings and all("[REDACTED]" in e["message"] or "***" in e["message"] for e in warnings)


@sqlite_only
def test_text_lines_cannot_be_forged(text_server: TetherServer) -> None:
    start = text_server.log_size()
    ids = _send_all(text_server)
    text = _wait_for(text_server, start, f"[{ids[-1]}] GET")
    assert SECRET not in text
    stamp = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ \S+ \[")
    for line in text.splitlines():
        assert stamp.match(line), line[:300]  # every line is a record's own first line
    assert "a\\n2026-01-01T00:00:00.000Z INFO forged" in text


class _AsciiOnly(io.StringIO):
    """A stream that cannot encode what it is given (as a strict-ASCII stderr would)."""

    def write(self, text: str) -> int:
        text.encode("ascii")
        return super().write(text)


@pytest.mark.parametrize("formatter", [JsonFormatter, TextFormatter])
def test_a_record_that_cannot_be_written_gives_one_safe_line(
    formatter: type[logging.Formatter], capsys: pytest.CaptureFixture[str]
) -> None:
    stream = _AsciiOnly()
    handler = SafeStreamHandler(stream)
    handler.setFormatter(formatter())
    handler.addFilter(RedactFilter())
    logger = logging.Logger("tether.test-handle-error")
    logger.addHandler(handler)
    logger.error("caf\u00e9 AccountKey=%s sig=%s\nsecond line", SECRET, SECRET)

    written = stream.getvalue()
    assert written.count("\n") == 1 and SECRET not in written
    assert "could not be written: UnicodeEncodeError" in written
    if formatter is JsonFormatter:
        assert json.loads(written)["logger"] == "tether.logs"
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""  # no "--- Logging error ---" traceback


def test_the_formatter_survives_what_used_to_crash_it() -> None:
    """A lone surrogate (orjson refuses it), an integer beyond 64 bits, an object whose str()
    fails, a broken format string: each record still gives one JSON line."""

    class Unprintable:
        def __str__(self) -> str:
            raise RuntimeError("no")

    stream = io.StringIO()
    handler = SafeStreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactFilter())
    logger = logging.Logger("tether.test-formatter")
    logger.addHandler(handler)
    logger.warning("name \ud800 sig=%s", SECRET)
    logger.warning("status", extra={"status": 2**70, "path": "/a\udcff", "client": Unprintable()})
    logger.warning("%d items", "not a number")
    logger.warning("object %s", Unprintable())
    lines = stream.getvalue().splitlines()
    assert len(lines) == 4 and SECRET not in stream.getvalue()
    entries = [json.loads(line) for line in lines]
    assert entries[0]["message"] == "name \\ud800 sig=[REDACTED]"
    assert entries[1]["status"] == str(2**70) and entries[1]["path"] == "/a\\udcff"
    assert entries[2]["message"] == "%d items ('not a number',)"
