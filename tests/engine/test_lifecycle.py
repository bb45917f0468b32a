"""A task's life through the engine: success, failure details, fatal reasons, timeouts, cleanup."""

from __future__ import annotations

import contextlib
import time

from airflow_k8s.executor.contract.errors import NotFound
from airflow_k8s.executor.tasks import identity
from airflow_k8s.executor.tasks.results import FAILED, SUCCESS, MemorySink
from tests.engine.conftest import NAMESPACE, WAIT, behave, make_config, make_task, results_by_key
from tests.fakekube import FakeKubeServer


def test_a_task_runs_to_success_and_its_pod_is_deleted(cluster: FakeKubeServer, make_engine):
    sink = MemorySink()
    engine = make_engine(sink=sink)
    task = make_task("hello")
    engine.submit(task)
    assert engine.wait_idle(WAIT)
    result = sink.results[task.key]
    assert (result.state, result.reason, result.exit_code) == (SUCCESS, "Completed", 0)
    assert result.pod_name == identity.pod_name(task.key) and result.node == "worker-1"
    assert result.started_at is not None and result.finished_at is not None
    assert cluster.cluster.pod(NAMESPACE, result.pod_name) is None
    assert cluster.stats.creates()[(NAMESPACE, result.pod_name)] == 1


def test_a_failed_task_keeps_exit_code_reason_and_log_tail_and_its_pod_is_labelled_done(cluster, make_engine):
    sink = MemorySink()
    engine = make_engine(sink=sink)
    task = make_task("boom", annotations=behave("fail", exit_code="3", log="loading data\nKeyError: 'x'"))
    engine.submit(task)
    assert engine.wait_idle(WAIT)
    result = sink.results[task.key]
    assert (result.state, result.exit_code, result.reason) == (FAILED, 3, "Error")
    assert "KeyError: 'x'" in result.log_tail
    pod = cluster.cluster.pod(NAMESPACE, result.pod_name)
    assert pod is not None and pod["metadata"]["labels"][identity.LABEL_DONE] == "True"


def test_failed_pods_are_deleted_when_configured(cluster, make_engine):
    sink = MemorySink()
    engine = make_engine(make_config(delete_worker_pods_on_failure=True), sink=sink)
    task = make_task("boom", annotations=behave("fail"))
    engine.submit(task)
    assert engine.wait_idle(WAIT)
    assert cluster.cluster.pod(NAMESPACE, sink.results[task.key].pod_name) is None


def test_succeeded_pods_are_kept_and_labelled_when_configured(cluster, make_engine):
    sink = MemorySink()
    engine = make_engine(make_config(delete_worker_pods=False), sink=sink)
    task = make_task("ok")
    engine.submit(task)
    assert engine.wait_idle(WAIT)
    pod = cluster.cluster.pod(NAMESPACE, sink.results[task.key].pod_name)
    assert pod["metadata"]["labels"][identity.LABEL_DONE] == "True"


def test_an_oom_killed_task_reports_oomkilled(cluster, make_engine):
    sink = MemorySink()
    engine = make_engine(sink=sink)
    task = make_task("oom", annotations=behave("oomkill"))
    engine.submit(task)
    assert engine.wait_idle(WAIT)
    assert (sink.results[task.key].reason, sink.results[task.key].exit_code) == ("OOMKilled", 137)


def test_fatal_image_errors_fail_at_once_and_the_pod_is_deleted(cluster, make_engine):
    sink = MemorySink()
    engine = make_engine(make_config(max_pod_pending_timeout=600), sink=sink)
    pull = make_task("pull", image="registry.example/none:bad")
    config_error = make_task("cfg", annotations=behave("createcontainerconfigerror"))
    engine.submit(pull)
    engine.submit(config_error)
    assert engine.wait_idle(WAIT)  # far less than the 600 s pending timeout
    assert sink.results[pull.key].reason == "ErrImagePull"
    assert sink.results[config_error.key].reason == "CreateContainerConfigError"
    cluster.cluster.wait_for(lambda: cluster.cluster.pod(NAMESPACE, sink.results[pull.key].pod_name) is None)


def test_an_unschedulable_pod_times_out_with_the_schedulers_reason_and_is_deleted(cluster, make_engine, caplog):
    sink = MemorySink()
    engine = make_engine(make_config(max_pod_pending_timeout=1), sink=sink)
    task = make_task("nowhere", node_selector={"node-type": "gpu"})  # the GPU pool, without its toleration
    engine.submit(task)
    cluster.cluster.wait_for(lambda: engine.metrics.unschedulable._value.get() == 1)
    assert engine.wait_idle(WAIT)
    result = sink.results[task.key]
    assert result.reason == "PendingTimeout"
    assert any(
        getattr(r, "event", None) == "unschedulable" and "nodes are available" in r.getMessage() for r in caplog.records
    )
    assert "more than 1s" in result.message and "nodes are available" in result.message
    cluster.cluster.wait_for(lambda: cluster.cluster.pod(NAMESPACE, result.pod_name) is None)


def test_a_pod_deleted_by_someone_else_runs_on_until_it_is_gone_then_fails_its_task(cluster, make_engine, kube):
    """A graceful DELETE first marks the pod (MODIFIED with deletionTimestamp); it may still run or even
    finish during its grace period, so the task fails only when the pod is really gone (DELETED)."""
    cluster.configure(deletion_delay=2.0)  # the strict preset's realistic value
    sink = MemorySink()
    engine = make_engine(sink=sink)
    task = make_task("victim", annotations=behave("hang"))
    engine.submit(task)
    name = identity.pod_name(task.key)
    cluster.cluster.wait_for_phase(NAMESPACE, name, "Running")
    kube.delete_pod(NAMESPACE, name)
    rec = engine.book.get(name)
    cluster.cluster.wait_for(lambda: (rec.pod or {}).get("metadata", {}).get("deletionTimestamp"), timeout=WAIT)
    assert cluster.cluster.pod(NAMESPACE, name) is not None  # terminating, not gone
    assert task.key not in sink.results and engine.snapshot()["running"] == 1
    assert engine.wait_idle(WAIT)
    assert sink.results[task.key].reason == "PodDeleted"
    assert cluster.cluster.pod(NAMESPACE, name) is None


