"""How a failed Azure ML call is to be treated by the sync worker."""

from __future__ import annotations


class SyncError(Exception):
    """Base of every failure the worker handles; `reason` is shown in `tether sync status`."""

    def __init__(
        self, reason: str, *, status: int | None = None, error_code: str | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.error_code = error_code  # MLflow's `error_code` from the body, when there is one


class TransientError(SyncError):
    """Worth retrying later (throttling, outage, network); `retry_after` in seconds if known."""

    def __init__(
        self, reason: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(reason, status=status)
        self.retry_after = retry_after


class AmbiguousError(TransientError):
    """The request may or may not have been applied (e.g. the response was lost).

    A non-idempotent call (run or model-version creation) must look for its own effect
    before it is sent again.
    """


class PermanentError(SyncError):
    """Azure rejected the request as such; retrying unchanged cannot succeed (dead letter)."""
