"""Harness for engine tests: a fake cluster with the platform's node pools and an engine on it."""

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

ENGINE_CFG = """\
[core]
executor = airflow_k8s.executor.airflow.KubernetesPlatformExecutor
[kubernetes]
namespace = airflow
worker_container_image = apache/airflow:2.8.0
worker_service_account_name = airflow-worker
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


@pytest.fixture
def cluster() -> Iterator[FakeKubeServer]:
    server = FakeKubeServer(POOLS, bookmark_interval=0.2).start()
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
    """``make_engine(config=..., sink=..., intake=...)`` -> a started engine, stopped at teardown."""
    engines: list[Engine] = []

    def factory(
        config: ExecutorConfig | None = None,
        *,
        sink: ResultSink | None = None,
        intake: Callable[[], list[Task]] | None = None,
        options: EngineOptions = FAST,
        start: bool = True,
    ) -> Engine:
        engine = Engine(
            config or make_config(), templates, kube, sink=sink or MemorySink(), intake=intake, options=options
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
