"""Flow control against an overloaded server: the fake's overload mode, the engine at its defaults.

Concurrency budget: the fake holds a write for ``SERVICE`` seconds in one of ``SEATS`` seats, queues ``QUEUE``
more and answers the rest 429 with Retry-After, as API Priority and Fairness does.  Rate budget: a token bucket
of ``RATE`` writes per second answers 429 when empty.  The engine, without any configured rate limit, must
settle near the budget: every task succeeds, few writes are refused, the seats are used, the pace it settles on
is of the budget's order.  Bounds are generous and nothing here depends on how fast anything runs.
"""

from __future__ import annotations

from airflow_k8s.executor.tasks.results import SUCCESS, MemorySink
from tests.engine.conftest import WAIT, make_config, make_task

SEATS, QUEUE, SERVICE = 3, 2, 0.02
RATE = 60.0
TASKS = 120
MAX_REFUSED_SHARE = 0.25  # of the writes the budget guards
MIN_SEATS_USED = 0.4  # mean writes executing at admission / SEATS


def run_tasks(make_engine, sink: MemorySink):  # type: ignore[no-untyped-def]
    config = make_config(worker_pods_creation_qps=None, worker_pods_creation_burst=None, worker_pods_max=TASKS)
    assert config.creation_workers() + 4 > SEATS + QUEUE  # the engine could flood the budget if it did not adapt
    engine = make_engine(config, sink=sink)
    for index in range(TASKS):
        engine.submit(make_task(f"busy{index}"))
    assert engine.wait_idle(WAIT * 4)
    assert len(sink.recorded) == TASKS and all(result.state == SUCCESS for result in sink.recorded)
    return engine


def refused_share(figures: dict) -> float:
    return float(figures["rejected"] / (figures["admitted"] + figures["rejected"]))


def test_the_engine_converges_near_an_overloaded_servers_budget_without_failing_tasks(cluster, make_engine):
    cluster.configure(overload_concurrency=SEATS, overload_queue=QUEUE, overload_service_time=SERVICE)
    engine = run_tasks(make_engine, MemorySink())
    figures, flow = cluster.overload.figures(), engine.flow.state()
    print(f"overload {figures}; flow control {flow}")
    assert figures["rejected"] > 0 and flow["throttled"] > 0  # the server did push back, and the engine saw it
    assert refused_share(figures) <= MAX_REFUSED_SHARE, figures
    assert figures["mean_executing"] >= MIN_SEATS_USED * SEATS, figures
    assert figures["peak_executing"] == SEATS


def test_the_engine_paces_itself_near_a_servers_rate_budget_without_failing_tasks(cluster, make_engine):
    cluster.configure(overload_rate=RATE, overload_burst=5)
    engine = run_tasks(make_engine, MemorySink())
    figures, flow = cluster.overload.figures(), engine.flow.state()
    print(f"overload {figures}; flow control {flow}")
    assert figures["rejected"] > 0 and flow["signals"] > 0
    assert refused_share(figures) <= MAX_REFUSED_SHARE, figures
    assert flow["rate"] is None or RATE / 8 <= flow["rate"] <= RATE * 2.2, flow  # paced, if still, near it
