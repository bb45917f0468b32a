"""API failures during launch: retries where they help, clear permanent errors where they do not."""

from __future__ import annotations

import time

from airflow_k8s.executor.tasks import identity
from airflow_k8s.executor.tasks.results import SUCCESS, MemorySink
from tests.engine.conftest import NAMESPACE, SMALL_RESOURCES, WAIT, behave, make_config, make_task, put_quota


def api_errors(engine, code: int, verb: str = "create") -> float:
    return engine.metrics.api_errors.labels(code=str(code), verb=verb)._value.get()


def test_throttling_is_retried_after_the_servers_retry_after(cluster, make_engine):
    sink = MemorySink()
    engine = make_engine(sink=sink)
    cluster.faults.throttle(method="POST", path=r"/pods$", times=2, retry_after=1)
    task = make_task("throttled")
    started = time.monotonic()
    engine.submit(task)
    assert engine.wait_idle(WAIT)
    assert sink.results[task.key].state == SUCCESS
    assert api_errors(engine, 429) == 2
    assert time.monotonic() - started >= 2.0  # two Retry-After: 1 waits, not a fast local backoff


def test_server_errors_are_retried_with_backoff(cluster, make_engine):
    sink = MemorySink()
    engine = make_engine(sink=sink)
    cluster.faults.fail_next(method="POST", path=r"/pods$", status=503, times=3)
    cluster.faults.fail_next(method="POST", path=r"/pods$", status=500, times=1)
    task = make_task("flaky")
    engine.submit(task)
    assert engine.wait_idle(WAIT)
    assert sink.results[task.key].state == SUCCESS
    assert api_errors(engine, 503) == 3 and api_errors(engine, 500) == 1


def test_a_create_whose_response_is_lost_is_adopted_not_duplicated(cluster, make_engine):
    sink = MemorySink()
    engine = make_engine(sink=sink)
    cluster.faults.fail_after_store(status=500)  # stored, then answered 500
    cluster.faults.fail_after_store(status=None)  # stored, then the connection is cut
    tasks = [make_task("lost-1"), make_task("lost-2")]
    for task in tasks:
        engine.submit(task)
    assert engine.wait_idle(WAIT)
    assert all(sink.results[t.key].state == SUCCESS for t in tasks)
    assert cluster.stats.duplicate_creates() == {}
    assert all(cluster.stats.creates()[(NAMESPACE, identity.pod_name(t.key))] == 1 for t in tasks)


def test_a_name_taken_by_another_task_is_a_hard_error(cluster, make_engine, kube):
    task = make_task("victim")
    impostor = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": identity.pod_name(task.key),
            "annotations": {"dag_id": "other", "task_id": "x", "run_id": "y"},
        },
        "spec": {
            "containers": [{"name": "c", "image": "busybox", "resources": SMALL_RESOURCES}],
            "schedulerName": "nobody",
        },
    }
    cluster.admission.enforce_pod_security(False)  # a hand-made, non-hardened pod
    kube.create_pod(NAMESPACE, impostor)
    cluster.admission.enforce_pod_security()
    sink = MemorySink()
    engine = make_engine(sink=sink)
    engine.submit(task)
    assert engine.wait_idle(WAIT)
    result = sink.results[task.key]
    assert result.reason == "NameConflict" and "other.x" in result.message
    assert cluster.cluster.pod(NAMESPACE, impostor["metadata"]["name"]) is not None  # not ours: left alone


def quota_refusals(engine) -> float:
    return engine.metrics.quota_refusals._value.get()


def test_a_quota_refusal_is_backpressure_and_the_task_runs_once_room_frees(cluster, make_engine):
    cluster.cluster.admission.set_quota(NAMESPACE, 0)
    sink = MemorySink()
    engine = make_engine(sink=sink)
    task = make_task("quota")
    engine.submit(task)
    cluster.cluster.wait_for(lambda: quota_refusals(engine) >= 2)
    assert task.key not in sink.results  # refused, not failed
    cluster.cluster.admission.set_quota(NAMESPACE, 5)
    assert engine.wait_idle(WAIT)
    assert sink.results[task.key].state == SUCCESS
    assert cluster.stats.count(method="POST", resource="pods") >= 3


def test_a_quota_that_releases_usage_late_only_delays_tasks_and_the_engine_does_not_spin(cluster, make_engine):
    """The real quota charges a pod at create and gives its share back only when the quota controller
    recalculates after the pod ended: refusals while real usage is below the limit are backpressure."""
    cluster.configure(quota_release_delay=0.5)  # strict: 2 s; shorter here, the order of things is the same
    put_quota(cluster, NAMESPACE, {"pods": "3"}, name="tight")
    sink = MemorySink()
    engine = make_engine(sink=sink)
    tasks = [make_task(f"q{i}", annotations=behave("succeed", run_seconds=0.1)) for i in range(9)]
    started = time.monotonic()
    for task in tasks:
        engine.submit(task)
    assert engine.wait_idle(60)
    elapsed = time.monotonic() - started
    assert all(sink.results[t.key].state == SUCCESS for t in tasks) and len(sink.recorded) == 9
    assert cluster.stats.duplicate_creates() == {}
    refused = cluster.stats.count(method="POST", resource="pods", code=403)
    assert refused >= 1 and quota_refusals(engine) == refused
    assert refused <= 10 * elapsed  # backing off, not hammering a full namespace


