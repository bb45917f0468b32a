"""The queue-time check (:mod:`airflow_k8s.executor.pods.preflight`): the pod a task would get, judged as at launch,
plus a request no node can ever hold; once per distinct executor_config, with each task's own key in its error."""

from __future__ import annotations

from decimal import Decimal

import pytest

from airflow_k8s.executor.contract.config import ExecutorConfig
from airflow_k8s.executor.contract.errors import PodPolicyError
from airflow_k8s.executor.pods import capacity, preflight
from airflow_k8s.executor.pods.templates import TemplateStore
from airflow_k8s.executor.tasks.key import TaskKey
from airflow_k8s.executor.tasks.task import Task, parse_overrides
from tests.conftest import TEMPLATE_DIR

CONFIG = ExecutorConfig(namespace="airflow", worker_container_image="apache/airflow:3.3.2")
WORKER = capacity.Node(
    "worker-1",
    {"node-type": "worker"},
    ({"key": "dedicated", "value": "worker", "effect": "NoSchedule"},),
    {"cpu": Decimal(16), "memory": Decimal(64 * 2**30)},
)
HOST_PATH = {"pod_override": {"spec": {"volumes": [{"name": "h", "hostPath": {"path": "/etc"}}]}}}


def task(run: str, kubernetes_config: dict) -> Task:
    return Task(key=TaskKey("dag", "t", run), command=("true",), overrides=parse_overrides(kubernetes_config))


@pytest.fixture
def templates() -> TemplateStore:
    return TemplateStore(TEMPLATE_DIR)


def test_a_request_no_matching_node_can_hold_is_refused_with_the_largest_allowed_values(templates):
    big = task("r", {"resources": {"requests": {"cpu": "20"}, "limits": {"cpu": "20"}}})
    with pytest.raises(preflight.Unplaceable) as info:
        preflight.check_task(big, CONFIG, templates, [WORKER])
    assert "requests cpu=20, memory=1Gi fit no node this pod may run on (1 matching node-type=worker)" in str(
        info.value
    )
    assert "the largest allowed is cpu=16, memory=64Gi (node worker-1's allocatable)" in str(info.value)
    preflight.check_task(big, CONFIG, templates, None)  # nodes unknown (the DAG processor): not judged
    preflight.check_task(big, CONFIG, templates, [])  # no node of its pool yet (an autoscaled pool): not judged


def test_the_cache_builds_each_distinct_executor_config_once_and_names_each_tasks_own_key(templates, monkeypatch):
    built = []
    real = preflight.check_task
    monkeypatch.setattr(preflight, "check_task", lambda t, *a, **k: built.append(t.key.run_id) or real(t, *a, **k))
    now = [0.0]
    cache = preflight.VerdictCache(ttl=60.0, clock=lambda: now[0])
    for run in ("r1", "r2", "r3"):
        cache.check(task(run, {"tier": "light"}), CONFIG, templates, [WORKER])
        with pytest.raises(PodPolicyError) as info:
            cache.check(task(run, HOST_PATH), CONFIG, templates, [WORKER])
        assert f"dag.t run={run} " in str(info.value) and "hostPath volumes are not allowed" in str(info.value)
    assert built == ["r1", "r1"]
    with pytest.raises(preflight.Unplaceable):  # the node check is not cached: nodes change
        cache.check(task("r4", {"tier": "light"}), CONFIG, templates, [capacity.Node("tiny", {"node-type": "worker"},
                    WORKER.taints, {"cpu": Decimal("0.1"), "memory": Decimal(2**30)})])  # fmt: skip
    now[0] = 61.0
    cache.check(task("r5", {"tier": "light"}), CONFIG, templates, [WORKER])
    assert built == ["r1", "r1", "r5"]  # after the ttl, built again (templates may have changed)
