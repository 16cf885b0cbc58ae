"""Reading a Prometheus text page the way a scraper does (prometheus-client's own parser)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True)
class Samples:
    values: dict[tuple[str, frozenset[tuple[str, str]]], float]

    def get(self, name: str, **labels: str) -> float:
        """The sample `name` with exactly these labels; 0 when it is absent."""
        return self.values.get((name, frozenset(labels.items())), 0.0)

    def total(self, name: str, **labels: str) -> float:
        """Sum of the samples `name` whose labels include these."""
        wanted = set(labels.items())
        return sum(v for (n, ls), v in self.values.items() if n == name and wanted <= ls)

    def names(self) -> set[str]:
        return {name for name, _ in self.values}


def scrape(base_url: str) -> Samples:
    response = httpx.get(f"{base_url}/metrics", timeout=30, trust_env=False)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    values = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            values[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return Samples(values)


def scrape_when(base_url: str, ready: Callable[[Samples], bool], timeout: float = 15) -> Samples:
    """The first page on which `ready` holds, or the last one read when `timeout` runs out.

    A request is counted once its last byte has been sent (its latency runs to there), so a
    client can read its answer a moment before the count lands: a test that scrapes right
    after its last request waits for the counts it expects, then asserts them exactly.
    """
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(base_url)
        if ready(samples) or time.monotonic() > deadline:
            return samples
        time.sleep(0.05)
