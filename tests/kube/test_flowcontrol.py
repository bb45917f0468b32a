"""The write gate's controller (kube/flowcontrol.py), on a hand-driven clock: no sleeps, no timing."""

from __future__ import annotations

import itertools
import math
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
    """Offer ``count`` writes ``every`` seconds apart, each answered at once; how many the gate let through."""
    passed = 0
    for _ in range(count):
        if flow.try_acquire() == 0.0:
            passed += 1
            flow.observe(latency, None)
        clock.advance(every)
    return passed


def in_flight(flow: FlowControl, count: int) -> int:
    """Start up to ``count`` writes without answering them; how many the gate let through."""
    return sum(flow.try_acquire() == 0.0 for _ in range(count))


def test_nothing_limits_writes_while_the_server_keeps_up(clock):
    flow = FlowControl(clock=clock)
    assert serve(flow, clock, 5000, every=0.0001) == 5000  # 10,000/s offered, all let through
    assert in_flight(flow, 300) == 300  # and as many at once as there are writers
    assert flow.rate is None and flow.signals == 0


def test_a_429_holds_every_write_until_its_retry_after_has_passed(clock):
    flow = FlowControl(clock=clock)
    serve(flow, clock, 100, every=0.001)
    in_flight(flow, 1)
    flow.observe(0.002, throttled(retry_after=3))
    assert flow.try_acquire() == pytest.approx(3.0)
    clock.advance(2.9)
    assert flow.try_acquire() > 0.0
    clock.advance(0.2)
    assert flow.try_acquire() == 0.0


def test_a_429_halves_the_writes_in_flight_and_the_answers_of_one_burst_count_once(clock):
    flow = FlowControl(clock=clock)
    assert in_flight(flow, 12) == 12
    for _ in range(8):  # the answers of the writes in flight at the time
        flow.observe(0.002, throttled())
    assert (flow.signals, flow.throttled, flow.window) == (1, 8, 6)
    for _ in range(4):
        flow.observe(0.002, None)
    clock.advance(1.0)  # the hold
    assert in_flight(flow, 12) == 6 and flow.try_acquire() == math.inf


def test_the_window_grows_by_one_each_second_it_holds_writers_back(clock):
    flow = FlowControl(clock=clock)
    in_flight(flow, 8)
    flow.observe(0.002, throttled())
    for _ in range(7):
        flow.observe(0.002, None)
    assert flow.window == 4
    clock.advance(1.0)
    windows = []
    for _ in range(5):
        started = in_flight(flow, 20)  # more writers than the window
        for _ in range(started):
            flow.observe(0.002, None)
        clock.advance(1.0)
        serve(flow, clock, 1, every=0.0)
        windows.append(flow.window)
    assert windows == [5, 6, 7, 8, 9]


def test_the_window_does_not_grow_while_it_holds_nobody_back(clock):
    flow = FlowControl(clock=clock)
    in_flight(flow, 8)
    flow.observe(0.002, throttled())
    for _ in range(7):
        flow.observe(0.002, None)
    clock.advance(1.0)
    for _ in range(5):
        serve(flow, clock, 100, every=0.01)  # one write at a time: the window of 4 is never the limit
    assert flow.window == 4


def test_below_one_write_in_flight_a_429_paces_writes_at_half_the_rate_the_server_answered(clock):
    flow = FlowControl(clock=clock)
    serve(flow, clock, 400, every=0.0025)  # 400/s, one at a time
    in_flight(flow, 1)
    flow.observe(0.002, throttled())
    assert flow.window == 1 and flow.rate == pytest.approx(200, rel=0.05)
    clock.advance(1.0)  # the hold
    # 1,000/s offered for a second: the pace lets through 200/s, plus its first additive step (40/s)
    assert 190 <= serve(flow, clock, 1000, every=0.001) <= 260


def test_the_pace_grows_back_additively_and_is_lifted_at_twice_the_rate_pushed_back_at(clock):
    flow = FlowControl(clock=clock)
    serve(flow, clock, 400, every=0.0025)
    in_flight(flow, 1)
    flow.observe(0.002, throttled())
    clock.advance(1.0)
    rates = []
    for _ in range(30):
        serve(flow, clock, 1000, every=0.001)
        rates.append(flow.rate)
    paced = [rate for rate in rates if rate is not None]
    steps = {round(later - earlier) for earlier, later in itertools.pairwise(paced)}
    assert steps == {40}  # 10 % of the 400/s the server was answering, each second
    assert rates[-1] is None  # 800/s reached without a signal: unpaced again
    assert len(paced) == pytest.approx(15, abs=2)


