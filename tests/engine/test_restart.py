"""Restart safety: a scheduler stopped or SIGKILLed at any point loses no task and runs none twice."""

from __future__ import annotations

import json
import random
import signal
import time
from pathlib import Path

import pytest

from airflow_k8s.executor.contract.config_render import render_config
from airflow_k8s.executor.tasks import identity
from airflow_k8s.executor.tasks.results import SUCCESS, MemorySink
from airflow_k8s.executor.tasks.spool import Spool
from tests.engine.conftest import NAMESPACE, SMALL_RESOURCES, WAIT, behave, make_config, make_task
from tests.fakekube.cluster import wait_for
from tests.scheduler_process import log_events, start_scheduler


def assert_exactly_once(cluster, spool: Spool, tasks) -> None:
    results = {r.key: r for r in spool.read_results()}
    assert set(results) == {t.key for t in tasks}, "a task was lost"
    assert all(r.state == SUCCESS for r in results.values()), [r for r in results.values() if r.state != SUCCESS]
    assert cluster.stats.duplicate_creates() == {}, "a task was launched twice"
    assert all(cluster.stats.creates()[(NAMESPACE, identity.pod_name(t.key))] == 1 for t in tasks)
    assert list(spool.incoming.glob("*.json")) == []


def test_a_restarted_scheduler_adopts_pending_pods_instead_of_recreating_them(cluster, make_engine, tmp_path):
    spool = Spool(tmp_path / "spool")
    tasks = [make_task(f"t{i}") for i in range(10)]
    for task in tasks:
        spool.submit(task)
    cluster.cluster.pause()  # pods are created but never progress
    first = make_engine(sink=spool, intake=spool.scan)
    cluster.cluster.wait_for(lambda: len(cluster.stats.creates()) == 10)
    first.stop()
    cluster.cluster.resume()
    second = make_engine(sink=Spool(tmp_path / "spool"), intake=Spool(tmp_path / "spool").scan)
    assert second.wait_idle(WAIT)
    assert_exactly_once(cluster, spool, tasks)


def test_pods_finished_while_no_scheduler_ran_are_recorded_once(cluster, make_engine, tmp_path):
    spool = Spool(tmp_path / "spool")
    tasks = [make_task(f"t{i}", annotations=behave("succeed", run_seconds=0.2)) for i in range(5)]
    for task in tasks:
        spool.submit(task)
    first = make_engine(sink=spool, intake=spool.scan)
    cluster.cluster.wait_for(lambda: len(cluster.stats.creates()) == 5)
    first.stop()
    cluster.cluster.wait_for(lambda: all(r.phase == "Succeeded" for r in cluster.stats.pods()))
    second_spool = Spool(tmp_path / "spool")
    second = make_engine(sink=second_spool, intake=second_spool.scan)
    assert second.wait_idle(WAIT)
    assert_exactly_once(cluster, spool, tasks)
    assert cluster.cluster.pods(NAMESPACE) == []  # and they were cleaned up


def test_a_result_recorded_before_the_crash_is_not_run_again(cluster, make_engine, tmp_path):
    spool = Spool(tmp_path / "spool")
    task = make_task("done-before")
    spool.submit(task)
    first = make_engine(sink=spool, intake=spool.scan)
    assert first.wait_idle(WAIT)
    first.stop()
    spool.submit(task)  # a submitter retries after the crash
    second_spool = Spool(tmp_path / "spool")
    second = make_engine(sink=second_spool, intake=second_spool.scan)
    assert second.wait_idle(WAIT)
    assert_exactly_once(cluster, spool, [task])


def test_pods_of_an_earlier_scheduler_without_task_files_are_adopted(cluster, make_engine, kube, templates):
    from airflow_k8s.executor.pods.podfactory import build_pod

    tasks = [make_task(f"orphan{i}", annotations=behave("succeed", run_seconds=0.3)) for i in range(3)]
    for task in tasks:
        kube.create_pod(NAMESPACE, build_pod(task, make_config(), templates))
    sink = MemorySink()
    engine = make_engine(sink=sink)
    assert engine.wait_idle(WAIT)
    assert {r.key for r in sink.recorded} == {t.key for t in tasks}
    assert len(sink.recorded) == 3


