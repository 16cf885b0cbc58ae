"""One request rate for the whole worker: every lane's Azure calls pass through one `Throttle`.

Azure throttles a workspace, not an entity (docs/azureml-protocol.md §7.1), so a 429 (or 503)
seen by one lane is news for all of them:
- a *window* caps the requests in flight, adapted as TCP does (AIMD): each answer that is not
  throttling adds 1/window (one more request in flight per window's worth of answers), a
  throttling answer halves it, at most once per window (the other requests of the same burst
  were sent before the news and do not halve it again);
- a *hold*: after a throttling answer nobody sends for its `Retry-After` (or, without one, an
  exponential backoff in the throttling streak with jitter), at most `hold_max` seconds;
- then a *probe*: one request at a time until one is answered without throttling, so a storm
  costs one request per hold, not one per lane.

A `Retry-After` longer than `hold_max` is still honoured by the call that got it (its entity
is rescheduled, see `client`): the others only wait `hold_max` and then probe, so one entity's
long wait does not stop the rest when the workspace is not throttling them (measured: two runs,
one told to wait 30 s, the other delivered after the 5 s hold; tests/sync/test_sync_concurrency).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from tether.sync.azureml.errors import TransientError

HOLD_MAX_S = 5.0
_BASE_HOLD_S = 0.5
_WAIT_SLICE_S = 0.2  # how often a waiting lane looks at the stop event


class Stopping(TransientError):
    """The worker is stopping: the call is given up, its entity given back unchanged."""


@dataclass
class ThrottleStats:
    throttled: int = 0  # throttling answers (429 / 503)
    cuts: int = 0  # times the window was halved
    held_s: float = 0.0  # total hold time set


class Throttle:
    def __init__(
        self,
        limit: int,
        *,
        hold_max: float = HOLD_MAX_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = max(1, limit)
        self.hold_max = hold_max
        self.window = float(self.limit)
        self.in_flight = 0
        self.probing = False
        self.stats = ThrottleStats()
        self._clock = clock
        self._hold_until = 0.0
        self._last_cut = float("-inf")
        self._streak = 0
        self._cond = threading.Condition()

    def paused_for(self) -> float:
        """Seconds left of the current hold (0 when requests may go)."""
        return max(0.0, self._hold_until - self._clock())

    def acquire(self, stop: threading.Event | None = None) -> float:
        """Wait for a slot (the hold over, the window not full); returns the send time, to be
        given back to `release`. Raises `Stopping` when `stop` is set meanwhile."""
        with self._cond:
            while True:
                if stop is not None and stop.is_set():
                    raise Stopping("the sync worker is stopping")
                now = self._clock()
                held = self._hold_until - now
                if held > 0:
                    self._cond.wait(min(held, _WAIT_SLICE_S))
                    continue
                cap = 1 if self.probing else max(1, int(self.window))
                if self.in_flight < cap:
                    self.in_flight += 1
                    return now
                self._cond.wait(_WAIT_SLICE_S)

    def release(
        self, sent_at: float, *, throttled: bool, answered: bool, retry_after: float | None = None
    ) -> float:
        """The outcome of a request sent at `sent_at`: throttled (429/503), else answered (any
        other HTTP answer) or not (network failure). Returns the hold it set (0 if none)."""
        with self._cond:
            self.in_flight = max(0, self.in_flight - 1)
            hold = 0.0
            now = self._clock()
            if throttled:
                self._streak += 1
                self.stats.throttled += 1
                if sent_at >= self._last_cut:  # news, not the rest of an earlier burst
                    self.window = max(1.0, self.window / 2)
                    self._last_cut = now
                    self.stats.cuts += 1
                if retry_after is not None:
                    hold = retry_after
                else:
                    ceiling = _BASE_HOLD_S * 2 ** min(self._streak - 1, 16)
                    hold = random.uniform(ceiling / 2, ceiling)
                hold = min(hold, self.hold_max)
                if now + hold > self._hold_until:
                    self.stats.held_s += now + hold - max(now, self._hold_until)
                    self._hold_until = now + hold
                self.probing = True
            elif answered:
                self._streak = 0
                self.probing = False
                self.window = min(float(self.limit), self.window + 1 / self.window)
            else:
                self.probing = False  # the probe got no answer: let the next one try
            self._cond.notify_all()
            return hold

    def wake(self) -> None:
        """Let waiting lanes look at their stop event now."""
        with self._cond:
            self._cond.notify_all()