def test_paced_writes_keep_being_halved_while_the_server_keeps_pushing_back(clock):
    flow = FlowControl(clock=clock)
    serve(flow, clock, 400, every=0.0025)
    seen = []
    for _ in range(25):
        clock.advance(1.0)
        if flow.try_acquire() == 0.0:
            flow.observe(0.002, throttled())
        seen.append(flow.rate)
    assert seen == sorted(seen, reverse=True) and seen[-1] == flow.settings.min_rate


@pytest.mark.parametrize("status", [500, 503, 504, 0, 408])
def test_server_errors_and_timeouts_are_overload_without_a_hold(clock, status):
    flow = FlowControl(clock=clock)
    in_flight(flow, 10)
    flow.observe(0.002, api_error("POST pods: failed", status=status))
    assert flow.window == 5 and flow.signals == 1
    for _ in range(9):
        flow.observe(0.002, None)
    assert flow.try_acquire() == 0.0  # only a 429 says how long to stay away


@pytest.mark.parametrize(
    ("status", "reason", "message"),
    [(403, "Forbidden", "exceeded quota: compute"), (409, "AlreadyExists", "exists"), (404, "NotFound", "gone"),
     (422, "Invalid", "bad"), (409, "Conflict", "quota race")],
)  # fmt: skip
def test_refusals_of_one_request_are_answers_not_overload(clock, status, reason, message):
    flow = FlowControl(clock=clock)
    for _ in range(200):
        flow.try_acquire()
        flow.observe(0.002, api_error(message, status=status, reason=reason))
        clock.advance(0.001)
    assert flow.rate is None and flow.signals == 0 and flow.window == flow.settings.max_window


def test_rising_latency_is_overload_and_steady_latency_is_not(clock):
    flow = FlowControl(clock=clock)
    serve(flow, clock, 2000, every=0.001, latency=0.050)  # a slow but steady server
    assert flow.signals == 0
    serve(flow, clock, 50, every=0.001, latency=2.0)  # writes queue in the server
    assert flow.signals == 1 and flow.rate is not None


def test_an_operators_cap_bounds_writes_even_while_nothing_else_does(clock):
    flow = FlowControl(FlowSettings(cap_qps=50.0, cap_burst=5), clock=clock)
    assert serve(flow, clock, 2000, every=0.001) == pytest.approx(5 + 50 * 2, abs=2)
    assert flow.rate is None and flow.signals == 0


def test_a_cap_without_a_burst_allows_two_seconds_worth(clock):
    flow = FlowControl(FlowSettings(cap_qps=10.0), clock=clock)
    assert serve(flow, clock, 20, every=0.0) == 20
    assert flow.try_acquire() > 0.0


def test_a_stop_ends_the_wait_for_the_gate_and_sends_nothing(clock):
    flow = FlowControl(clock=clock)
    flow.try_acquire()
    flow.observe(0.002, throttled(retry_after=60))
    stop = threading.Event()
    stop.set()
    sent = []
    with pytest.raises(Stopped):
        flow.call(lambda: sent.append(1), stop)
    assert sent == []


def test_a_writer_waiting_for_the_window_goes_when_another_write_is_answered():
    flow = FlowControl()
    in_flight(flow, 4)
    flow.observe(0.002, throttled(retry_after=0))  # window 4 -> 2, three still in flight
    went = threading.Event()
    writer = threading.Thread(target=lambda: flow.acquire() and went.set())
    writer.start()
    assert not went.wait(0.2)  # three in flight, window 2
    flow.observe(0.002, None)
    flow.observe(0.002, None)
    assert went.wait(60)
    writer.join(60)


def test_call_learns_from_the_answer(clock):
    flow = FlowControl(clock=clock)
    assert flow.call(lambda: "pod") == "pod"

    def refuse() -> None:
        raise throttled(retry_after=2)

    with pytest.raises(KubeApiError):
        flow.call(refuse)
    assert flow.state()["throttled"] == 1 and flow.state()["answered"] == 2 and flow.in_flight == 0
    assert flow.try_acquire() == pytest.approx(2.0)
