"""Headless Chromium for the UI tests: Debian's `chromium` driven by Playwright for Python.

No browser is ever downloaded: Playwright launches the system binary (`CHROMIUM`, installed
by `.ci/run` with apt) with a new, empty profile per browser. A `Visit` opens one page of
the UI and records every response the page gets; `check` then asserts that

- the page shows the data the test names (texts, each within a generous deadline: the
  bundle renders asynchronously, and CI is a slow 2-core machine),
- no error banner or "something went wrong" screen is shown,
- no request to Tether failed: every 4xx/5xx answer from Tether fails the test, except the
  requests the reference `mlflow server` also refuses (`REFERENCE_ALSO_REFUSES`);
and keeps a screenshot in `tests/ui/screenshots/` (git-ignored; CI keeps it as an artifact).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import BrowserContext, Page, Response, sync_playwright

CHROMIUM = os.environ.get("TETHER_TEST_CHROMIUM", "/usr/bin/chromium")
SKIP_ENV = "TETHER_TEST_SKIP_BROWSER"
SCREENSHOTS = Path(__file__).parent / "screenshots"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1400, "height": 900}
PHONE = {"width": 390, "height": 844}
RENDER_TIMEOUT_MS = 45_000

# Answered 404 by the reference server too (no auth configured): the UI carries on.
REFERENCE_ALSO_REFUSES = (("GET", re.compile(r"/ajax-api/2\.0/mlflow/users/current$")),)
# What the UI shows when a request it needed failed.
ERROR_TEXTS = re.compile(
    r"Something went wrong|Can't load run details|Experiment load error|"
    r"Request failed with status|Unable to load|An error occurred|No API endpoint|"
    r"ENDPOINT_NOT_FOUND|RESOURCE_DOES_NOT_EXIST|INVALID_PARAMETER_VALUE|INTERNAL_ERROR",
    re.IGNORECASE,
)


def _matches(rules: tuple[tuple[str, re.Pattern[str]], ...], method: str, path: str) -> bool:
    return any(method == m and pattern.search(path) for m, pattern in rules)


@dataclass
class Answer:
    method: str
    path: str
    status: int


@dataclass
class Visit:
    """One page of the UI in a fresh tab, with every response it got from Tether."""

    page: Page
    base_url: str
    name: str
    answers: list[Answer] = field(default_factory=list)

    def record(self, response: Response) -> None:
        url = response.url
        if url.startswith(self.base_url):
            path = url[len(self.base_url) :].split("?", 1)[0].split("#", 1)[0] or "/"
            self.answers.append(Answer(response.request.method, path, response.status))

    def failed(self) -> list[Answer]:
        """Tether's 4xx/5xx answers, less the ones the reference gives too."""
        return [
            a
            for a in self.answers
            if a.status >= 400 and not _matches(REFERENCE_ALSO_REFUSES, a.method, a.path)
        ]

    def answer_to(self, method: str, path_end: str) -> Answer:
        """Tether's first answer to a request whose path ends with `path_end`, waiting for it
        (the page sends its requests as it renders)."""
        deadline = time.monotonic() + RENDER_TIMEOUT_MS / 1000
        while True:
            for answer in self.answers:
                if answer.method == method and answer.path.endswith(path_end):
                    return answer
            assert time.monotonic() < deadline, f"{self.name}: no {method} {path_end} was sent"
            self.page.wait_for_timeout(100)  # lets Playwright deliver the page's events

    def in_order(self, axis: str, *texts: str) -> bool:
        """Whether the texts (each exactly, its first occurrence) are laid out in this order
        along `axis` ("x": left to right, "y": top to bottom)."""
        places = []
        for text in texts:
            box = self.page.get_by_text(text, exact=True).first.bounding_box()
            assert box is not None, f"{self.name}: {text!r} is not shown"
            places.append(box[axis])
        return places == sorted(places)

    def wait_for_text(self, text: str | re.Pattern[str]) -> None:
        self.page.get_by_text(text).first.wait_for(state="visible", timeout=RENDER_TIMEOUT_MS)

    def shown(self, *texts: str | re.Pattern[str]) -> None:
        """Each text is on the page (waiting for it); a screenshot is taken either way."""
        try:
            for text in texts:
                self.wait_for_text(text)
            self.page.wait_for_load_state("load")
        finally:
            self.screenshot()

    def check(self, *texts: str | re.Pattern[str]) -> None:
        """`shown(*texts)`, no failed request to Tether, no error banner."""
        self.shown(*texts)
        failed = self.failed()
        assert not failed, f"{self.name}: requests to Tether failed: {failed}"
        banners = self.page.get_by_text(ERROR_TEXTS)
        shown = [banners.nth(i).inner_text() for i in range(banners.count())]
        assert not shown, f"{self.name}: error shown: {shown}"

    def screenshot(self, suffix: str = "") -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"{self.name}{suffix}.png"), full_page=False)


class Browser:
    """A browser profile; `visit(url, name)` opens a page in a new tab."""

    def __init__(self, context: BrowserContext, base_url: str) -> None:
        self.context = context
        self.base_url = base_url.rstrip("/")

    @contextmanager
    def visit(self, path: str, name: str) -> Iterator[Visit]:
        page = self.context.new_page()
        visit = Visit(page, self.base_url, name)
        page.on("response", visit.record)
        try:
            page.goto(self.base_url + path, wait_until="domcontentloaded")
            yield visit
        finally:
            page.close()


@contextmanager
def chromium(
    base_url: str,
    viewport: dict[str, int] = DESKTOP,
    credentials: tuple[str, str] | None = None,
) -> Iterator[Browser]:
    """A fresh browser profile; `credentials`: (username, password) it answers the server's
    basic-auth challenge with."""
    profile = tempfile.mkdtemp(prefix="tether-chromium-")
    login = (
        None if credentials is None else {"username": credentials[0], "password": credentials[1]}
    )
    try:
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                profile,
                executable_path=CHROMIUM,
                headless=True,
                args=ARGS,
                viewport=viewport,  # type: ignore[arg-type]
                locale="en-US",
                timezone_id="UTC",
                http_credentials=login,  # type: ignore[arg-type]
            )
            try:
                yield Browser(context, base_url)
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