def test_a_task_refused_past_the_pushback_timeout_fails_with_the_quotas_message(cluster, make_engine):
    cluster.cluster.admission.set_quota(NAMESPACE, 0)
    sink = MemorySink()
    engine = make_engine(make_config(quota_pushback_timeout=1), sink=sink)
    task = make_task("never")
    engine.submit(task)
    assert engine.wait_idle(WAIT)
    result = sink.results[task.key]
    assert result.reason == "QuotaExceeded" and "exceeded quota" in result.message and "gave up" in result.message
    assert quota_refusals(engine) >= 2


def test_task_publish_max_retries_zero_fails_at_the_first_quota_refusal_as_in_airflow(cluster, make_engine):
    cluster.cluster.admission.set_quota(NAMESPACE, 0)
    sink = MemorySink()
    engine = make_engine(make_config(task_publish_max_retries=0), sink=sink)
    task = make_task("strict")
    engine.submit(task)
    assert engine.wait_idle(WAIT)
    assert sink.results[task.key].reason == "QuotaExceeded"
    assert cluster.stats.count(method="POST", resource="pods") == 1


def test_a_409_conflict_on_create_is_retried_not_taken_for_an_existing_pod(cluster, make_engine):
    """Creates racing on a ResourceQuota get 409 Conflict: nothing was created, so create again."""
    cluster.faults.fail_next(method="POST", path=r"/pods$", status=409, times=1)
    sink = MemorySink()
    engine = make_engine(sink=sink)
    task = make_task("raced")
    engine.submit(task)
    assert engine.wait_idle(WAIT)
    assert sink.results[task.key].state == SUCCESS
    assert cluster.stats.count(method="POST", resource="pods") == 2


def test_creates_losing_the_race_on_the_resourcequota_are_retried_and_each_task_runs_once(cluster, make_engine):
    """The real quota admission answers 409 Conflict when its update of the quota object races another
    create; nothing was stored, so the launcher creates again (only AlreadyExists means "it is there")."""
    cluster.admission.quotas.conflict_next(3, namespace=NAMESPACE)
    sink = MemorySink()
    engine = make_engine(sink=sink)
    tasks = [make_task(f"race{i}") for i in range(25)]  # the strict preset also loses every 20th race
    for task in tasks:
        engine.submit(task)
    assert engine.wait_idle(20)
    assert all(sink.results[t.key].state == SUCCESS for t in tasks) and len(sink.recorded) == 25
    assert cluster.stats.count(method="POST", resource="pods", code=409) >= 4
    assert api_errors(engine, 409) >= 4
    assert cluster.stats.duplicate_creates() == {}


def test_a_pod_naming_an_unknown_priority_class_fails_at_once_with_the_admission_message(cluster, make_engine):
    sink = MemorySink()
    engine = make_engine(make_config(worker_priority_class="no-such-class"), sink=sink)
    task = make_task("unranked")
    engine.submit(task)
    assert engine.wait_idle(10)
    result = sink.results[task.key]
    assert result.reason == "Forbidden" and "no-such-class" in result.message
    assert quota_refusals(engine) == 0  # a 403 that is not the quota's is not backpressure
    assert cluster.stats.count(method="POST", resource="pods") == 1


def test_pod_security_admission_rejections_are_reported(cluster, make_engine, kube):
    cluster.cluster.admission.enforce_pod_security()
    sink = MemorySink()
    engine = make_engine(sink=sink)
    task = make_task("hardened")
    engine.submit(task)
    assert engine.wait_idle(WAIT)
    assert sink.results[task.key].state == SUCCESS  # our pods pass "restricted" for real


def test_an_invalid_pod_is_a_permanent_failure(cluster, make_engine):
    cluster.faults.fail_next(method="POST", path=r"/pods$", status=422, times=1)
    sink = MemorySink()
    engine = make_engine(sink=sink)
    task = make_task("invalid")
    engine.submit(task)
    assert engine.wait_idle(WAIT)
    assert sink.results[task.key].reason == "Invalid"


def test_creation_gives_up_at_the_pod_creation_timeout(cluster, make_engine):
    cluster.faults.fail_next(method="POST", path=r"/pods$", status=503, times=None)
    sink = MemorySink()
    engine = make_engine(make_config(pod_creation_timeout=1), sink=sink)
    task = make_task("never")
    engine.submit(task)
    assert engine.wait_idle(WAIT)
    result = sink.results[task.key]
    assert result.reason == "CreationTimeout" and "503" in result.message
