"""Retries with capped exponential backoff, and a token bucket for API request rates.

The official Python client retries nothing on 429/5xx by default.  The executor's policy:

* 429 TooManyRequests: wait what ``Retry-After`` says (capped), then retry.
* 5xx, 408, connection errors and missed deadlines (status 0) and answers that could not be used
  (``BadResponse``: garbage, the wrong shape, too large; the request may have been applied):
  exponential backoff with jitter, capped.  ``Cancelled`` (the client is shutting down) never is.
* 409 with any reason but ``AlreadyExists`` (``Conflict``: an optimistic-concurrency race, e.g.
  creates racing on a ResourceQuota) did not apply the request: retried like a 5xx.  Only
  ``AlreadyExists`` means the object is there; the caller decides what that means.
* Everything else in 4xx (403 PodSecurity / quota, 422 Invalid, 404...) is not retried here:
  the caller gets the error at once with its reason (quota refusals are retried by the engine,
  which owns the backoff and the deadline).  One exception the caller opts into: an RBAC denial
  (:func:`is_rbac_denial`) shortly after a disruption of the API server
  (:mod:`~airflow_k8s.executor.kube.disruption`) is the restarted server's authorizer not yet
  synced, and the launcher retries it while the disruption is recent.
* A deadline bounds the whole attempt (``pod_creation_timeout`` for pod creation).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from airflow_k8s.executor.contract.errors import BadResponse, Cancelled, Forbidden, KubeApiError, QuotaExceeded

T = TypeVar("T")


def is_retryable(error: KubeApiError) -> bool:
    if isinstance(error, Cancelled):
        return False
    if isinstance(error, BadResponse):
        return True
    if error.status == 409:
        return error.reason != "AlreadyExists"
    return error.status == 0 or error.status in (408, 429) or error.status >= 500


def is_rbac_denial(error: KubeApiError) -> bool:
    """A 403 from the RBAC authorizer (``User "..." cannot create resource "pods" ...``), not from admission."""
    if not isinstance(error, Forbidden) or isinstance(error, QuotaExceeded):
        return False
    text = str(error)
    return " cannot " in text and 'resource "' in text


@dataclass(frozen=True)
class RetryPolicy:
    base_delay: float = 0.2
    max_delay: float = 10.0
    max_retry_after: float = 60.0

    def delay(self, attempt: int, error: KubeApiError, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based) after ``error``."""
        if error.retry_after is not None:
            return min(error.retry_after, self.max_retry_after)
        backoff = min(self.max_delay, self.base_delay * 2.0**attempt)
        draw: float = (rng or random).random()
        return backoff * (0.5 + 0.5 * draw)


class RetryTimeout(KubeApiError):
    """The deadline passed while retrying; ``last`` is the final error seen."""

    def __init__(self, message: str, last: KubeApiError) -> None:
        super().__init__(message, status=last.status, reason=last.reason, body=last.body)
        self.last = last


def call_with_retry(
    fn: Callable[[], T],
    *,
    policy: RetryPolicy = RetryPolicy(),
    deadline: float | None = None,
    sleep: Callable[[float], object] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    on_retry: Callable[[KubeApiError, float], None] | None = None,
    what: str = "request",
    retryable: Callable[[KubeApiError], bool] | None = None,
) -> T:
    """Call ``fn`` until it succeeds, a permanent error occurs, or ``deadline`` (monotonic) passes.

    ``retryable`` marks more errors as worth retrying than :func:`is_retryable` does.
    """
    attempt = 0
    while True:
        try:
            return fn()
        except KubeApiError as error:
            if not (is_retryable(error) or (retryable is not None and retryable(error))):
                raise
            wait = policy.delay(attempt, error)
            if deadline is not None and clock() + wait > deadline:
                raise RetryTimeout(f"{what}: gave up after {attempt + 1} attempt(s): {error}", error) from error
            if on_retry is not None:
                on_retry(error, wait)
            if sleep(wait) is True:  # an Event.wait that returned True means "stop"
                raise
            attempt += 1


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up; thread-safe.

    :meth:`acquire` blocks until a token is free (or ``stop`` is set), so N creation threads
    together never exceed the configured QPS however many tasks are queued.
    """

    def __init__(self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = float(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._stamp = clock()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def try_acquire(self) -> float:
        """Take a token and return 0.0, or return the seconds until one will be free."""
        with self._lock:
            self._refill()
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return 0.0
            return (1.0 - self._tokens) / self.rate

    def acquire(self, stop: threading.Event | None = None) -> bool:
        """Block until a token is taken (True) or ``stop`` is set (False)."""
        while True:
            wait = self.try_acquire()
            if wait == 0.0:
                return True
            if stop is not None:
                if stop.wait(wait):
                    return False
            else:
                time.sleep(wait)
