"""The Airflow tier: the executor inside a real Airflow 3.3.2 (``make test-airflow``, in ``.venv-airflow``).

Airflow reads ``$AIRFLOW_HOME/airflow.cfg`` once, at import, so the home is made here, before any
test module imports Airflow.  The executor talks to the in-process fake API server; the metadata
database is only needed by the end-to-end test (which starts PostgreSQL itself), so adapter tests
pass a :class:`FakeInstances` standing in for the one batched query the executor makes.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import socket
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

_HOME = Path(tempfile.mkdtemp(prefix="airflow-home-"))
(_HOME / "airflow.cfg").write_text(
    "[core]\nload_examples = False\nunit_test_mode = True\n"
    "[api_auth]\njwt_secret = test-only-signing-secret-of-enough-length\n"
    "[database]\nsql_alchemy_conn = sqlite:///" + str(_HOME / "airflow.db") + "\n"
)
os.environ["AIRFLOW_HOME"] = str(_HOME)
os.environ["AIRFLOW_CONFIG"] = str(_HOME / "airflow.cfg")

from airflow.executors.workloads import ExecuteTask  # noqa: E402
from airflow.executors.workloads.base import BundleInfo  # noqa: E402
from airflow.executors.workloads.task import TaskInstanceDTO  # noqa: E402

from airflow_k8s.executor.airflow.executor import KubernetesPlatformExecutor  # noqa: E402
from airflow_k8s.executor.airflow.instances import QUEUED, InstanceState  # noqa: E402
from airflow_k8s.executor.airflow.peers import ExecutorMatch  # noqa: E402
from airflow_k8s.executor.contract.config import ExecutorConfig  # noqa: E402
from airflow_k8s.executor.engine.core import EngineOptions  # noqa: E402
from airflow_k8s.executor.kube.retry import RetryPolicy  # noqa: E402
from tests.conftest import ROOT, write_kubeconfig  # noqa: E402
from tests.engine.conftest import POOLS  # noqa: E402
from tests.fakekube import FakeKubeServer  # noqa: E402

NAMESPACE = "airflow"
API_URL = "http://airflow-api.airflow.svc.cluster.local:8080/execution/"
JOB_ID = 7
FAST = EngineOptions(
    tick=0.01,
    timeout_check_interval=0.05,
    placeholder_interval=0.05,
    watch_max_backoff=0.3,
    retry=RetryPolicy(base_delay=0.02, max_delay=0.3, max_retry_after=2.0),
)


class FakeInstances:
    """Task instance rows as the scheduler's database would hold them; counts the batched queries."""

    def __init__(self) -> None:
        self.rows: dict[str, InstanceState] = {}
        self.calls: list[list[str]] = []

    def queued(self, workload: ExecuteTask, job_id: int = JOB_ID) -> None:
        self.rows[str(workload.ti.id)] = InstanceState(QUEUED, workload.ti.try_number, job_id)

    def current(self, ids: Sequence[str]) -> dict[str, InstanceState]:
        self.calls.append(list(ids))
        return {i: self.rows[i] for i in ids if i in self.rows}


class FakePeers:
    """The other schedulers as the database would describe them: the scheduler jobs alive, what they want."""

    def __init__(self, live: Sequence[int], elsewhere: int = 0) -> None:
        self.live, self.elsewhere = list(live), elsewhere
        self.asked: list[tuple[int, ExecutorMatch]] = []

    def live_schedulers(self) -> list[int]:
        return sorted(self.live)

    def wanted_elsewhere(self, own_job: int, executor: ExecutorMatch) -> int:
        self.asked.append((own_job, executor))
        return self.elsewhere


def token(expires_in: float = 600.0) -> str:
    """A JWT-shaped token with an ``exp`` claim (the executor reads it; the API server would verify it)."""

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    expiry = int((datetime.now(UTC) + timedelta(seconds=expires_in)).timestamp())
    return f"{part({'alg': 'HS512'})}.{part({'sub': 'x', 'exp': expiry})}.c2ln"


