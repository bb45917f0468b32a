"""Several schedulers in one namespace: each acts on its own pods only, hands adopted ones over, keeps N_min once.

Two engines with different ``scheduler_instance_id`` (Airflow: scheduler job ids) share one fake cluster, as two
active-active Airflow schedulers share a namespace.  "Adoption" is what Airflow's orphan adoption does through
this executor: the pod's ``airflow-worker`` label is patched to the adopter.
"""

from __future__ import annotations

import pytest

from airflow_k8s.executor.engine.placeholders import WarmShare
from airflow_k8s.executor.tasks import identity
from airflow_k8s.executor.tasks.results import SUCCESS, MemorySink
from tests.engine.conftest import NAMESPACE, WAIT, behave, loop_passes, make_config, make_task


def pods_of(cluster, instance: str, *, placeholders: bool = False) -> list[dict]:
    found = []
    for pod in cluster.cluster.pods(NAMESPACE):
        labels = pod["metadata"].get("labels") or {}
        if labels.get(identity.LABEL_INSTANCE) == instance and (identity.LABEL_PLACEHOLDER in labels) == placeholders:
            found.append(pod)
    return found


def adopt(kube, name: str, instance: str) -> None:
    """What ``try_adopt_task_instances`` does to a dead scheduler's pod."""
    kube.patch_pod_metadata(NAMESPACE, name, labels={identity.LABEL_INSTANCE: instance, identity.LABEL_DONE: None})


@pytest.fixture
def two(make_engine):
    """Scheduler "1" and scheduler "2", each with its own sink and a record of the tasks it handed over."""
    released: dict[str, list] = {"1": [], "2": []}

    def engine(instance: str, **changes):
        return make_engine(
            make_config(scheduler_instance_id=instance, **changes),
            sink=MemorySink(),
            on_released=lambda key, owner: released[instance].append((key, owner)),
        )

    return engine, released


def test_two_schedulers_each_launch_watch_and_clean_up_only_their_own_pods(cluster, two):
    engine, _ = two
    first, second = engine("1", worker_pods_max=4), engine("2", worker_pods_max=4)
    held = [make_task(f"held{i}", annotations=behave("hang")) for i in range(4)]
    quick = [make_task(f"quick{i}") for i in range(6)]
    for task in held:
        first.submit(task)
    cluster.cluster.wait_for(lambda: first.snapshot()["running"] == 4)
    for task in quick:
        second.submit(task)
    assert second.wait_idle(WAIT)

    # The second ran all of its tasks at its own N_max, next to four pods of the first it never counted.
    assert {r.key for r in second.sink.recorded} == {t.key for t in quick}
    assert all(r.state == SUCCESS for r in second.sink.recorded)
    assert first.sink.recorded == [] and first.snapshot()["running"] == 4
    assert sorted(p["metadata"]["name"] for p in pods_of(cluster, "1")) == sorted(
        identity.pod_name(t.key) for t in held
    )
    assert all(
        p["status"]["phase"] == "Running" and "deletionTimestamp" not in p["metadata"] for p in pods_of(cluster, "1")
    )
    assert pods_of(cluster, "2") == []  # its own finished pods deleted; none of the first's touched
    assert set(cluster.stats.creates().values()) == {1}


def test_a_pod_another_scheduler_adopted_is_handed_over_not_failed_or_deleted(cluster, kube, two):
    """Airflow took the first scheduler for dead (a paused process, a lost database connection) while it was not."""
    engine, released = two
    first, second = engine("1"), engine("2")
    task = make_task("long", annotations=behave("hang"))
    first.submit(task)
    cluster.cluster.wait_for(lambda: first.snapshot()["running"] == 1)
    name = identity.pod_name(task.key)

    adopt(kube, name, "2")  # the first's watch sees it leave its selection: a DELETED event
    cluster.cluster.wait_for(lambda: second.snapshot()["running"] == 1 and not first.book.knows(task.key))
    assert released["1"] == [(task.key, "2")]
    assert first.metrics.handed_over._value.get() == 1
    pod = cluster.cluster.pod(NAMESPACE, name)
    assert pod is not None and "deletionTimestamp" not in pod["metadata"]
    assert pod["status"]["phase"] == "Running"

    cluster.cluster.complete(NAMESPACE, name)
    assert second.wait_idle(WAIT) and first.wait_idle(WAIT)
    assert [(r.key, r.state) for r in second.sink.recorded] == [(task.key, SUCCESS)]
    assert first.sink.recorded == []  # no PodDeleted failure, no second outcome
    assert cluster.stats.creates()[(NAMESPACE, name)] == 1


