"""The worker's shared throttle (sync/azureml/throttle.py) on its own: AIMD window, holds that
honour Retry-After up to a cap, one probe at a time after throttling, stop. Real threads and
the real clock with short holds; what must *not* happen is checked over a bounded wait."""

from __future__ import annotations

import threading
import time

import pytest

from tether.sync.azureml.throttle import Stopping, Throttle

pytestmark = pytest.mark.timeout(60)


def _acquire_in_thread(throttle: Throttle) -> tuple[threading.Thread, threading.Event]:
    got = threading.Event()

    def run() -> None:
        throttle.acquire()
        got.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, got


def test_the_window_caps_requests_in_flight_and_grows_additively() -> None:
    throttle = Throttle(4)
    sent = [throttle.acquire() for _ in range(4)]
    _, fifth = _acquire_in_thread(throttle)
    assert not fifth.wait(0.3), "a fifth request while four are in flight"
    throttle.release(sent[0], throttled=False, answered=True)
    assert fifth.wait(10)
    assert throttle.window == 4.0  # already at its limit

    throttle = Throttle(4)
    throttle.window = 1.0
    for _ in range(3):  # answers without throttling: +1/window each
        throttle.release(throttle.acquire(), throttled=False, answered=True)
    assert throttle.window == pytest.approx(1 + 1 + 1 / 2 + 1 / 2.5, abs=1e-9)


def test_throttling_halves_the_window_once_per_burst_and_holds_everyone() -> None:
    throttle = Throttle(8, hold_max=5.0)
    burst = [throttle.acquire() for _ in range(4)]  # on the wire together
    hold = throttle.release(burst[0], throttled=True, answered=True, retry_after=0.4)
    assert hold == 0.4 and throttle.window == 4.0
    for sent in burst[1:]:  # the same news: no further halving, the hold is kept
        throttle.release(sent, throttled=True, answered=True, retry_after=0.4)
    assert throttle.window == 4.0 and throttle.stats.cuts == 1
    assert 0.2 < throttle.paused_for() <= 0.4
    started = time.monotonic()
    probe = throttle.acquire()
    assert time.monotonic() - started >= 0.3, "nobody sends during the hold"

    # Then one probe at a time, whatever the window.
    _, second = _acquire_in_thread(throttle)
    assert not second.wait(0.3), "a second request while the probe is out"
    throttle.release(probe, throttled=False, answered=True)
    assert second.wait(10) and not throttle.probing


def test_a_long_retry_after_holds_the_others_only_up_to_the_cap() -> None:
    throttle = Throttle(2, hold_max=0.5)
    hold = throttle.release(throttle.acquire(), throttled=True, answered=True, retry_after=30)
    assert hold == 0.5 and throttle.paused_for() <= 0.5
    started = time.monotonic()
    throttle.acquire()
    assert 0.3 <= time.monotonic() - started < 5


def test_without_retry_after_the_hold_grows_with_the_streak() -> None:
    throttle = Throttle(1, hold_max=100.0)
    holds = []
    for _ in range(4):
        sent = throttle.acquire() if not throttle.paused_for() else 0.0
        holds.append(throttle.release(sent, throttled=True, answered=True))
        throttle._hold_until = 0.0  # skip the wait: only the sizes are looked at here
    assert [round(h, 3) <= c for h, c in zip(holds, (0.5, 1, 2, 4), strict=True)] == [True] * 4
    assert [h >= c / 2 for h, c in zip(holds, (0.5, 1, 2, 4), strict=True)] == [True] * 4
    throttle.release(throttle.acquire(), throttled=False, answered=True)
    assert throttle.release(throttle.acquire(), throttled=True, answered=True) <= 0.5


def test_a_stop_ends_a_wait() -> None:
    throttle = Throttle(1)
    throttle.release(throttle.acquire(), throttled=True, answered=True, retry_after=5)
    stop = threading.Event()
    failed: list[BaseException] = []

    def wait() -> None:
        try:
            throttle.acquire(stop)
        except Stopping as exc:
            failed.append(exc)

    thread = threading.Thread(target=wait)
    thread.start()
    stop.set()
    throttle.wake()
    thread.join(5)
    assert not thread.is_alive() and len(failed) == 1
