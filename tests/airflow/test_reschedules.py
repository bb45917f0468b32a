"""Tries Airflow hands back: a task's own reschedule goes on, a loop nobody asked for fails with its reason."""

from __future__ import annotations

import pytest
from airflow.utils.state import TaskInstanceState

from airflow_k8s.executor.airflow.reschedules import ASKED, LOOP, UNKNOWN, RescheduleLoops, judge
from airflow_k8s.executor.airflow.workloads import task_key
from airflow_k8s.executor.tasks import identity
from airflow_k8s.executor.tasks.results import SUCCESS, TaskResult
from tests.airflow.conftest import NAMESPACE, events_until, run, workload

FAILED = TaskInstanceState.FAILED
STARTUP_FAILURE = (
    '{"event": "Dag not found during start up", "level": "error", "dag_id": "dag"}\n'
    '{"event": "Rescheduling task during startup, marking task as UP_FOR_RESCHEDULE", "level": "warning"}'
)
SENSOR_POKE = (
    '{"event": "Poking callable", "level": "info"}\n'
    '{"event": "Rescheduling task, marking task as UP_FOR_RESCHEDULE", "level": "info"}\n'
    '{"event": "Task instance in running state", "level": "info"}'
)


def logged(text: str) -> dict:
    return {"kubernetes_config": {"annotations": {"fakekube/log": text}}}


@pytest.mark.parametrize(
    ("tail", "verdict"),
    [
        (tuple(STARTUP_FAILURE.splitlines()), LOOP),
        (tuple(SENSOR_POKE.splitlines()), ASKED),
        (('{"event": "Pausing task as DEFERRED. ", "dag_id": "d"}',), ASKED),
        (('{"event": "Task finished", "exit_code": 0}',), LOOP),  # came back without asking
        ((), UNKNOWN),
        (("(logs unavailable: 404 pod gone)",), UNKNOWN),
    ],
)
def test_a_pods_last_log_lines_say_whether_the_task_asked_to_come_back(tail, verdict):
    assert judge(tail) == verdict


def _ended(key, lines: str) -> TaskResult:
    return TaskResult(key, SUCCESS, "Completed", pod_name="pod-1", log_tail=tuple(lines.splitlines()))


def test_the_count_starts_again_whenever_the_task_itself_asked():
    loops = RescheduleLoops(limit=2)
    key = task_key(workload("t").ti)
    assert not loops.returned(key).resumed  # a first run
    decisions = []
    for lines in (STARTUP_FAILURE, SENSOR_POKE, STARTUP_FAILURE, STARTUP_FAILURE):
        loops.ended(_ended(key, lines))
        decisions.append(loops.returned(key))
    assert [d.fail is None for d in decisions] == [True, True, True, False]
    assert all(d.resumed for d in decisions)
    assert "Dag not found during start up" in decisions[-1].fail  # type: ignore[operator]


def test_what_is_remembered_is_bounded():
    loops = RescheduleLoops(limit=1, remembered_max=3)
    keys = [task_key(workload(f"t{i}").ti) for i in range(5)]
    for key in keys:
        loops.ended(_ended(key, STARTUP_FAILURE))
    assert [loops.returned(key).resumed for key in keys] == [False, False, True, True, True]


def _returns_until_failed(executor, item, rounds: int) -> tuple[list, dict]:
    """Hand ``item`` back after each success, as Airflow does with a rescheduled try."""
    states: list = []
    for _ in range(rounds):
        run(executor, item)
        events = events_until(
            executor, lambda e: any(s in (TaskInstanceState.SUCCESS, FAILED) for s, _ in e.get(item.ti.key, []))
        )
        finals = [(s, info) for s, info in events[item.ti.key] if s in (TaskInstanceState.SUCCESS, FAILED)]
        states.append(finals[-1][0])
        if finals[-1][0] == FAILED:
            return states, dict(finals)
    return states, {}


def test_a_try_that_keeps_coming_back_from_a_startup_failure_fails_with_its_pods_last_log_lines(cluster, make_executor):
    executor = make_executor(unrequested_reschedule_limit=2)
    item = workload("lost", executor_config=logged(STARTUP_FAILURE))
    states, finals = _returns_until_failed(executor, item, rounds=6)
    # run 1 (log not read) -> back: log read from now on; run 2 (loop 1) -> back; run 3 (loop 2) -> back: failed
    assert states == [TaskInstanceState.SUCCESS] * 3 + [FAILED]
    info = finals[FAILED]
    assert "came back 2 times without the task asking" in info and "Dag not found during start up" in info
    name = identity.pod_name(task_key(item.ti))
    assert cluster.stats.creates() == {(NAMESPACE, name): 3}  # each return got a pod of its own, not the old one


def test_a_sensor_that_reschedules_itself_is_launched_every_time_it_comes_back(cluster, make_executor):
    executor = make_executor(unrequested_reschedule_limit=2, delete_worker_pods=False)
    item = workload("sensor", executor_config=logged(SENSOR_POKE))
    states, _ = _returns_until_failed(executor, item, rounds=5)
    assert states == [TaskInstanceState.SUCCESS] * 5
    name = identity.pod_name(task_key(item.ti))
    assert cluster.stats.creates() == {(NAMESPACE, name): 5}  # the kept pod of the last poke is replaced, never adopted


def test_a_try_handed_back_while_its_pod_still_runs_waits_for_it_and_its_stale_outcome_is_not_reported(
    cluster, make_executor
):
    """Airflow re-queues a reschedule as soon as the task reports it, often before its pod has exited."""
    executor = make_executor(unrequested_reschedule_limit=2)
    config = {"kubernetes_config": {"annotations": {"fakekube/log": SENSOR_POKE, "fakekube/run-seconds": "2"}}}
    item = workload("quick", executor_config=config)
    run(executor, item)
    events_until(executor, lambda e: TaskInstanceState.RUNNING in [s for s, _ in e.get(item.ti.key, [])])
    run(executor, item)  # handed back while the first pod runs
    events = events_until(executor, lambda e: TaskInstanceState.SUCCESS in [s for s, _ in e.get(item.ti.key, [])])
    name = identity.pod_name(task_key(item.ti))
    assert cluster.stats.creates() == {(NAMESPACE, name): 2}  # the second round got a pod of its own
    finals = [s for s, _ in events[item.ti.key] if s in (TaskInstanceState.SUCCESS, FAILED)]
    assert finals == [TaskInstanceState.SUCCESS]  # only the second pod's outcome reached Airflow
    assert item.ti.key not in executor.running
