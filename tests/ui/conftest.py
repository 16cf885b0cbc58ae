"""Fixtures of the web UI tests: a Tether server with the UI, the data a user logged, and
headless Chromium (see browser.py).

The UI comes from where `tether serve` finds it: the test extra pins `mlflow==3.17.2`
(the reference server), whose package holds the pinned UI build. Chromium is Debian's
package (`.ci/run` installs it); without it these tests fail, unless
TETHER_TEST_SKIP_BROWSER=1 (then they are skipped, saying so).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from support import TetherServer
from ui.browser import CHROMIUM, SKIP_ENV
from ui.workload import Workload, log_workload

if TYPE_CHECKING:
    from support.servers import BackendUriFactory


@pytest.fixture(scope="session")
def chromium_binary() -> str:
    if not Path(CHROMIUM).is_file():
        if os.environ.get(SKIP_ENV) == "1":
            pytest.skip(f"{SKIP_ENV}=1 and {CHROMIUM} is not installed")
        pytest.fail(
            f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium; "
            f".ci/run does) or set {SKIP_ENV}=1",
            pytrace=False,
        )
    return CHROMIUM


@pytest.fixture(scope="module")
def ui_server(make_backend_uri: BackendUriFactory) -> Iterator[TetherServer]:
    """`tether serve` with the UI, on SQLite (the API's backends are tested elsewhere)."""
    server = TetherServer(make_backend_uri("sqlite"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def workload(ui_server: TetherServer) -> Workload:
    return log_workload(ui_server.url)
