"""What Airflow 3 asks of the engine: start deadlines (the workload token), revocation, running reports, relaunch."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from airflow_k8s.executor.engine.lifecycle import START_DEADLINE_MARGIN
from airflow_k8s.executor.tasks import identity
from airflow_k8s.executor.tasks.results import FAILED, SUCCESS, MemorySink
from tests.engine.conftest import NAMESPACE, WAIT, behave, make_config, make_task


def expiring_in(seconds: float) -> datetime:
    """A token expiry that leaves ``seconds`` before the engine's start deadline (expiry minus margin)."""
    return datetime.now(UTC) + timedelta(seconds=START_DEADLINE_MARGIN + seconds)


def test_a_pod_still_pending_at_its_start_deadline_is_deleted_and_the_task_fails_saying_why(cluster, make_engine):
    sink = MemorySink()
    engine = make_engine(sink=sink)
    stuck = make_task("stuck", node_selector={"node-type": "gpu"})  # never schedulable: no GPU toleration
    engine.submit(dataclasses.replace(stuck, start_deadline=expiring_in(1)))
    assert engine.wait_idle(WAIT)
    result = sink.results[stuck.key]
    assert (result.state, result.reason) == (FAILED, "StartDeadlineExceeded")
    assert "task_queued_timeout" in result.message and "cannot start late" in result.message
    cluster.cluster.wait_for(lambda: cluster.cluster.pod(NAMESPACE, identity.pod_name(stuck.key)) is None)


def test_a_task_still_queued_at_its_start_deadline_fails_without_a_pod(cluster, make_engine):
    sink = MemorySink()
    engine = make_engine(make_config(worker_pods_max=1), sink=sink)
    blocker = make_task("blocker", annotations=behave("hang"))
    engine.submit(blocker)
    cluster.cluster.wait_for_phase(NAMESPACE, identity.pod_name(blocker.key), "Running")
    late = make_task("late")
    engine.submit(dataclasses.replace(late, start_deadline=expiring_in(0.5)))
    cluster.cluster.wait_for(lambda: late.key in sink.results)
    assert sink.results[late.key].reason == "StartDeadlineExceeded"
    assert "no pod slot" in sink.results[late.key].message
    assert (NAMESPACE, identity.pod_name(late.key)) not in cluster.stats.creates()


def test_a_task_that_starts_in_time_is_not_affected_by_its_deadline(cluster, make_engine):
    sink = MemorySink()
    engine = make_engine(sink=sink)
    task = make_task("punctual")
    engine.submit(dataclasses.replace(task, start_deadline=expiring_in(600)))
    assert engine.wait_idle(WAIT)
    assert sink.results[task.key].state == SUCCESS


def test_revoking_a_running_task_deletes_its_pod_and_records_nothing(cluster, make_engine):
    sink = MemorySink()
    engine = make_engine(sink=sink)
    task = make_task("revoked", annotations=behave("hang"))
    engine.submit(task)
    name = identity.pod_name(task.key)
    cluster.cluster.wait_for_phase(NAMESPACE, name, "Running")
    engine.revoke(task.key)
    assert engine.wait_idle(WAIT)
    assert task.key not in sink.results
    cluster.cluster.wait_for(lambda: cluster.cluster.pod(NAMESPACE, name) is None)


def test_revoking_a_queued_task_creates_no_pod(cluster, make_engine):
    sink = MemorySink()
    engine = make_engine(make_config(worker_pods_max=1), sink=sink)
    blocker = make_task("blocker", annotations=behave("hang"))
    queued = make_task("queued")
    engine.submit(blocker)
    engine.submit(queued)
    cluster.cluster.wait_for_phase(NAMESPACE, identity.pod_name(blocker.key), "Running")
    engine.revoke(queued.key)
    engine.revoke(blocker.key)
    assert engine.wait_idle(WAIT)
    assert sink.recorded == [] and (NAMESPACE, identity.pod_name(queued.key)) not in cluster.stats.creates()


def test_each_pod_that_starts_running_is_reported_once(cluster, make_engine):
    running: list[tuple[object, str]] = []
    engine = make_engine(start=False)
    engine.lifecycle.on_running = lambda key, pod: running.append((key, pod))
    engine.start()
    tasks = [make_task(f"t{i}", annotations=behave("succeed", run_seconds=0.2)) for i in range(3)]
    for task in tasks:
        engine.submit(task)
    assert engine.wait_idle(WAIT)
    assert sorted(running, key=str) == sorted(((t.key, identity.pod_name(t.key)) for t in tasks), key=str)


def test_a_relaunch_replaces_the_kept_pod_of_a_failed_launch(cluster, make_engine):
    sink = MemorySink()
    engine = make_engine(sink=sink)  # failed pods are kept (labelled done)
    task = make_task("flaky", annotations=behave("fail"))
    engine.submit(task)
    assert engine.wait_idle(WAIT)
    first_uid = cluster.cluster.pod(NAMESPACE, identity.pod_name(task.key))["metadata"]["uid"]
    engine.submit(task)  # a plain resubmission of a recorded task does nothing
    assert engine.wait_idle(WAIT) and len(sink.recorded) == 1
    engine.submit(task, relaunch=True)
    assert engine.wait_idle(WAIT)
    assert len(sink.recorded) == 2
    pod = cluster.cluster.pod(NAMESPACE, identity.pod_name(task.key))
    assert pod is not None and pod["metadata"]["uid"] != first_uid
    assert cluster.stats.creates()[(NAMESPACE, identity.pod_name(task.key))] == 2


def test_a_relaunch_asked_for_while_the_failed_pod_is_still_being_cleaned_up_is_not_lost(cluster, make_engine):
    sink = MemorySink()
    engine = make_engine(sink=sink)
    task = make_task("flaky", annotations=behave("fail"))
    name = identity.pod_name(task.key)
    cluster.faults.add_latency(1.0, method="PATCH", path=rf"/pods/{name}$", times=1)  # the 'done' label lands late
    engine.submit(task)
    cluster.cluster.wait_for(lambda: task.key in sink.results, timeout=10)
    engine.submit(task, relaunch=True)  # as Airflow's adapter does as soon as it reads the failure
    assert engine.wait_idle(15)
    assert len(sink.recorded) == 2
    assert cluster.stats.creates()[(NAMESPACE, name)] == 2
