"""Structured logs: one JSON object per line, the request id on every line a request causes
(threadpool included), and no secret (SAS signature, bearer token, account key, database
password) in any of them."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from tether.observability.logs import JsonFormatter, RedactFilter, RequestContextFilter
from tether.observability.middleware import RequestObserver
from tether.threads import blocking

if TYPE_CHECKING:
    from support import TetherServerStarter

sqlite_only = pytest.mark.parametrize("backend_kind", ["sqlite"], indirect=True)
SIG = "c2VjcmV0LXNpZ25hdHVyZQ%3D%3D"
TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ0ZXRoZXIifQ.c2VjcmV0"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsu=="
DB_PASSWORD = "pg-s3cret"
SECRETS = (SIG, TOKEN, ACCOUNT_KEY, DB_PASSWORD)


def _json_lines(text: str) -> list[dict[str, Any]]:
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines
    return [json.loads(line) for line in lines]  # every line, or this fails


@pytest.fixture
def captured() -> Any:
    """A logger writing JSON through Tether's filters into a buffer."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestContextFilter())
    handler.addFilter(RedactFilter())
    logger = logging.getLogger("tether.test-observability")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield logger, stream
    finally:
        logger.removeHandler(handler)


def test_secrets_are_masked_in_messages_arguments_and_tracebacks(captured: Any) -> None:
    logger, stream = captured
    sas = f"https://acct.blob.core.windows.net/c/run/file.bin?sv=2021-08-06&sp=cw&sig={SIG}"
    logger.info("uploading to %s", sas)
    logger.warning("request headers %s", {"Authorization": f"Bearer {TOKEN}", "x-ms": "1"})
    logger.info(
        "storage: DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=%s;", ACCOUNT_KEY
    )
    logger.error("cannot reach postgresql://tether:%s@db:5432/tether", DB_PASSWORD)
    try:
        raise RuntimeError(f"refused token Bearer {TOKEN} for {sas}")
    except RuntimeError:
        logger.exception("sync call failed")

    text = stream.getvalue()
    for secret in SECRETS:
        assert secret not in text
    entries = _json_lines(text)
    assert [e["level"] for e in entries] == ["INFO", "WARNING", "INFO", "ERROR", "ERROR"]
    assert entries[0]["message"].endswith("sp=cw&sig=[REDACTED]")  # the rest stays readable
    assert "Bearer [REDACTED]" in entries[1]["message"]
    assert "postgresql://tether:***@db:5432/tether" in entries[3]["message"]
    assert "RuntimeError" in entries[4]["exception"]
    assert all(e["request_id"] is None for e in entries)  # logged outside any request
    assert all(
        re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", e["timestamp"]) for e in entries
    )


def test_the_request_id_follows_the_request_into_the_threadpool(captured: Any) -> None:
    logger, stream = captured

    def work() -> str:  # runs in Starlette's threadpool, as the stores' calls do
        logger.info("working in a thread")
        return "done"

    async def endpoint(request: Request) -> PlainTextResponse:
        return PlainTextResponse(await blocking(work))

    async def three_requests() -> list[httpx.Response]:
        app = RequestObserver(Starlette(routes=[Route("/work", endpoint)]))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return [
                await client.get("/work", headers={"X-Request-Id": "client-id-42"}),
                await client.get("/work", headers={"X-Request-Id": "has space " + "x" * 200}),
                await client.get("/work"),
            ]

    given, made_up, missing = asyncio.run(three_requests())

    assert given.headers["x-request-id"] == "client-id-42"
    for response in (made_up, missing):  # unusable or absent: a fresh one is generated
        assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])
    assert made_up.headers["x-request-id"] != missing.headers["x-request-id"]
    ids = [e["request_id"] for e in _json_lines(stream.getvalue())]
    assert ids == [r.headers["x-request-id"] for r in (given, made_up, missing)]


@sqlite_only
def test_json_logs_of_a_server_carry_request_ids_and_no_secrets(
    start_tether_server: TetherServerStarter,
) -> None:
    server = start_tether_server(extra_args=["--log-format", "json"])
    mark = server.log_size()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=server.url, trust_env=False, timeout=60, headers=auth) as client:
        listed = client.get(
            "/api/2.0/mlflow/experiments/search",
            params={"max_results": "5", "sig": SIG},
            headers={"X-Request-Id": "search-1"},
        )
        # A refused artifact path is logged (with the client's address) as a warning.
        refused = client.get(
            f"/api/2.0/mlflow-artifacts/artifacts/%2E%2E/Bearer%20{TOKEN}",
            headers={"X-Request-Id": "refused-1"},
        )
    assert listed.status_code == 200 and listed.headers["x-request-id"] == "search-1"
    assert refused.status_code == 400 and refused.headers["x-request-id"] == "refused-1"

    # The access line is written once the response is sent: wait for it.
    deadline = time.monotonic() + 30
    while '"request_id":"refused-1","method"' not in server.log_text(mark):
        assert time.monotonic() < deadline, server.log_text(mark)
        time.sleep(0.05)
    text = server.log_text()
    entries = _json_lines(text)  # startup lines (uvicorn's, migrations) included
    assert {"timestamp", "level", "logger", "message", "request_id"} <= set(entries[0])
    for secret in SECRETS:
        assert secret not in text

    later = _json_lines(server.log_text(mark))
    search = [e for e in later if e["request_id"] == "search-1"]
    assert [e["logger"] for e in search] == ["tether.access"]
    assert search[0]["method"] == "GET" and search[0]["status"] == 200
    assert search[0]["path"] == "/api/2.0/mlflow/experiments/search?max_results=5&sig=[REDACTED]"
    assert isinstance(search[0]["duration_ms"], float)
    bad = [e for e in later if e["request_id"] == "refused-1"]
    assert sorted(e["logger"] for e in bad) == ["tether.access", "tether.artifacts"]
    warning = next(e for e in bad if e["logger"] == "tether.artifacts")
    assert warning["level"] == "WARNING" and "Bearer [REDACTED]" in warning["message"]
