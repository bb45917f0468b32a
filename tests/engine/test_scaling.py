"""Scaling between N_min and N_max, creation rate and concurrency, and automatic tiers."""

from __future__ import annotations

import itertools
import threading

from airflow_k8s.executor.tasks import identity
from airflow_k8s.executor.tasks.results import SUCCESS, MemorySink
from tests.engine.conftest import NAMESPACE, POOLS, WAIT, behave, loop_passes, make_config, make_task
from tests.fakekube import NodeSpec


def task_pods(cluster) -> list[dict]:
    return [
        p
        for p in cluster.cluster.pods(NAMESPACE)
        if identity.LABEL_PLACEHOLDER not in p["metadata"].get("labels", {})
        and p["status"].get("phase") not in ("Succeeded", "Failed")
    ]


def placeholder_pods(cluster) -> list[dict]:
    return [p for p in cluster.cluster.pods(NAMESPACE) if identity.LABEL_PLACEHOLDER in p["metadata"].get("labels", {})]


def test_no_more_than_n_max_task_pods_run_at_once(cluster, make_engine):
    sink = MemorySink()
    engine = make_engine(make_config(worker_pods_max=3), sink=sink)
    peak, stop = [0], threading.Event()

    def sample() -> None:  # an invariant monitor: it can miss nothing that would pass wrongly
        while not stop.wait(0.005):
            peak[0] = max(peak[0], len(task_pods(cluster)))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    cluster.cluster.pause()  # the pods exist but do not progress: N_max is reached deterministically
    tasks = [make_task(f"t{i}", annotations=behave("succeed", run_seconds=0.15)) for i in range(12)]
    for task in tasks:
        engine.submit(task)
    try:
        cluster.cluster.wait_for(lambda: len(task_pods(cluster)) == 3 and engine.snapshot()["queued"] == 9)
        loop_passes(engine)
        assert len(task_pods(cluster)) == 3
        cluster.cluster.resume()
        assert engine.wait_idle(WAIT)
    finally:
        stop.set()
        sampler.join()
    assert len(sink.recorded) == 12 and all(r.state == SUCCESS for r in sink.recorded)
    assert peak[0] == 3


def test_creations_respect_the_configured_rate(cluster, make_engine):
    engine = make_engine(make_config(worker_pods_creation_qps=10.0, worker_pods_creation_burst=1))
    for i in range(11):
        engine.submit(make_task(f"r{i}"))
    assert engine.wait_idle(WAIT)
    created = sorted(record.created_at for record in cluster.stats.pods())
    assert len(created) == 11
    assert created[-1] - created[0] >= 0.9  # 10 intervals at 10/s, give or take the clock


def test_creates_are_concurrent_not_one_per_loop(cluster, make_engine, kube):
    """The first 8 creates meet at a barrier: they all pass only if 8 are in flight at once."""
    barrier, create = threading.Barrier(8, timeout=WAIT), kube.create_pod
    calls = itertools.count()

    def create_together(namespace: str, pod: dict, **options: bool) -> dict:
        if next(calls) < 8:
            barrier.wait()  # BrokenBarrierError (a failed task) unless 8 creates run concurrently
        return create(namespace, pod, **options)

    kube.create_pod = create_together  # type: ignore[method-assign]
    sink = MemorySink()
    engine = make_engine(make_config(worker_pods_creation_workers=8), sink=sink)
    for i in range(16):
        engine.submit(make_task(f"c{i}"))
    assert engine.wait_idle(WAIT)
    assert len(sink.recorded) == 16 and all(r.state == SUCCESS for r in sink.recorded)
    assert not barrier.broken


def test_placeholders_keep_n_min_warm_and_make_way_for_tasks(cluster, make_engine):
    config = make_config(worker_pods_min=3, worker_pods_max=5, placeholder_priority_class="airflow-placeholder")
    engine = make_engine(config)
    cluster.cluster.wait_for(lambda: len(placeholder_pods(cluster)) == 3)
    pod = placeholder_pods(cluster)[0]
    assert pod["spec"]["priorityClassName"] == "airflow-placeholder"
    assert pod["spec"]["containers"][0]["image"] == config.placeholder_image
    assert pod["spec"]["nodeSelector"] == {"node-type": "worker"}  # warms the pool tasks go to
    tasks = [make_task(f"p{i}", annotations=behave("hang")) for i in range(2)]
    for task in tasks:
        engine.submit(task)
    cluster.cluster.wait_for(lambda: len(placeholder_pods(cluster)) == 1)  # N_min - P(t)
    # P(t) counts queued tasks too, so the placeholders may make way before the task pods exist.
    cluster.cluster.wait_for(lambda: all(cluster.cluster.pod(NAMESPACE, identity.pod_name(t.key)) for t in tasks))
    for task in tasks:
        cluster.cluster.complete(NAMESPACE, identity.pod_name(task.key), "succeed")
    cluster.cluster.wait_for(lambda: len(placeholder_pods(cluster)) == 3)


def test_placeholders_never_push_the_total_above_n_max(cluster, make_engine):
    engine = make_engine(make_config(worker_pods_min=4, worker_pods_max=2))
    cluster.cluster.wait_for(lambda: len(placeholder_pods(cluster)) == 2)
    loop_passes(engine)
    assert len(placeholder_pods(cluster)) == 2
    assert engine.snapshot()["placeholders"] == 2


def test_restarted_schedulers_reuse_existing_placeholders(cluster, make_engine):
    first = make_engine(make_config(worker_pods_min=2))
    cluster.cluster.wait_for(lambda: len(placeholder_pods(cluster)) == 2)
    first.stop()
    second = make_engine(make_config(worker_pods_min=2))
    cluster.cluster.wait_for(second.synced.is_set)
    loop_passes(second)
    assert len(placeholder_pods(cluster)) == 2
    assert sum(cluster.stats.creates().values()) == 2


def run_auto_tier_task(cluster, make_engine, *, wait_for_nodes: bool = True):
    """Run one ``tier: auto`` task once the engine knows the nodes; its result."""
    sink = MemorySink()
    engine = make_engine(sink=sink)
    if wait_for_nodes:
        cluster.cluster.wait_for(lambda: engine.nodes is not None)
    task = make_task("adaptive", tier="auto")
    engine.submit(task)
    assert engine.wait_idle(WAIT)
    return sink.results[task.key]


def test_auto_tier_picks_heavy_when_the_compute_pool_has_room(cluster, make_engine):
    result = run_auto_tier_task(cluster, make_engine)
    assert (result.tier, result.node) == ("heavy", "compute-1")


def test_auto_tier_falls_back_when_the_compute_pool_is_full(cluster, make_engine):
    worker, compute = POOLS[0], POOLS[1]
    cluster.cluster.set_nodes(
        [worker, NodeSpec(compute.name, "1", "2Gi", labels=compute.labels, taints=compute.taints)]
    )
    result = run_auto_tier_task(cluster, make_engine)
    assert (result.tier, result.node) == ("medium", "worker-1")


def test_auto_tier_without_node_access_uses_the_default_tier(cluster, make_engine):
    cluster.faults.fail_next(method="GET", path=r"/nodes$", status=403, times=None)
    assert run_auto_tier_task(cluster, make_engine, wait_for_nodes=False).tier == "medium"
