"""Several Airflow schedulers, each running this executor, in one namespace (Airflow 3 runs them active-active).

Each executor is a scheduler job of its own (``job_id``); ``FakePeers`` stands in for the two questions the
executor asks the database about the others (which scheduler jobs are alive, what they want).  The end-to-end
tier (``tests/airflow/e2e/test_scheduler_ha.py``) runs the same with real schedulers and PostgreSQL.
"""

from __future__ import annotations

import pytest
from airflow.utils.state import TaskInstanceState

from airflow_k8s.executor.airflow.workloads import task_key
from airflow_k8s.executor.tasks import identity
from tests.airflow.conftest import NAMESPACE, FakePeers, events_until, run, workload
from tests.airflow.test_executor import OrphanedTI, annotations, states

RUNNING, SUCCESS = TaskInstanceState.RUNNING, TaskInstanceState.SUCCESS


@pytest.fixture
def scheduler(make_executor):
    """``scheduler(job_id, peers, **settings)`` -> a started executor that asks ``peers`` about the others."""

    def factory(job_id: int, peers: FakePeers, **changes):
        executor = make_executor(job_id=job_id, start=False, **changes)
        executor.peers = peers
        executor.peers_refresh = 0.05
        executor.start()
        executor.heartbeat()  # the first sync reads its share
        return executor

    return factory


def placeholders(cluster, job_id: int | None = None) -> list[str]:
    names = []
    for pod in cluster.cluster.pods(NAMESPACE):
        labels = pod["metadata"].get("labels") or {}
        ours = job_id is None or labels.get(identity.LABEL_INSTANCE) == str(job_id)
        if identity.LABEL_PLACEHOLDER in labels and ours and "deletionTimestamp" not in pod["metadata"]:
            names.append(pod["metadata"]["name"])
    return sorted(names)


def keeps(executor) -> float:
    return executor.engine.metrics.placeholder_keeper._value.get()


def beat_until(cluster, condition, *executors) -> None:
    """Run the executors' scheduler loops until ``condition()``."""

    def step() -> bool:
        for executor in executors:
            executor.heartbeat()
        return bool(condition())

    cluster.cluster.wait_for(step)


def test_n_min_is_kept_once_for_the_namespace_by_the_oldest_live_scheduler(cluster, scheduler):
    peers = FakePeers(live=[1, 2])
    oldest, newer = scheduler(1, peers, worker_pods_min=2), scheduler(2, peers, worker_pods_min=2)
    beat_until(cluster, lambda: placeholders(cluster) == ["1-placeholder-0", "1-placeholder-1"], oldest, newer)
    beat_until(cluster, lambda: newer.engine.synced.is_set() and keeps(newer) == 0, newer)
    assert (keeps(oldest), keeps(newer)) == (1, 0)
    assert [job for job, _ in peers.asked] == [1] * len(peers.asked)  # only the keeper asks what others want
    assert not [name for (_, name) in cluster.stats.creates() if name.startswith("2-placeholder")]


def test_the_keeper_counts_what_the_other_schedulers_want(cluster, scheduler):
    peers = FakePeers(live=[1, 2], elsewhere=2)
    keeper = scheduler(1, peers, worker_pods_min=3)
    beat_until(cluster, lambda: placeholders(cluster, 1) == ["1-placeholder-0"], keeper)
    peers.elsewhere = 3
    beat_until(cluster, lambda: placeholders(cluster, 1) == [], keeper)
    _, match = peers.asked[-1]
    assert "airflow_k8s.executor.airflow.KubernetesPlatformExecutor" in match.names and match.default


def test_when_the_keeper_dies_the_next_oldest_removes_its_placeholders_and_keeps_n_min(cluster, scheduler):
    peers = FakePeers(live=[1, 2])
    oldest, newer = scheduler(1, peers, worker_pods_min=2), scheduler(2, peers, worker_pods_min=2)
    beat_until(cluster, lambda: len(placeholders(cluster, 1)) == 2, oldest, newer)
    oldest.terminate()  # SIGKILL: its placeholders stay behind, and Airflow never offers them for adoption
    peers.live = [2]  # its job stopped heartbeating
    beat_until(cluster, lambda: placeholders(cluster) == ["2-placeholder-0", "2-placeholder-1"], newer)
    assert keeps(newer) == 1


def test_a_clean_stop_deletes_the_schedulers_placeholders(cluster, scheduler):
    keeper = scheduler(1, FakePeers(live=[1]), worker_pods_min=2)
    beat_until(cluster, lambda: len(placeholders(cluster, 1)) == 2, keeper)
    keeper.end()
    assert placeholders(cluster) == []


def test_a_task_another_scheduler_adopted_is_handed_over_without_an_event(cluster, scheduler):
    """Airflow took scheduler 1 for dead while it was not (a long pause): scheduler 2 adopted its task."""
    peers = FakePeers(live=[1, 2])
    first, second = scheduler(1, peers), scheduler(2, peers)
    item = workload("long", executor_config=annotations(outcome="hang"))
    run(first, item)
    events_until(first, lambda e: RUNNING in states(e, item))
    assert second.try_adopt_task_instances([OrphanedTI(item, queued_by_job_id=1)]) == []
    beat_until(cluster, lambda: item.ti.key not in first.running, first)
    name = identity.pod_name(task_key(item.ti))
    assert cluster.cluster.pod(NAMESPACE, name)["status"]["phase"] == "Running"  # not deleted by the first

    cluster.cluster.complete(NAMESPACE, name)
    events = events_until(second, lambda e: SUCCESS in states(e, item))
    assert states(events, item)[-1] == SUCCESS and states(events, item).count(SUCCESS) == 1
    first.heartbeat()
    assert item.ti.key not in first.get_event_buffer()  # the first reported nothing: no failure, no success
    assert first.engine.metrics.handed_over._value.get() == 1
    assert cluster.stats.creates()[(NAMESPACE, name)] == 1


def test_a_survivor_runs_its_own_tasks_and_adopts_a_dead_schedulers_without_a_second_pod(cluster, scheduler):
    peers = FakePeers(live=[1, 2])
    first, second = scheduler(1, peers, worker_pods_max=4), scheduler(2, peers, worker_pods_max=4)
    theirs = [workload(f"theirs{i}", executor_config=annotations(outcome="hang")) for i in range(2)]
    ours = [workload(f"ours{i}", executor_config=annotations(outcome="hang")) for i in range(2)]
    run(first, *theirs)
    run(second, *ours)
    events_until(first, lambda e: all(RUNNING in states(e, item) for item in theirs))
    events_until(second, lambda e: all(RUNNING in states(e, item) for item in ours))
    assert second.engine.free_slots() == 2

    first.terminate()  # SIGKILL
    peers.live = [2]
    orphans = [OrphanedTI(item, queued_by_job_id=1) for item in theirs]
    assert second.try_adopt_task_instances(orphans) == []
    beat_until(cluster, lambda: second.engine.snapshot()["running"] == 4, second)
    assert second.engine.free_slots() == 0  # adopted pods count against the adopter's worker_pods_max
    for item in [*theirs, *ours]:
        cluster.cluster.complete(NAMESPACE, identity.pod_name(task_key(item.ti)))
    events = events_until(second, lambda e: all(SUCCESS in states(e, item) for item in [*theirs, *ours]))
    assert {item.ti.key: states(events, item)[-1] for item in [*theirs, *ours]} == {
        item.ti.key: SUCCESS for item in [*theirs, *ours]
    }
    assert all(states(events, item).count(SUCCESS) == 1 for item in [*theirs, *ours])
    assert set(cluster.stats.creates().values()) == {1}
