"""HTTP to the workspace: bearer auth, Azure's throttling and failures turned into decisions.

Idempotent calls are retried here with exponential backoff and full jitter, honouring
`Retry-After`; a 401 refreshes the token once. Non-idempotent calls are never resent blindly:
when their outcome is unknown they raise AmbiguousError for the caller to resolve.

Waits are kept short in here (`RetryPolicy.max_delay`): a `Retry-After` longer than that, or
retries running out, raise TransientError so the worker reschedules the entity instead of
holding its lease while sleeping. A 401 that survives a fresh token, and a 403, are transient
too: they are fixed by the operator (role assignment, identity), not by changing the request.

Every request of every lane goes through one `Throttle` (`throttle`): a 429 or 503 seen by one
lane holds and slows them all.

A thread can ask to be told of each failed attempt that is about to be retried (`observing`):
the worker shows an entity's failing reason while its call still retries, not only once the
call gives up (with `Retry-After` that can take half a minute).
"""

from __future__ import annotations

import logging
import os
import random
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from tether.observability import events
from tether.sync.azureml.credentials import TokenProvider
from tether.sync.azureml.errors import AmbiguousError, PermanentError, TransientError
from tether.sync.azureml.throttle import Throttle

log = logging.getLogger("tether.sync")
_RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
# The workspace is throttling (or shedding load): every lane slows down (`Throttle`).
_THROTTLING_STATUS = frozenset({429, 503})
# A gateway timeout or server error may come after the write was applied.
_MAYBE_APPLIED_STATUS = frozenset({500, 502, 504})


