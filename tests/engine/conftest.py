"""Harness for engine tests: a fake cluster with the platform's node pools and an engine on it.

The fake runs its ``strict`` preset (every behaviour of a real kube-apiserver its kind defaults
hide: graceful deletion, quota charged at create and released late, 409 Conflicts on the quota,
rare apiserver-shaped bookmarks, time-bounded watch history, server-side defaults, PriorityClass
admission), with one timing shortened, see :data:`STRICT_KNOBS`, and the namespace carries a
ResourceQuota like the platform's (:data:`PLATFORM_QUOTA`), so every create is charged and
released the real way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_k8s.executor.contract.config import ExecutorConfig
from airflow_k8s.executor.contract.config_loader import parse_config
from airflow_k8s.executor.engine.core import Engine, EngineOptions
from airflow_k8s.executor.kube.client import KubeClient
from airflow_k8s.executor.kube.retry import RetryPolicy
from airflow_k8s.executor.pods.templates import TemplateStore
from airflow_k8s.executor.tasks.results import MemorySink, ResultSink
from airflow_k8s.executor.tasks.task import Task
from tests.fakekube import FakeKubeServer, NodeSpec, Taint
from tests.fakekube.cluster import wait_for

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "airflow"
WAIT = 60.0
"""Deadline of every wait for the engine: generous, so a loaded 2-core machine never fails a passing
test; a condition met sooner returns at once.  Assertions are on outcomes, never on elapsed time."""

# The node pools infra provisions, as the fake cluster's nodes (labels and taints the templates target).
POOLS = (
    NodeSpec(
        "worker-1", cpu="16", memory="64Gi", labels={"node-type": "worker"}, taints=(Taint("dedicated", "worker"),)
    ),
    NodeSpec(
        "compute-1",
        cpu="32",
        memory="128Gi",
        labels={"node-type": "compute-optimized"},
        taints=(Taint("workload", "heavy"),),
    ),
    NodeSpec("gpu-1", cpu="8", memory="64Gi", gpus=2, labels={"node-type": "gpu"}, taints=(Taint("nvidia.com/gpu"),)),
)

# The platform's PriorityClasses (infra renders <platformName>-task / -placeholder); the strict fake refuses
# pods naming a class it does not know, as the Priority admission plugin does.
PRIORITY_CLASSES = {"airflow-task": 0, "airflow-placeholder": -10}  # the platform defaults
PREEMPTION_POLICIES = {"airflow-placeholder": "Never"}
# Strict, with the kubelet's graceful-deletion delay cut from 2 s to 0.5 s: the order of events
# (MODIFIED with deletionTimestamp, then DELETED) is the same, and a suite that deletes every
# finished pod spends far less time waiting for it.  The realistic 2 s runs in
# test_lifecycle.py::test_a_pod_deleted_by_someone_else_runs_on_until_it_is_gone_then_fails_its_task.
STRICT_KNOBS: dict[str, Any] = {"deletion_delay": 0.5}
# What the platform's render-time check asks of the namespace quota for ENGINE_CFG: worker_pods_max (16)
# pods of the largest tier (gpu: requests 2 CPU/8Gi/1 GPU, limits 4 CPU/16Gi), placeholders and the
# scheduler.  Generous in steady state, yet a burst of short tasks can still fill "pods" for the
# quota controller's release delay: the engine must ride that out.
PLATFORM_QUOTA = {
    "pods": "40",
    "requests.cpu": "40",
    "requests.memory": "160Gi",
    "limits.cpu": "80",
    "limits.memory": "320Gi",
    "requests.nvidia.com/gpu": "16",
}

ENGINE_CFG = """\
[core]
executor = airflow_k8s.executor.airflow.KubernetesPlatformExecutor
[kubernetes]
namespace = airflow
worker_container_image = apache/airflow:2.8.0
worker_service_account_name = airflow-worker
worker_priority_class = airflow-task
delete_worker_pods = True
delete_worker_pods_on_failure = False
pod_creation_timeout = 20
max_pod_pending_timeout = 30
worker_pods_max = 16
worker_pods_creation_qps = 500
worker_pods_creation_burst = 100
worker_pods_creation_workers = 8
watch_timeout_seconds = 5
kube_request_timeout = 5
# test images that the fake kubelet fails to pull
task_allowed_registries = registry.example
"""

FAST = EngineOptions(
    tick=0.01,
    timeout_check_interval=0.05,
    placeholder_interval=0.05,
    placeholder_backoff=0.5,
    node_refresh_interval=0.2,
    intake_interval=0.05,
    watch_max_backoff=0.3,
    retry=RetryPolicy(base_delay=0.02, max_delay=0.3, max_retry_after=2.0),
)


def make_config(**changes: Any) -> ExecutorConfig:
    return dataclasses.replace(parse_config(ENGINE_CFG, source="engine-test.cfg", environ={}), **changes)


def make_task(task_id: str = "t", *, run_id: str = "run1", try_number: int = 1, **kubernetes_config: Any) -> Task:
    data: dict[str, Any] = {
        "dag_id": "dag", "task_id": task_id, "run_id": run_id, "try_number": try_number, "command": ["true"]
    }  # fmt: skip
    if kubernetes_config:
        data["kubernetes_config"] = kubernetes_config
    return Task.from_dict(data)


def behave(outcome: str = "succeed", run_seconds: float | None = None, **more: str) -> dict[str, str]:
    """Annotations that script the fake kubelet for a task's pod."""
    notes = {"fakekube/outcome": outcome, **{f"fakekube/{k.replace('_', '-')}": v for k, v in more.items()}}
    if run_seconds is not None:
        notes["fakekube/run-seconds"] = str(run_seconds)
    return notes


