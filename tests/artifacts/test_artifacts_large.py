"""A 1 GiB artifact through the proxy, up and down, in bounded memory on both sides.

The client streams the body from a generator and hashes the download as it arrives, so the
test holds one chunk at a time; the server's peak resident set (VmHWM of its process) must
stay under PEAK_RSS_LIMIT, far below the file size.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from artifacts.conftest import server_args
from artifacts.helpers import PROXY
from support.procs import peak_rss

SIZE = 1024**3
CHUNK = 1024**2
PEAK_RSS_LIMIT = 250 * 1024**2


def _body(digest: Any) -> Iterator[bytes]:
    block = random.Random(1234).randbytes(CHUNK)
    for index in range(SIZE // CHUNK):
        chunk = index.to_bytes(8, "little") + block[8:]  # no two chunks alike
        digest.update(chunk)
        yield chunk


@pytest.mark.timeout(600)
@pytest.mark.parametrize("backend_kind", ["sqlite"], indirect=True)
@pytest.mark.parametrize("kind", ["local", "azurite"])
def test_one_gib_round_trip(
    kind: str, start_tether_server: Any, request: pytest.FixtureRequest
) -> None:
    extra_args, env = server_args(kind, request)
    server = start_tether_server(extra_args=extra_args, env=env)
    pid = server.process.pid
    url = f"{server.url}{PROXY}/big/1gib.bin"
    baseline = peak_rss(pid)

    sent = hashlib.sha256()
    started = time.monotonic()
    with httpx.Client(timeout=300) as http:
        answer = http.put(url, content=_body(sent))
        assert answer.status_code == 200, answer.text
        uploaded = time.monotonic()
        after_upload = peak_rss(pid)
        received = hashlib.sha256()
        size = 0
        with http.stream("GET", url) as response:
            assert response.status_code == 200
            assert response.headers["content-length"] == str(SIZE)
            for chunk in response.iter_bytes(CHUNK):
                received.update(chunk)
                size += len(chunk)
    downloaded = time.monotonic()

    peak = peak_rss(pid)
    print(
        f"\n[{kind}] 1 GiB up {uploaded - started:.1f}s, down {downloaded - uploaded:.1f}s; "
        f"server peak RSS {peak / 1024**2:.0f} MiB (after start {baseline / 1024**2:.0f} MiB, "
        f"after upload {after_upload / 1024**2:.0f} MiB)"
    )
    assert size == SIZE
    assert received.hexdigest() == sent.hexdigest()
    assert peak < PEAK_RSS_LIMIT, f"server peak RSS {peak / 1024**2:.0f} MiB"
