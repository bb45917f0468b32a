"""One try, several launches: a deferred task resumed by the triggerer, or a sensor in reschedule mode, is queued
again with the same key.  Each launch (Airflow's pre-assigned ``external_executor_id``) gets a pod of its own; an
earlier launch's pod - kept with ``delete_worker_pods = False`` - is never taken for it, by the create, the
reports or the adoption after a restart."""

from __future__ import annotations

import uuid

import pytest
from airflow.utils.state import TaskInstanceState

from airflow_k8s.executor.airflow.executor import KubernetesPlatformExecutor
from airflow_k8s.executor.airflow.workloads import task_key
from airflow_k8s.executor.tasks import identity
from tests.airflow.conftest import NAMESPACE, events_until, run, token, workload
from tests.airflow.test_executor import annotations, states

RUNNING, SUCCESS, FAILED = TaskInstanceState.RUNNING, TaskInstanceState.SUCCESS, TaskInstanceState.FAILED


def launch(item, launch_id: str, **fake: str):
    """The same try queued again (same task instance id and try number), as Airflow's scheduler queues a
    resumed task: a fresh ``external_executor_id`` and token."""
    config = annotations(**fake) if fake else None
    ti = item.ti.model_copy(update={"external_executor_id": launch_id, "executor_config": config})
    return item.model_copy(update={"ti": ti, "token": token()})


def pod_name_of(item) -> str:
    return identity.pod_name(task_key(item.ti), item.ti.external_executor_id)


def test_airflow_assigns_a_launch_id_when_it_queues_a_task_for_this_executor():
    assert KubernetesPlatformExecutor.pre_assigns_external_executor_id is True


@pytest.mark.parametrize("delete_worker_pods", [False, True])
def test_a_resumed_try_gets_a_pod_of_its_own_and_reports_only_that_pods_outcome(
    cluster, make_executor, delete_worker_pods
):
    executor = make_executor(delete_worker_pods=delete_worker_pods)
    base = workload("deferrable")
    first = launch(base, str(uuid.uuid4()))  # runs until it defers: its process exits 0
    run(executor, first)
    events = events_until(executor, lambda e: SUCCESS in states(e, first))
    second = launch(base, str(uuid.uuid4()), outcome="fail", exit_code="4")  # the resumption, which fails
    run(executor, second)
    events = events_until(executor, lambda e: FAILED in states(e, second), timeout=120)

    names = [pod_name_of(first), pod_name_of(second)]
    assert names[0] != names[1]
    assert states(events, second)[-1] == FAILED
    assert f"pod {names[1]} failed: Error, exit code 4" in events[second.ti.key][-1][1]
    assert cluster.stats.creates() == {(NAMESPACE, names[0]): 1, (NAMESPACE, names[1]): 1}
    if not delete_worker_pods:  # both kept; each carries its launch
        for item, name in ((first, names[0]), (second, names[1])):
            pod = cluster.cluster.pod(NAMESPACE, name)
            assert pod["metadata"]["annotations"][identity.ANNOTATION_LAUNCH] == item.ti.external_executor_id
            assert pod["metadata"]["annotations"]["task_instance_id"] == str(base.ti.id)


def test_a_launch_queued_while_the_earlier_launchs_pod_still_runs_waits_for_it_and_ignores_its_outcome(
    cluster, make_executor
):
    executor = make_executor(delete_worker_pods=False)
    base = workload("sensor")
    first = launch(base, "launch-1", outcome="hang")
    run(executor, first)
    events_until(executor, lambda e: RUNNING in states(e, first))
    second = launch(base, "launch-2", outcome="hang")
    run(executor, second)  # e.g. the triggerer fired before the watch saw the first pod exit
    executor.heartbeat()
    assert cluster.cluster.pod(NAMESPACE, pod_name_of(second)) is None  # it waits for the earlier pod to end
    cluster.cluster.complete(NAMESPACE, pod_name_of(first), "fail", exit_code=1)  # which ends badly
    events = events_until(executor, lambda e: [p for s, p in e.get(second.ti.key, []) if p == pod_name_of(second)])
    cluster.cluster.complete(NAMESPACE, pod_name_of(second))
    events = events_until(executor, lambda e: SUCCESS in states(e, second))
    reported = events[second.ti.key]
    assert FAILED not in [state for state, _ in reported]
    assert reported[-1] == (SUCCESS, pod_name_of(second))
    assert cluster.cluster.pod(NAMESPACE, pod_name_of(first))["status"]["phase"] == "Failed"  # kept, its own


def test_after_a_restart_the_current_launchs_pod_is_adopted_never_an_earlier_ones(cluster, make_executor):
    first_scheduler = make_executor(job_id=1, delete_worker_pods=False)
    base = workload("rescheduled")
    earlier = launch(base, "launch-1")
    run(first_scheduler, earlier)
    events_until(first_scheduler, lambda e: SUCCESS in states(e, earlier))
    current = launch(base, "launch-2", outcome="hang")
    run(first_scheduler, current)
    events_until(first_scheduler, lambda e: RUNNING in states(e, current))
    first_scheduler.terminate()

    second_scheduler = make_executor(job_id=2, delete_worker_pods=False)
    assert list(second_scheduler.try_adopt_task_instances([LaunchedTI(current, queued_by_job_id=1)])) == []
    labels = {name: cluster.cluster.pod(NAMESPACE, name)["metadata"]["labels"] for name in map(pod_name_of, (earlier,
              current))}  # fmt: skip
    assert labels[pod_name_of(current)]["airflow-worker"] == "2"
    assert labels[pod_name_of(earlier)]["airflow-worker"] == "1"  # finished and done: left alone
    second_scheduler.heartbeat()
    buffered = second_scheduler.get_event_buffer().get(current.ti.key)
    assert buffered in (None, (RUNNING, pod_name_of(current)))  # the earlier launch's success is never reported
    cluster.cluster.complete(NAMESPACE, pod_name_of(current))
    events = events_until(second_scheduler, lambda e: SUCCESS in states(e, current))
    assert events[current.ti.key][-1] == (SUCCESS, pod_name_of(current))


def test_a_task_instance_whose_launch_never_got_a_pod_is_not_adopted_onto_an_earlier_launchs_pod(
    cluster, make_executor
):
    first_scheduler = make_executor(job_id=1, delete_worker_pods=False)
    base = workload("deferred")
    earlier = launch(base, "launch-1")
    run(first_scheduler, earlier)
    events_until(first_scheduler, lambda e: SUCCESS in states(e, earlier))
    first_scheduler.terminate()  # died after Airflow queued launch-2, before it handed it over
    second_scheduler = make_executor(job_id=2, delete_worker_pods=False)
    orphan = LaunchedTI(launch(base, "launch-2"), queued_by_job_id=1)
    assert list(second_scheduler.try_adopt_task_instances([orphan])) == [orphan]  # Airflow resets and requeues it


class LaunchedTI:
    """A task instance as ``adopt_or_reset_orphaned_tasks`` loads it, with its ``external_executor_id``."""

    def __init__(self, item, *, queued_by_job_id: int) -> None:
        ti = item.ti
        self.dag_id, self.task_id, self.run_id, self.map_index = ti.dag_id, ti.task_id, ti.run_id, ti.map_index
        self.try_number, self.key, self.id, self.queued_by_job_id = ti.try_number, ti.key, ti.id, queued_by_job_id
        self.executor_config, self.external_executor_id = ti.executor_config, ti.external_executor_id
