"""The watch breaks in every way it can; no completion is missed and none is counted twice."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from airflow_k8s.executor.tasks.results import SUCCESS, MemorySink
from tests.engine.conftest import WAIT, behave, make_config, make_task


def run_with_disruption(cluster, engine, sink, disrupt, *, tasks=30, every=0.15, rounds=8):
    submitted = [
        make_task(f"t{i}", annotations=behave("succeed", run_seconds=0.05 + (i % 5) * 0.05)) for i in range(tasks)
    ]
    for task in submitted:
        engine.submit(task)
    for _ in range(rounds):
        time.sleep(every)
        disrupt()
    assert engine.wait_idle(WAIT), engine.snapshot()
    recorded = Counter(result.key for result in sink.recorded)
    assert set(recorded) == {t.key for t in submitted}, "a task was lost"
    assert max(recorded.values()) == 1, "a completion was counted twice"
    assert all(r.state == SUCCESS for r in sink.recorded)
    assert cluster.stats.duplicate_creates() == {}


def test_dropped_watch_connections_lose_nothing(cluster, make_engine):
    sink = MemorySink()
    engine = make_engine(sink=sink)
    run_with_disruption(cluster, engine, sink, cluster.faults.drop_watches)
    assert engine.metrics.watch_restarts.labels(cause="error")._value.get() >= 1


def test_expired_watches_relist_and_lose_nothing(cluster, make_engine):
    sink = MemorySink()
    engine = make_engine(sink=sink)
    run_with_disruption(cluster, engine, sink, cluster.faults.expire_watches)
    assert engine.metrics.watch_restarts.labels(cause="expired")._value.get() >= 1


def test_compaction_while_disconnected_forces_a_relist_that_catches_up(cluster, make_engine):
    sink = MemorySink()
    engine = make_engine(sink=sink)

    def compact_and_drop() -> None:
        cluster.faults.compact()
        cluster.faults.drop_watches()

    run_with_disruption(cluster, engine, sink, compact_and_drop)
    assert engine.metrics.watch_restarts.labels(cause="expired")._value.get() >= 1


def test_a_watch_resumed_after_its_history_aged_out_is_told_410_in_the_stream_and_relists(cluster, make_engine):
    """The watch cache keeps a time window of events (strict: 75 s).  A watcher that was away longer gets
    HTTP 200 with an ERROR event carrying 410 Expired, not an HTTP 410, and must relist."""
    sink = MemorySink()
    engine = make_engine(sink=sink)
    cluster.cluster.wait_for(engine.ready, timeout=10)
    rule = cluster.faults.fail_next(method="GET", path=r"/pods$", query="watch", status=503, times=None)
    cluster.faults.drop_watches()
    tasks = [make_task(f"aged{i}") for i in range(3)]
    for task in tasks:  # created and finished while no watch is open
        engine.submit(task)
    cluster.cluster.wait_for(lambda: len(cluster.stats.creates()) == 3, timeout=10)
    cluster.cluster.wait_for(lambda: all(r.phase == "Succeeded" for r in cluster.stats.pods()), timeout=10)
    cluster.store.age_history(cluster.config.history_seconds + 1)
    cluster.faults.remove(rule)
    assert engine.wait_idle(20)
    assert {r.key for r in sink.recorded} == {t.key for t in tasks} and len(sink.recorded) == 3
    assert engine.metrics.watch_restarts.labels(cause="expired")._value.get() >= 1


def test_apiserver_shaped_bookmarks_advance_the_watch_and_are_never_taken_for_pods(cluster, make_engine, caplog):
    """Real bookmarks are near-empty Pod objects (no name, ``spec.containers: null``); only their
    resourceVersion counts."""
    cluster.configure(bookmark_interval=0.05)  # the shape stays the strict preset's "apiserver"
    assert cluster.config.bookmark_shape == "apiserver"
    engine = make_engine()
    cluster.cluster.wait_for(engine.ready, timeout=10)
    before = int(engine.watchers[0].resource_version)
    cluster.admission.set_quota("elsewhere", 5)  # changes the store's resourceVersion, no pod of ours
    cluster.cluster.wait_for(lambda: int(engine.watchers[0].resource_version) > before, timeout=5)
    assert not any(engine.snapshot().values())  # nothing adopted, queued or running
    assert not [r for r in caplog.records if r.levelname in ("WARNING", "ERROR")]
    assert cluster.stats.count(method="WATCH") >= 1


def test_a_watch_outage_with_server_errors_is_ridden_out(cluster, make_engine):
    sink = MemorySink()
    engine = make_engine(sink=sink)

    def outage() -> None:
        cluster.faults.fail_next(method="GET", path=r"/pods$", query="watch", status=503, times=3)
        cluster.faults.drop_watches()

    run_with_disruption(cluster, engine, sink, outage, rounds=4)


def test_completions_while_no_watch_is_open_are_found_by_the_relist(cluster, make_engine):
    """Pods finish *and are deleted by someone else* while the watch is down: the relist notices."""
    sink = MemorySink()
    engine = make_engine(sink=sink)
    task = make_task("quiet", annotations=behave("hang"))
    engine.submit(task)
    name = task.key
    cluster.cluster.wait_for(lambda: engine.snapshot()["running"] == 1)
    # Block watches (every attempt fails) and compact, then finish the pod.
    rule = cluster.faults.fail_next(method="GET", path=r"/pods$", query="watch", status=503, times=None)
    cluster.faults.drop_watches()
    from airflow_k8s.executor.tasks import identity

    cluster.cluster.complete("airflow", identity.pod_name(name), "succeed")
    cluster.faults.compact()
    cluster.faults.remove(rule)
    assert engine.wait_idle(WAIT)
    assert sink.results[task.key].state == SUCCESS
    assert len(sink.recorded) == 1


@pytest.mark.slow
def test_many_tasks_under_random_watch_chaos(cluster, make_engine):
    sink = MemorySink()
    engine = make_engine(sink=sink)
    stop = threading.Event()
    actions = [cluster.faults.drop_watches, cluster.faults.expire_watches, cluster.faults.compact]

    def chaos() -> None:
        i = 0
        while not stop.wait(0.1):
            actions[i % len(actions)]()
            i += 1

    thread = threading.Thread(target=chaos, daemon=True)
    thread.start()
    try:
        run_with_disruption(cluster, engine, sink, lambda: None, tasks=300, every=0.05, rounds=1)
    finally:
        stop.set()
        thread.join()


def test_stopping_the_engine_does_not_wait_for_a_quiet_watch(cluster, make_engine):
    """A real server's watch is silent between events (bookmarks about once a minute): stop closes it."""
    engine = make_engine(make_config(watch_timeout_seconds=300))
    cluster.cluster.wait_for(engine.ready, timeout=10)
    started = time.monotonic()
    engine.stop(timeout=10)
    assert time.monotonic() - started < 1.5
    assert not any(t.is_alive() for t in threading.enumerate() if t.name == "pod-watcher")
    assert engine.metrics.watch_restarts.labels(cause="error")._value.get() == 0  # a stop is not a failure
