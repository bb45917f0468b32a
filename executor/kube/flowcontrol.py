"""Flow control for the executor's writes: as fast as the API server says it can take, no constant limit.

Why not a fixed rate: a client-side 20 creations/s (kube-controller-manager's ``--kube-api-qps``
habit) is far below what a healthy API server absorbs, and it is the one knob a user would have to
find.  The server itself says when it is overloaded: API Priority and Fairness answers 429 with
``Retry-After`` when its queues are full, requests queue (latency rises) before that, and an
overloaded server or etcd answers 5xx or times out.  So the executor sends as fast as its creation
workers allow until the server pushes back, and then adapts (AIMD, as TCP and client-side
concurrency limiters do):

* **Hold.**  A 429 stops *every* write until its ``Retry-After`` has passed (1 s without one):
  the server asked, and the requests already queued behind it would only add to the overload.
* **Multiplicative decrease** of the number of writes in flight (the *window*: APF counts seats,
  not requests per second) on a 429, a 5xx, a timeout or connection error, or latency above
  ``latency_factor`` x its recent minimum + ``latency_slack`` (queueing in APF, a slow etcd):
  the window becomes ``decrease`` x the writes that were in flight, at most once per ``epoch``
  (the answers of one burst count as one signal).  When that leaves fewer than two - a server
  that answers fast but cannot take the rate - the same signals set a *pace* instead:
  ``decrease`` x the rate it was answering (time spent held not counted), halved again on each
  further signal.
* **Additive increase.**  Each ``epoch`` without a signal, while writes flow, the pace grows by
  ``increase_fraction`` of the rate at its last decrease (at least ``min_step``; back in about
  5 s, scale-free) and is lifted at twice that rate; then the window grows by one write per
  ``epoch`` while it is what holds writers back.
* **Bounds** that stay hard: the number of writer threads (creation workers and the cleanup pool),
  ``worker_pods_max`` and ResourceQuota pushback (the engine's), and an operator's explicit cap
  (``worker_pods_creation_qps`` / ``_burst``), a token bucket applied on top of everything here.

Quota refusals (403 ``exceeded quota``), ``AlreadyExists``, 404 and other 4xx are answers, not
overload: they count as served requests.  One instance is shared by every writer of an engine
(pod creates, deletes and label patches), because APF queues all of one client's requests together.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from airflow_k8s.executor.contract.errors import KubeApiError
from airflow_k8s.executor.kube.retry import TokenBucket

T = TypeVar("T")


@dataclass(frozen=True)
class FlowSettings:
    """The controller's constants (module docstring); only ``cap_qps``/``cap_burst`` come from airflow.cfg."""

    cap_qps: float | None = None  # worker_pods_creation_qps: an explicit hard cap, None: none
    cap_burst: int | None = None  # worker_pods_creation_burst (default: 2 x cap_qps, at least 1)
    max_window: int = 1024  # writes in flight before any signal: the writer threads are the real bound
    decrease: float = 0.5
    increase_fraction: float = 0.1
    min_step: float = 1.0
    min_rate: float = 1.0
    epoch: float = 1.0
    latency_factor: float = 4.0
    latency_slack: float = 0.2
    latency_samples: int = 20  # answers seen before latency may count as a signal
    baseline_window: float = 30.0
    default_hold: float = 1.0
    max_hold: float = 60.0


class Stopped(KubeApiError):
    """The engine is stopping: the request was not sent."""


def congestion(error: KubeApiError) -> bool:
    """Whether ``error`` says the server is overloaded (rather than refusing this one request)."""
    return error.status in (0, 408, 429) or error.status >= 500