@dataclass
class RetryPolicy:
    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 120.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before the next try; `retry_after` is honoured, never shortened."""
        if retry_after is not None:
            return retry_after
        return random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))


@dataclass
class CallStats:
    """Counters for `tether sync status` and Prometheus; the last outcomes for `/ready`."""

    requests: int = 0
    retries: int = 0
    throttled: int = 0
    token_refreshes: int = 0
    last_answer_at: float | None = None  # epoch s of the last HTTP answer, whatever its status
    last_unreachable_at: float | None = None  # ... of the last call that got no answer
    last_unreachable: str | None = None


class AzureMLClient:
    """Thread-safe: the worker's lanes share one client (connections, token, throttle)."""

    def __init__(
        self,
        tokens: TokenProvider,
        *,
        retry: RetryPolicy | None = None,
        timeout: float = 60.0,
        http: httpx.Client | None = None,
        throttle: Throttle | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.tokens = tokens
        self.retry = retry or RetryPolicy()
        self.throttle = throttle or Throttle(1)
        self.stop = stop
        self.http = http or httpx.Client(
            timeout=timeout,
            trust_env=False,
            verify=tls_trust(),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
        )
        self.stats = CallStats()
        self._lock = threading.Lock()
        self._local = threading.local()

    def thread_requests(self) -> int:
        """Requests sent so far by the calling thread (a lane counts what its entity cost)."""
        return int(getattr(self._local, "requests", 0))

    @contextmanager
    def observing(self, on_retry: Callable[[str], None]) -> Iterator[None]:
        """While the block runs, the calling thread's calls tell `on_retry` the reason of each
        failed attempt they are about to retry (before the wait)."""
        self._local.on_retry = on_retry
        try:
            yield
        finally:
            self._local.on_retry = None

    def _count(self, field_name: str) -> None:
        with self._lock:
            setattr(self.stats, field_name, getattr(self.stats, field_name) + 1)

    def call(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        idempotent: bool,
        raw: bool = False,
    ) -> Any:
        """One logical call; returns the decoded JSON body (None when empty), or with `raw`
        the successful response itself (`exchange`)."""
        refreshed = False
        attempt = 0
        while True:
            sent_at = self.throttle.acquire(self.stop)
            try:
                generation, response = self._send(method, url, json=json, params=params)
            except TransientError as exc:  # no answer: network, token endpoint, lost response
                self.throttle.release(sent_at, throttled=False, answered=False)
                self.stats.last_unreachable_at = time.time()
                self.stats.last_unreachable = exc.reason
                if not idempotent and isinstance(exc, AmbiguousError):
                    raise
                attempt = self._backoff(attempt, exc)
                continue
            throttled = response.status_code in _THROTTLING_STATUS
            retry_after = _retry_after(response.headers.get("Retry-After")) if throttled else None
            self.throttle.release(
                sent_at, throttled=throttled, answered=True, retry_after=retry_after
            )
            self.stats.last_answer_at = time.time()
            if response.status_code == 401 and not refreshed:
                refreshed = True
                if self.tokens.refresh(generation):  # another lane may have done it already
                    self._count("token_refreshes")
                    events.count("azureml_token_refreshes")
                continue
            if response.status_code in (401, 403):
                raise TransientError(_describe(response), status=response.status_code)
            if response.status_code in _RETRYABLE_STATUS:
                if response.status_code == 429:
                    self._count("throttled")
                    events.count("azureml_throttled")
                if not idempotent and response.status_code in _MAYBE_APPLIED_STATUS:
                    raise AmbiguousError(_describe(response), status=response.status_code)
                # Throttled or refused (429, 503, 408): not applied, safe to send again.
                attempt = self._backoff(attempt, _transient(response))
                continue
            if response.status_code >= 400:
                raise PermanentError(
                    _describe(response),
                    status=response.status_code,
                    error_code=_error_code(response),
                )
            if raw:
                return response
            return response.json() if response.content else None

    def exchange(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        idempotent: bool,
    ) -> httpx.Response:
        """`call`, answering the response: ARM's long-running operations are in its headers
        (`Azure-AsyncOperation`, `Location`, `Retry-After`)."""
        response: httpx.Response = self.call(
            method, url, json=json, params=params, idempotent=idempotent, raw=True
        )
        return response

    def _send(
        self, method: str, url: str, *, json: Any, params: dict[str, Any] | None
    ) -> tuple[int, httpx.Response]:
        """(generation of the token sent, the answer)."""
        self._count("requests")
        self._local.requests = self.thread_requests() + 1
        events.count("azureml_requests")
        generation, token = self.tokens.token_of_generation()
        headers = {"Authorization": f"Bearer {token}"}
        try:
            response = self.http.request(method, url, json=json, params=params, headers=headers)
            return generation, response
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            # Nothing reached the server: not ambiguous.
            raise TransientError(f"{method} {_path(url)}: {exc!r}") from exc
        except httpx.TransportError as exc:
            raise AmbiguousError(f"{method} {_path(url)}: {exc!r}") from exc

    def _backoff(self, attempt: int, exc: TransientError) -> int:
        delay = self.retry.delay(attempt, exc.retry_after)
        if attempt + 1 >= self.retry.attempts or delay > self.retry.max_delay:
            raise exc
        self._count("retries")
        events.count("azureml_retries")
        on_retry: Callable[[str], None] | None = getattr(self._local, "on_retry", None)
        if on_retry is not None:
            try:
                on_retry(exc.reason)
            except Exception:  # telling is best effort: the call goes on
                log.warning("sync: cannot record a retried attempt", exc_info=True)
        self.retry.sleep(delay)
        return attempt + 1


def tls_trust() -> ssl.SSLContext | bool:
    """System roots, or the CA bundle named by SSL_CERT_FILE / REQUESTS_CA_BUNDLE (private CAs,
    e.g. a private-link proxy). Proxy variables stay ignored (`trust_env=False`)."""
    bundle = os.environ.get("SSL_CERT_FILE") or os.environ.get("REQUESTS_CA_BUNDLE")
    return ssl.create_default_context(cafile=bundle) if bundle else True


def _transient(response: httpx.Response) -> TransientError:
    return TransientError(
        _describe(response),
        status=response.status_code,
        retry_after=_retry_after(response.headers.get("Retry-After")),
    )


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


parse_retry_after = _retry_after  # seconds from a Retry-After header (tether.deploy polls)


def _error_code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    code = body.get("error_code") if isinstance(body, dict) else None
    return code if isinstance(code, str) else None


def _describe(response: httpx.Response) -> str:
    """A short reason from Azure's error shapes (MLflow-style or Azure's `Error` envelope)."""
    request = response.request
    prefix = f"{request.method} {_path(str(request.url))} -> {response.status_code}"
    try:
        body = response.json()
    except ValueError:
        return prefix if not response.text else f"{prefix}: {response.text[:300]}"
    if isinstance(body, dict):
        error = body.get("Error") or body.get("error")
        if isinstance(error, dict):
            code = error.get("Code") or error.get("code") or ""
            message = error.get("Message") or error.get("message") or ""
            details = error.get("details") or error.get("Details")
            for detail in details if isinstance(details, list) else []:
                if isinstance(detail, dict):  # ARM's nested reason (quota: the needed vCPUs)
                    message += f" ({detail.get('code', '')}: {detail.get('message', '')})"
            return f"{prefix}: {code} {message}".strip()
        if "message" in body:
            return f"{prefix}: {body.get('error_code', '')} {body['message']}".strip()
    return f"{prefix}: {str(body)[:300]}"


def _path(url: str) -> str:
    """The URL without its query string: SAS signatures and tokens are never logged."""
    return url.split("?", 1)[0]
