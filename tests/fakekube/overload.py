"""An overloaded API server: a concurrency and/or rate budget, requests that queue, then 429 with Retry-After.

What kube-apiserver's API Priority and Fairness does to one client's requests, reduced to what a client can
observe: at most ``overload_concurrency`` requests execute at once (APF's seats), each for at least
``overload_service_time`` seconds (the work an apiserver and etcd do for a write); up to ``overload_queue`` more
wait for a seat (the latency a client sees rises with the queue); anything beyond that is refused at once with 429
``TooManyRequests`` and ``Retry-After: overload_retry_after`` (APF's "queue full" answer, whose Retry-After is 1).
``overload_rate`` adds a token bucket (``overload_burst`` deep): a request finding it empty gets the same 429
(a rate budget, as ``--max-requests-inflight`` over a service time amounts to).  Which requests the budget
guards: ``overload_verbs`` = ``mutating`` (POST, PUT, PATCH, DELETE, as ``--max-mutating-requests-inflight``)
or ``all`` (watches never: APF exempts long-running requests).  Off while both budgets are 0.

The figures a test asserts on (:meth:`Overload.figures`): requests admitted and refused, the peak and the mean
number executing at admission, and the mean queueing delay; reset with the stats.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .errors import ApiError

if TYPE_CHECKING:
    from .config import ClusterConfig

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class Overload:
    def __init__(self, config: Callable[[], ClusterConfig], stopping: threading.Event | None = None) -> None:
        self._config = config
        self._stopping = stopping or threading.Event()
        self._cond = threading.Condition()
        self._executing = 0
        self._waiting = 0
        self._tokens = -1.0  # the bucket starts full
        self._stamp = time.monotonic()
        self._reset_figures()

    def _reset_figures(self) -> None:
        self.admitted = self.rejected = self.peak_executing = 0
        self._executing_sum = 0
        self._waited = 0.0

    def reset(self) -> None:
        with self._cond:
            self._reset_figures()

    def guards(self, method: str) -> bool:
        config = self._config()
        if not (config.overload_concurrency or config.overload_rate):
            return False
        return config.overload_verbs == "all" or method in MUTATING

    def admit(self, method: str) -> float | None:
        """Wait for a seat (None: not guarded; else the admission time); ApiError 429 when over budget."""
        if not self.guards(method):
            return None
        config = self._config()
        started = time.monotonic()
        with self._cond:
            if config.overload_rate:
                burst = float(config.overload_burst or 1)
                refill = (started - self._stamp) * config.overload_rate
                self._tokens = burst if self._tokens < 0 else min(burst, self._tokens + refill)
                self._stamp = started
                if self._tokens < 1.0:
                    self.rejected += 1
                    raise _too_many(config.overload_retry_after)
                self._tokens -= 1.0
            limit = config.overload_concurrency
            if limit:
                if self._executing >= limit and self._waiting >= config.overload_queue:
                    self.rejected += 1
                    raise _too_many(config.overload_retry_after)
                self._waiting += 1
                try:
                    while self._executing >= limit and not self._stopping.is_set():
                        self._cond.wait(0.5)
                finally:
                    self._waiting -= 1
            self._executing += 1
            self.admitted += 1
            self._executing_sum += self._executing
            self.peak_executing = max(self.peak_executing, self._executing)
            self._waited += time.monotonic() - started
        return time.monotonic()

    def work(self, admitted_at: float | None) -> None:
        """Hold the seat for ``overload_service_time`` from admission: the answer comes after it."""
        if admitted_at is None:
            return
        rest = self._config().overload_service_time - (time.monotonic() - admitted_at)
        if rest > 0:
            self._stopping.wait(rest)

    def release(self, admitted_at: float | None) -> None:
        """The request is answered: its seat is free."""
        if admitted_at is None:
            return
        with self._cond:
            self._executing -= 1
            self._cond.notify()

    def figures(self) -> dict[str, Any]:
        with self._cond:
            admitted = self.admitted
            return {
                "admitted": admitted,
                "rejected": self.rejected,
                "peak_executing": self.peak_executing,
                "mean_executing": round(self._executing_sum / admitted, 3) if admitted else 0.0,
                "mean_wait_s": round(self._waited / admitted, 4) if admitted else 0.0,
            }


def _too_many(retry_after: int) -> ApiError:
    message = "Too many requests, please try again later."
    return ApiError(
        429,
        message,
        "TooManyRequests",
        details={"retryAfterSeconds": retry_after},
        headers=(("Retry-After", str(retry_after)),),
    )