def test_a_policy_violating_task_fails_before_any_api_call(cluster, make_engine):
    sink = MemorySink()
    engine = make_engine(sink=sink)
    task = make_task("evil", pod_override={"spec": {"hostNetwork": True}})
    engine.submit(task)
    assert engine.wait_idle(WAIT)
    assert sink.results[task.key].reason == "PolicyViolation"
    assert cluster.stats.count(method="POST", resource="pods") == 0


def test_submitting_the_same_task_twice_runs_it_once(cluster, make_engine):
    sink = MemorySink()
    engine = make_engine(sink=sink)
    task = make_task("once", annotations=behave("succeed", run_seconds=0.3))
    engine.submit(task)
    engine.submit(task)
    assert engine.wait_idle(WAIT)
    engine.submit(task)  # after it finished, too
    assert engine.wait_idle(WAIT)
    assert len(sink.recorded) == 1
    assert sum(cluster.stats.creates().values()) == 1


def test_a_retry_of_the_same_task_is_a_new_pod(cluster, make_engine):
    sink = MemorySink()
    engine = make_engine(sink=sink)
    first, second = make_task("again", try_number=1), make_task("again", try_number=2)
    engine.submit(first)
    engine.submit(second)
    assert engine.wait_idle(WAIT)
    assert set(results_by_key(sink)) == {first.key, second.key}
    assert len(cluster.stats.creates()) == 2


def test_a_burst_larger_than_one_loop_batch_loses_no_message(cluster, make_engine):
    """Regression: the loop once dropped the message after each full batch of 2,000."""
    from airflow_k8s.executor.engine.core import _BATCH

    cluster.cluster.pause()  # nothing progresses: every task stays queued or pending
    engine = make_engine(make_config(worker_pods_max=1), start=False)
    tasks = [make_task(f"burst{i}") for i in range(_BATCH + 50)]
    for task in tasks:
        engine.submit(task)
    engine.start()
    cluster.cluster.wait_for(lambda: engine.inbox.empty() and engine.snapshot()["pending"] == 1)
    snapshot = engine.snapshot()
    assert snapshot["queued"] + snapshot["launching"] + snapshot["pending"] == len(tasks)


def test_a_late_event_of_a_finished_pod_does_not_bring_its_task_back(cluster, make_engine):
    """Watch events can trail a deletion; a finished, forgotten pod must not be 'adopted' again."""
    from airflow_k8s.executor.engine.messages import PodEvent

    sink = MemorySink()
    engine = make_engine(sink=sink)
    task = make_task("once", annotations=behave("hang"))
    engine.submit(task)
    name = identity.pod_name(task.key)
    cluster.cluster.wait_for_phase(NAMESPACE, name, "Running")
    running = cluster.cluster.pod(NAMESPACE, name)
    cluster.cluster.complete(NAMESPACE, name)
    assert engine.wait_idle(WAIT) and len(sink.recorded) == 1
    engine.post(PodEvent("MODIFIED", running))  # the Running snapshot, delivered late
    assert engine.wait_idle(WAIT)
    assert len(sink.recorded) == 1 and engine.snapshot()["running"] == 0


def test_a_succeeded_pod_taken_over_by_another_schedulers_provider_executor_is_reported_once(
    cluster, make_engine, kube
):
    """Airflow's KubernetesExecutor in another scheduler adopts Succeeded pods of other airflow-worker ids.

    Its ``_adopt_completed_pods`` relabels such a pod to its own job id, then deletes it.  The pod leaves
    our label selector (a real watch reports that as DELETED with the last object), yet the outcome is
    recorded exactly once.
    """
    sink = MemorySink()
    engine = make_engine(sink=sink)
    task = make_task("taken", annotations=behave("hang"))
    engine.submit(task)
    name = identity.pod_name(task.key)
    cluster.cluster.wait_for_phase(NAMESPACE, name, "Running")
    cluster.cluster.complete(NAMESPACE, name)
    with contextlib.suppress(NotFound):  # whichever comes first, ours or the other scheduler's cleanup
        kube.patch_pod_metadata(NAMESPACE, name, labels={identity.LABEL_INSTANCE: "other-job"})
        kube.delete_pod(NAMESPACE, name)
    assert engine.wait_idle(WAIT)
    assert [r.state for r in sink.recorded] == [SUCCESS]


def test_finished_tasks_leave_no_state_behind_once_their_pods_are_gone(cluster, make_engine):
    """Memory stays flat however many tasks finish: records go after cleanup, pod UIDs once DELETED is seen."""
    sink = MemorySink()
    engine = make_engine(sink=sink)
    for index in range(20):
        engine.submit(make_task(f"flat{index}"))
    assert engine.wait_idle(WAIT)
    assert len(sink.recorded) == 20
    book = engine.book
    deadline = time.monotonic() + WAIT
    while book.gone and time.monotonic() < deadline:  # the DELETED events may still be on their way
        time.sleep(0.05)
    assert (len(book.records), len(book.by_key), len(book.gone)) == (0, 0, 0)