class FlowControl:
    """The gate every write passes (:meth:`call`), and the AIMD controller behind it; thread-safe."""

    def __init__(self, settings: FlowSettings | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = s = settings or FlowSettings()
        self._clock = clock
        self._cond = threading.Condition()
        self._cap = None if s.cap_qps is None else TokenBucket(s.cap_qps, _cap_burst(s), clock=clock)
        self.window = s.max_window  # writes allowed in flight
        self.in_flight = 0
        self.rate: float | None = None  # the pace in writes/s below one in flight; None: unpaced
        self._tokens = 0.0
        self._stamp = clock()
        self._hold_until = 0.0
        self._ceiling = 0.0  # the pace's rate at its last decrease
        self._last_signal = -1e18
        self._last_step = clock()
        self._saturated = False  # the window held a writer back in this epoch
        self._served: deque[float] = deque()  # answer times within the last second
        self._first_answer = -1.0
        self._ewma: float | None = None
        self._samples = 0
        self._mins = [float("inf"), float("inf")]  # latency minimum of this and the previous half window
        self._mins_since = clock()
        # Figures for metrics, tests and benchmarks.
        self.signals = 0
        self.throttled = 0
        self.answered = 0

    # -- the gate ---------------------------------------------------------------------------------
    def call(self, fn: Callable[[], T], stop: threading.Event | None = None) -> T:
        """Wait for the gate, run ``fn`` (one API request), and learn from how it went."""
        if not self.acquire(stop):
            raise Stopped("the executor is stopping", status=0)
        started = self._clock()
        try:
            result = fn()
        except KubeApiError as error:
            self.observe(self._clock() - started, error)
            raise
        except BaseException:
            self.observe(None, None)
            raise
        self.observe(self._clock() - started, None)
        return result

    def acquire(self, stop: threading.Event | None = None) -> bool:
        """Block until a write may go (True; :meth:`observe` its answer), or ``stop`` is set (False)."""
        with self._cond:
            while True:
                if stop is not None and stop.is_set():
                    return False
                wait = self._try_locked()
                if wait == 0.0:
                    return True
                self._cond.wait(min(wait, 0.05))  # woken by a finished write; a stop is seen within 50 ms

    def try_acquire(self) -> float:
        """Take a slot and return 0.0, or return the seconds to wait (``inf``: until a write finishes)."""
        with self._cond:
            return self._try_locked()

    def _try_locked(self) -> float:
        now = self._clock()
        if now < self._hold_until:
            return self._hold_until - now
        if self.in_flight >= self.window:
            self._saturated = True
            return math.inf
        if self.rate is not None:
            self._refill(now)
            if self._tokens < 1.0:
                return (1.0 - self._tokens) / self.rate
        if self._cap is not None:
            wait = self._cap.try_acquire()
            if wait > 0.0:
                return wait
        if self.rate is not None:
            self._tokens -= 1.0
        self.in_flight += 1
        if self.in_flight >= self.window:
            self._saturated = True
        return 0.0

    def _refill(self, now: float) -> None:
        assert self.rate is not None
        burst = max(1.0, self.rate / 20.0)  # 50 ms worth: paced, not bunched
        self._tokens = min(burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    # -- the controller ---------------------------------------------------------------------------
    def observe(self, latency: float | None, error: KubeApiError | None) -> None:
        """The answer to an acquired write after ``latency`` s (``error`` None: success; ``latency`` None: none)."""
        s = self.settings
        with self._cond:
            in_flight = self.in_flight
            self.in_flight = max(0, in_flight - 1)
            self._cond.notify()
            if latency is None:
                return
            now = self._clock()
            self.answered += 1
            if error is not None and congestion(error):
                if error.status == 429:
                    self.throttled += 1
                    hold = error.retry_after if error.retry_after is not None else s.default_hold
                    self._hold_until = max(self._hold_until, now + min(max(hold, 0.0), s.max_hold))
                self._signal(now, in_flight)
                return
            if not self._served and self._first_answer < 0:
                self._first_answer = now
            self._served.append(now)
            while self._served and self._served[0] < now - 1.0:
                self._served.popleft()
            if self._latency(now, latency):
                self._signal(now, in_flight)
            elif now - self._last_step >= s.epoch and now - self._last_signal >= s.epoch:
                self._increase(now)

    def _latency(self, now: float, latency: float) -> bool:
        """Track latency; True when it says the server is queueing."""
        s = self.settings
        if now - self._mins_since >= s.baseline_window / 2:
            self._mins = [self._mins[1], float("inf")]
            self._mins_since = now
        self._mins[1] = min(self._mins[1], latency)
        self._ewma = latency if self._ewma is None else 0.8 * self._ewma + 0.2 * latency
        self._samples += 1
        baseline = min(self._mins)
        return self._samples >= s.latency_samples and self._ewma > baseline * s.latency_factor + s.latency_slack

    def _signal(self, now: float, in_flight: int) -> None:
        s = self.settings
        if now - self._last_signal < s.epoch:
            return  # the rest of the same burst
        self._last_signal = self._last_step = now
        self.signals += 1
        window = max(1, int(min(self.window, max(in_flight, 1)) * s.decrease))
        if self.rate is None and window >= 2:
            self.window = window
        else:  # a write or two in flight are already too much: pace below that
            served = self._measured(now)
            current = served if self.rate is None else min(self.rate, max(served, s.min_rate))
            self._tokens = 1.0 if self.rate is None else min(self._tokens, 1.0)
            self.window = window
            self._ceiling = max(current, s.min_rate)
            self.rate = max(s.min_rate, current * s.decrease)
            self._stamp = now
        if self._ewma is not None:  # judge the next latencies afresh, not against the burst's
            self._ewma = min(self._ewma, min(self._mins) * s.latency_factor)

    def _increase(self, now: float) -> None:
        s = self.settings
        saturated, self._saturated = self._saturated, False
        self._last_step = now
        if self.rate is not None:
            self._refill(now)
            self.rate += max(s.min_step, s.increase_fraction * self._ceiling)
            if self.rate >= 2.0 * self._ceiling:
                self.rate = None  # well past where the server pushed back: unpaced again
        elif saturated and self.window < s.max_window:
            self.window += 1

    def _measured(self, now: float) -> float:
        """Answers per second over the last second, not counting time spent held (never below ``min_rate``)."""
        while self._served and self._served[0] < now - 1.0:
            self._served.popleft()
        since = now - 1.0 if self._hold_until > now else max(now - 1.0, self._hold_until)
        since = max(since, self._first_answer)  # at start-up, only the time answers have been coming
        answers = sum(1 for t in self._served if t >= since)
        if not answers:
            return self.settings.min_rate
        return max(self.settings.min_rate, answers / max(0.05, now - since))

    def state(self) -> dict[str, float | int | None]:
        """The controller's figures (for metrics, logs and benchmarks)."""
        with self._cond:
            now = self._clock()
            return {
                "window": self.window,
                "rate": self.rate,
                "held_for": max(0.0, self._hold_until - now),
                "signals": self.signals,
                "throttled": self.throttled,
                "answered": self.answered,
                "latency_ewma": self._ewma,
            }


def _cap_burst(settings: FlowSettings) -> int:
    if settings.cap_burst is not None:
        return settings.cap_burst
    assert settings.cap_qps is not None
    return max(1, round(2 * settings.cap_qps))