# Resources for hand-made pods: the namespace quota refuses pods without them ("must specify ..."),
# and the fake has no LimitRange to default them.
SMALL_RESOURCES = {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "100m", "memory": "64Mi"}}


def put_quota(server: FakeKubeServer, namespace: str, hard: dict[str, str], name: str = "compute") -> dict[str, Any]:
    """Create (or replace the limits of) a ResourceQuota through the API, as the platform would."""
    client = KubeClient.for_host(server.url)
    path = f"/api/v1/namespaces/{namespace}/resourcequotas"
    body = {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": name}, "spec": {"hard": dict(hard)}}
    try:
        existing = server.store.get("resourcequotas", namespace, name)
        if existing is None:
            return dict(client.request("POST", path, body=body))
        body["metadata"]["resourceVersion"] = existing.obj["metadata"]["resourceVersion"]
        return dict(client.request("PUT", f"{path}/{name}", body=body))
    finally:
        client.close()


@pytest.fixture
def cluster() -> Iterator[FakeKubeServer]:
    server = FakeKubeServer(POOLS, strict=True, **STRICT_KNOBS)
    server.cluster.set_priorities(PRIORITY_CLASSES, PREEMPTION_POLICIES)
    server.start()
    put_quota(server, NAMESPACE, PLATFORM_QUOTA)
    # Every pod the engine creates (tasks and placeholders) must pass "restricted" admission.
    server.admission.enforce_pod_security()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def kube(cluster: FakeKubeServer) -> Iterator[KubeClient]:
    client = KubeClient.for_host(cluster.url, pool_size=24, request_timeout=5)
    yield client
    client.close()


@pytest.fixture
def templates() -> TemplateStore:
    return TemplateStore(ROOT / "pod_templates")


EngineFactory = Callable[..., Engine]


@pytest.fixture
def make_engine(kube: KubeClient, templates: TemplateStore) -> Iterator[EngineFactory]:
    """``make_engine(config=..., sink=..., intake=..., **more)`` -> a started engine, stopped at teardown.

    ``more`` goes to :class:`Engine` as it is (``on_running``, ``on_released``...)."""
    engines: list[Engine] = []

    def factory(
        config: ExecutorConfig | None = None,
        *,
        sink: ResultSink | None = None,
        intake: Callable[[], list[Task]] | None = None,
        options: EngineOptions = FAST,
        start: bool = True,
        **more: Any,
    ) -> Engine:
        engine = Engine(
            config or make_config(), templates, kube, sink=sink or MemorySink(), intake=intake, options=options, **more
        )
        engines.append(engine)
        if start:
            engine.start()
        return engine

    yield factory
    for engine in engines:
        engine.stop(timeout=2)


def loop_passes(engine: Engine, passes: int = 30) -> None:
    """Wait until the engine's loop has run ``passes`` more times (each pass dispatches, checks
    timeouts and reconciles placeholders when due): a window defined by the engine's progress, not
    the wall clock, for checks that something does *not* happen."""
    seen = {engine._heartbeat}

    def advanced() -> bool:
        seen.add(engine._heartbeat)
        return len(seen) > passes

    wait_for(advanced, WAIT, interval=0.001, message=f"the engine loop did not run {passes} times")


def results_by_key(sink: MemorySink) -> dict[Any, Any]:
    return {result.key: result for result in sink.recorded}