def workload(task_id: str = "t", *, try_number: int = 1, executor_config: Any = None, expires_in: float = 600.0,
             dag_id: str = "dag", run_id: str = "manual__1", map_index: int = -1) -> ExecuteTask:  # fmt: skip
    ti = TaskInstanceDTO(
        id=uuid.uuid4(), task_id=task_id, dag_id=dag_id, run_id=run_id, try_number=try_number, map_index=map_index,
        dag_version_id=uuid.uuid4(), pool_slots=1, priority_weight=1, executor_config=executor_config,
    )  # fmt: skip
    return ExecuteTask(
        ti=ti, dag_rel_path=Path("dag.py"), bundle_info=BundleInfo(name="dags-folder"), token=token(expires_in),
        log_path="dag_id=dag/log.log",
    )  # fmt: skip


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def cluster() -> Iterator[FakeKubeServer]:
    server = FakeKubeServer(POOLS).start()
    server.admission.enforce_pod_security()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def settings(cluster: FakeKubeServer, tmp_path: Path) -> ExecutorConfig:
    return ExecutorConfig(
        namespace=NAMESPACE,
        in_cluster=False,
        config_file=write_kubeconfig(tmp_path / "kubeconfig", cluster.url),
        pod_template_dir=str(ROOT / "pod_templates"),
        pod_template_file=str(ROOT / "pod_templates" / "default_template.yaml"),
        worker_container_image="apache/airflow:3.3.2",
        worker_service_account_name="airflow-worker",
        execution_api_server_url=API_URL,
        metrics_port=free_port(),
        worker_pods_creation_qps=500,
        worker_pods_creation_burst=100,
        watch_timeout_seconds=5,
        kube_request_timeout=5,
        pod_creation_timeout=20,
        max_pod_pending_timeout=60,
        task_allowed_registries=("registry.example",),  # test images that the fake kubelet fails to pull
    )


ExecutorFactory = Callable[..., KubernetesPlatformExecutor]


@pytest.fixture
def make_executor(settings: ExecutorConfig) -> Iterator[ExecutorFactory]:
    """``make_executor(job_id=..., **setting_changes)`` -> a started executor with FakeInstances."""
    made: list[KubernetesPlatformExecutor] = []

    def factory(*, job_id: int = JOB_ID, parallelism: int = 32, start: bool = True, **changes: Any):
        executor = KubernetesPlatformExecutor(parallelism=parallelism)
        executor.job_id = job_id
        executor.settings = dataclasses.replace(settings, **changes)
        executor.instances = FakeInstances()
        executor.peers = FakePeers(live=[job_id])  # the only scheduler
        executor.engine_options = FAST
        made.append(executor)
        if start:
            executor.start()
        return executor

    yield factory
    for executor in made:
        executor.terminate()


def run(executor: KubernetesPlatformExecutor, *workloads: ExecuteTask, queued: bool = True) -> None:
    """Queue workloads as the scheduler does (marked queued in the 'database' unless told otherwise)."""
    for item in workloads:
        if queued:
            executor.instances.queued(item, int(executor.job_id))  # type: ignore[attr-defined]
        executor.queue_workload(item, session=None)  # type: ignore[arg-type]
    executor.heartbeat()


def events_until(
    executor: KubernetesPlatformExecutor, done: Callable[[dict[Any, Any]], bool], timeout: float = 60.0
) -> dict[Any, Any]:
    """Heartbeat like the scheduler loop and collect event-buffer entries until ``done(events)``."""
    events: dict[Any, Any] = {}
    deadline = time.monotonic() + timeout
    while True:
        executor.heartbeat()
        for key, value in executor.get_event_buffer().items():
            events.setdefault(key, []).append(value)
        if done(events):
            return events
        if time.monotonic() > deadline:
            raise AssertionError(f"events so far: {events}; running: {executor.running}")
        time.sleep(0.02)
