"""The write gate's controller (kube/flowcontrol.py), on a hand-driven clock: no sleeps, no timing."""

from __future__ import annotations

import itertools
import threading

import pytest

from airflow_k8s.executor.contract.errors import KubeApiError, api_error
from airflow_k8s.executor.kube.flowcontrol import FlowControl, FlowSettings, Stopped


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


def throttled(retry_after: float | None = 1.0) -> KubeApiError:
    message = "POST pods: HTTP 429 TooManyRequests"
    return api_error(message, status=429, reason="TooManyRequests", retry_after=retry_after)


def serve(flow: FlowControl, clock: Clock, count: int, *, every: float, latency: float = 0.002) -> int:
    """Offer ``count`` requests ``every`` seconds apart; return how many the gate let through at once."""
    passed = 0
    for _ in range(count):
        if flow.try_acquire() == 0.0:
            passed += 1
            flow.observe(latency, None)
        clock.advance(every)
    return passed


def test_nothing_paces_writes_while_the_server_keeps_up(clock):
    flow = FlowControl(clock=clock)
    assert serve(flow, clock, 5000, every=0.0001) == 5000  # 10,000/s offered, all let through
    assert flow.rate is None and flow.signals == 0


def test_a_429_holds_every_write_until_its_retry_after_has_passed(clock):
    flow = FlowControl(clock=clock)
    serve(flow, clock, 100, every=0.001)
    flow.observe(0.002, throttled(retry_after=3))
    assert flow.try_acquire() == pytest.approx(3.0)
    clock.advance(2.9)
    assert flow.try_acquire() > 0.0
    clock.advance(0.2)
    assert flow.try_acquire() == 0.0


def test_a_429_paces_writes_at_half_the_rate_the_server_was_taking_and_its_burst_counts_once(clock):
    flow = FlowControl(clock=clock)
    serve(flow, clock, 400, every=0.0025)  # 400/s served for a second
    for _ in range(8):  # the answers of the requests in flight at the time
        flow.observe(0.002, throttled())
    assert flow.signals == 1 and flow.throttled == 8
    assert flow.rate == pytest.approx(200, rel=0.05)
    clock.advance(1.0)  # the hold
    # 1,000/s offered for a second: the pace lets through 200/s, plus the first additive step (40/s)
    assert 190 <= serve(flow, clock, 1000, every=0.001) <= 260


def test_the_pace_grows_back_additively_and_is_lifted_at_twice_the_rate_pushed_back_at(clock):
    flow = FlowControl(clock=clock)
    serve(flow, clock, 400, every=0.0025)
    flow.observe(0.002, throttled())
    clock.advance(1.0)
    rates = []
    for _ in range(30):
        serve(flow, clock, 1000, every=0.001)
        rates.append(flow.rate)
    paced = [rate for rate in rates if rate is not None]
    steps = {round(later - earlier) for earlier, later in itertools.pairwise(paced)}
    assert steps == {40}  # 10 % of the 400/s the server was taking, each second
    assert rates[-1] is None  # 800/s reached without a signal: unpaced again
    assert len(paced) == pytest.approx(15, abs=2)


def test_paced_writes_keep_being_halved_while_the_server_keeps_pushing_back(clock):
    flow = FlowControl(clock=clock)
    serve(flow, clock, 400, every=0.0025)
    seen = []
    for _ in range(5):
        flow.observe(0.002, throttled())
        seen.append(flow.rate)
        clock.advance(1.0)
        serve(flow, clock, 100, every=0.001)
    assert seen == sorted(seen, reverse=True) and seen[-1] < seen[0] / 8
    for _ in range(20):
        flow.observe(0.002, throttled())
        clock.advance(1.0)
    assert flow.rate == flow.settings.min_rate


@pytest.mark.parametrize("status", [500, 503, 504, 0, 408])
def test_server_errors_and_timeouts_are_overload(clock, status):
    flow = FlowControl(clock=clock)
    serve(flow, clock, 100, every=0.01)
    flow.observe(0.002, api_error("POST pods: failed", status=status))
    assert flow.rate is not None and flow.signals == 1
    assert flow.try_acquire() == 0.0  # paced, not held: only a 429 says how long to stay away


@pytest.mark.parametrize(
    ("status", "reason", "message"),
    [(403, "Forbidden", "exceeded quota: compute"), (409, "AlreadyExists", "exists"), (404, "NotFound", "gone"),
     (422, "Invalid", "bad"), (409, "Conflict", "quota race")],
)  # fmt: skip
def test_refusals_of_one_request_are_answers_not_overload(clock, status, reason, message):
    flow = FlowControl(clock=clock)
    for _ in range(200):
        flow.observe(0.002, api_error(message, status=status, reason=reason))
        clock.advance(0.001)
    assert flow.rate is None and flow.signals == 0


def test_rising_latency_paces_writes_and_steady_latency_does_not(clock):
    flow = FlowControl(clock=clock)
    serve(flow, clock, 2000, every=0.001, latency=0.050)  # a slow but steady server
    assert flow.signals == 0
    serve(flow, clock, 50, every=0.001, latency=2.0)  # requests queue in the server
    assert flow.signals == 1 and flow.rate is not None


def test_an_operators_cap_bounds_writes_even_while_unpaced(clock):
    flow = FlowControl(FlowSettings(cap_qps=50.0, cap_burst=5), clock=clock)
    assert serve(flow, clock, 2000, every=0.001) == pytest.approx(5 + 50 * 2, abs=2)
    assert flow.rate is None


def test_a_cap_without_a_burst_allows_two_seconds_worth(clock):
    flow = FlowControl(FlowSettings(cap_qps=10.0), clock=clock)
    assert serve(flow, clock, 20, every=0.0) == 20
    assert flow.try_acquire() > 0.0


def test_a_stop_ends_the_wait_for_the_gate_and_sends_nothing(clock):
    flow = FlowControl(clock=clock)
    flow.observe(0.002, throttled(retry_after=60))
    stop = threading.Event()
    stop.set()
    sent = []
    with pytest.raises(Stopped):
        flow.call(lambda: sent.append(1), stop)
    assert sent == []


def test_call_learns_from_the_answer(clock):
    flow = FlowControl(clock=clock)
    assert flow.call(lambda: "pod") == "pod"

    def refuse() -> None:
        raise throttled(retry_after=2)

    with pytest.raises(KubeApiError):
        flow.call(refuse)
    assert flow.state()["throttled"] == 1 and flow.state()["answered"] == 2
    assert flow.try_acquire() == pytest.approx(2.0)