def test_foreign_pods_in_the_namespace_are_left_alone(cluster, make_engine, kube):
    foreign = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "someone-elses", "labels": {"app": "other"}},
        "spec": {"containers": [{"name": "c", "image": "busybox", "resources": SMALL_RESOURCES}]},
    }
    cluster.admission.enforce_pod_security(False)  # a hand-made, non-hardened pod
    kube.create_pod(NAMESPACE, foreign)
    cluster.admission.enforce_pod_security()
    engine = make_engine()
    engine.submit(make_task("mine"))
    assert engine.wait_idle(WAIT)
    assert cluster.cluster.pod(NAMESPACE, "someone-elses") is not None


# -- SIGKILL: a real scheduler process, killed at random moments ------------------------------------
def _kill_and_restart(cluster, tmp_path: Path, *, tasks: int, kills: int, seed: int) -> None:
    rng = random.Random(seed)
    cfg = tmp_path / "airflow.cfg"
    cfg.write_text(render_config(make_config(worker_pods_max=8, worker_pods_creation_qps=30.0)))
    spool = Spool(tmp_path / "spool")
    submitted = [
        make_task(f"t{i}", annotations=behave("succeed", run_seconds=rng.choice([0.05, 0.2, 0.5])))
        for i in range(tasks)
    ]
    for task in submitted:
        spool.submit(task)
    log = tmp_path / "scheduler.log"
    for _ in range(kills):
        process = start_scheduler(cfg, spool.root, log, api_url=cluster.url)
        time.sleep(rng.uniform(0.8, 2.5))  # a random moment to kill at: the point of the test, not a wait
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    def starts() -> int:  # a scheduler killed early may never have logged its start
        return sum(e.get("event") == "started" for e in log_events(log))

    earlier = starts()
    process = start_scheduler(cfg, spool.root, log, api_url=cluster.url)

    def finished() -> bool:
        """The last scheduler is up (its SIGTERM handler installed), every task has its result, no task
        file is left (a file whose result a killed scheduler wrote is removed by the next scan) and every
        pod is cleaned up."""
        assert process.poll() is None, log.read_text()[-3000:]
        if starts() <= earlier:
            return False
        pods = [p for p in cluster.cluster.pods(NAMESPACE) if identity.LABEL_EXECUTOR in p["metadata"]["labels"]]
        return len(list(spool.results.glob("*.json"))) == tasks and not list(spool.incoming.glob("*.json")) and not pods

    try:
        wait_for(finished, 300, interval=0.1, message="the last scheduler did not finish every task")
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(WAIT) == 0, log.read_text()[-3000:]
    assert_exactly_once(cluster, spool, submitted)
    assert not list(spool.rejected.glob("*")), json.dumps([p.name for p in spool.rejected.glob("*")])


def test_a_scheduler_killed_repeatedly_loses_nothing_and_duplicates_nothing(cluster, tmp_path):
    _kill_and_restart(cluster, tmp_path, tasks=40, kills=3, seed=1)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(5))
def test_many_random_kills(cluster, tmp_path, seed):
    _kill_and_restart(cluster, tmp_path, tasks=150, kills=6, seed=seed)


def test_a_restart_does_not_reset_the_pending_timeout_of_adopted_pods(cluster, make_engine, kube, templates):
    from datetime import UTC, datetime, timedelta

    from airflow_k8s.executor.pods.podfactory import build_pod

    task = make_task("stuck", node_selector={"node-type": "gpu"})  # without the GPU toleration
    kube.create_pod(NAMESPACE, build_pod(task, make_config(), templates))
    name = identity.pod_name(task.key)
    # The pod has been pending for ten minutes already (as if the previous scheduler ran that long).
    old = (datetime.now(UTC) - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def backdate(pod: dict) -> dict:
        pod["metadata"]["creationTimestamp"] = old
        return pod

    cluster.store.update("pods", NAMESPACE, name, backdate)
    sink = MemorySink()
    engine = make_engine(make_config(max_pod_pending_timeout=300), sink=sink)
    assert engine.wait_idle(WAIT)  # far sooner than a fresh 300 s
    assert sink.results[task.key].reason == "PendingTimeout"