def test_a_pod_adopted_while_the_watch_was_down_is_handed_over_after_the_relist(cluster, kube, two):
    engine, released = two
    first, second = engine("1"), engine("2")
    task = make_task("quiet", annotations=behave("hang"))
    first.submit(task)
    cluster.cluster.wait_for(lambda: first.snapshot()["running"] == 1)
    name = identity.pod_name(task.key)
    # The first's watch is down (every attempt fails) and its history compacted: it must relist.
    rule = cluster.faults.fail_next(method="GET", path=r"/pods$", query="airflow-worker%3D1", status=503, times=None)
    cluster.faults.drop_watches()
    adopt(kube, name, "2")
    cluster.faults.compact()
    cluster.cluster.wait_for(lambda: second.snapshot()["running"] == 1)
    cluster.faults.remove(rule)

    cluster.cluster.wait_for(lambda: released["1"] == [(task.key, "2")])
    assert first.sink.recorded == [] and not first.book.knows(task.key)
    cluster.cluster.complete(NAMESPACE, name)
    assert second.wait_idle(WAIT)
    assert [(r.key, r.state) for r in second.sink.recorded] == [(task.key, SUCCESS)]
    assert first.sink.recorded == []


def test_a_deleted_pod_still_fails_its_task_with_pod_deleted(cluster, kube, two):
    engine, released = two
    first = engine("1")
    task = make_task("doomed", annotations=behave("hang"))
    first.submit(task)
    cluster.cluster.wait_for(lambda: first.snapshot()["running"] == 1)
    kube.delete_pod(NAMESPACE, identity.pod_name(task.key), grace_period=0)
    assert first.wait_idle(WAIT)
    assert [(r.key, r.reason) for r in first.sink.recorded] == [(task.key, "PodDeleted")]
    assert released["1"] == []


def test_adopted_pods_count_against_the_adopters_n_max(cluster, kube, two):
    engine, _ = two
    first, second = engine("1"), engine("2", worker_pods_max=2)
    held = [make_task(f"adoptee{i}", annotations=behave("hang")) for i in range(2)]
    for task in held:
        first.submit(task)
    cluster.cluster.wait_for(lambda: first.snapshot()["running"] == 2)
    first.stop()  # the first scheduler dies; the second adopts its pods
    for task in held:
        adopt(kube, identity.pod_name(task.key), "2")
    cluster.cluster.wait_for(lambda: second.snapshot()["running"] == 2)
    assert second.free_slots() == 0

    waiting = make_task("own")
    second.submit(waiting)
    loop_passes(second)
    assert second.snapshot()["queued"] == 1 and cluster.cluster.pod(NAMESPACE, identity.pod_name(waiting.key)) is None
    cluster.cluster.complete(NAMESPACE, identity.pod_name(held[0].key))  # one slot frees: its own task starts
    cluster.cluster.wait_for(lambda: {r.key for r in second.sink.recorded} == {held[0].key, waiting.key})
    cluster.cluster.complete(NAMESPACE, identity.pod_name(held[1].key))
    assert second.wait_idle(WAIT)
    assert len(second.sink.recorded) == 3 and all(r.state == SUCCESS for r in second.sink.recorded)


def test_only_the_keeper_keeps_placeholders_against_the_namespaces_demand(cluster, make_engine):
    def engine(instance: str, share: WarmShare):
        made = make_engine(make_config(scheduler_instance_id=instance, worker_pods_min=3), start=False)
        made.share_warm_capacity(share)  # before it starts: a non-keeper never creates one
        made.start()
        return made

    keeper = engine("1", WarmShare(keeper=True))
    other = engine("2", WarmShare(keeper=False))
    cluster.cluster.wait_for(lambda: len(pods_of(cluster, "1", placeholders=True)) == 3)
    loop_passes(other)
    assert pods_of(cluster, "2", placeholders=True) == []
    assert (keeper.metrics.placeholder_keeper._value.get(), other.metrics.placeholder_keeper._value.get()) == (1, 0)

    keeper.share_warm_capacity(WarmShare(keeper=True, wanted_elsewhere=2))  # the other scheduler's two tasks
    cluster.cluster.wait_for(lambda: len(pods_of(cluster, "1", placeholders=True)) == 1)

    keeper.share_warm_capacity(WarmShare(keeper=False))  # the keeper's role moves (e.g. it lost its lease)
    other.share_warm_capacity(WarmShare(keeper=True))
    cluster.cluster.wait_for(
        lambda: pods_of(cluster, "1", placeholders=True) == [] and len(pods_of(cluster, "2", placeholders=True)) == 3
    )
    created = [name for (_, name) in cluster.stats.creates() if "-placeholder-" in name]
    assert sorted(created) == sorted(
        [*(f"1-placeholder-{i}" for i in range(3)), *(f"2-placeholder-{i}" for i in range(3))]
    )
