"""The seed DAGs run to success in real containers: one pod per task, from its template and tier, Task SDK inside,
talking to the api-server through its Service by DNS name."""

from __future__ import annotations

import re
import time
from datetime import datetime
from typing import Any

import pytest

from tests.realcluster.conftest import Deployed, log
from tests.realcluster.pods import ended_pods, exit_code, latency
from tests.realcluster.workload import HEAVY_RESOURCES

pytestmark = pytest.mark.realcluster

WORKLOAD_ARGS = ["python", "-m", "airflow.sdk.execution_time.execute_workload", "--json-string"]
TIER_DAGS = ["kc_hold", "kc_pod_deleted", "kc_timeout", "kc_hardening"]


@pytest.fixture(scope="module")
def dags_ready(deployed: Deployed) -> Deployed:
    deployed.api.wait_for_dags(["custom_pod_dag", "resource_aware_k8s_dag"], unpause=False)  # scheduled: see below
    deployed.api.wait_for_dags(TIER_DAGS)
    return deployed


def run_seconds(run: dict[str, Any]) -> float:
    """The run's duration as Airflow records it (first task queued to last task done)."""
    start, end = (datetime.fromisoformat(run[k].replace("Z", "+00:00")) for k in ("start_date", "end_date"))
    return round((end - start).total_seconds(), 1)


def base(pod: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in pod["spec"]["containers"] if c["name"] == "base")


def resources(pod: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    spec = base(pod)["resources"]
    return spec["requests"], spec["limits"]


def test_the_seed_dags_run_to_success_each_task_in_its_own_pod_from_its_template_and_tier(
    dags_ready: Deployed, figures: dict[str, Any]
):
    """Run as users run them: unpaused, each DAG's schedule creates its run (``catchup=False``: one).

    One DAG at a time, so ``tier: auto`` sees the node as the assertion below describes it.
    """
    d = dags_ready
    started = time.monotonic()
    auto = d.api.scheduled_run("resource_aware_k8s_dag")
    ran = d.api.wait_for_run("resource_aware_k8s_dag", auto)
    assert ran["state"] == "success"
    figures["seed_dag_resource_aware_wall_seconds"] = round(time.monotonic() - started, 1)
    figures["seed_dag_resource_aware_run_seconds"] = run_seconds(ran)
    started = time.monotonic()
    seed = d.api.scheduled_run("custom_pod_dag")
    ran = d.api.wait_for_run("custom_pod_dag", seed)
    assert ran["state"] == "success"
    figures["seed_dag_custom_pod_wall_seconds"] = round(time.monotonic() - started, 1)
    figures["seed_dag_custom_pod_run_seconds"] = run_seconds(ran)

    tis = d.api.task_instances("custom_pod_dag", seed)
    assert {t: (ti["state"], ti["try_number"]) for t, ti in tis.items()} == {
        "heavy_computation": ("success", 1),
        "light_task": ("success", 1),
    }
    pods = ended_pods(d.recorder, "custom_pod_dag", seed)
    assert sorted(pods) == [("heavy_computation", 1), ("light_task", 1)]
    (heavy,), (light,) = pods[("heavy_computation", 1)], pods[("light_task", 1)]
    # the template each task names (its labels), the resources it asks for
    assert heavy["metadata"]["labels"]["workload"] == "heavy" and light["metadata"]["labels"]["workload"] == "light"
    assert resources(heavy) == HEAVY_RESOURCES
    assert resources(light) == ({"cpu": "250m", "memory": "512Mi"}, {"cpu": "500m", "memory": "1Gi"})

    (auto_pod,) = ended_pods(d.recorder, "resource_aware_k8s_dag", auto)[("process_with_adaptive_resources", 1)]
    tier = auto_pod["metadata"]["labels"]["airflow_executor_tier"]
    # 2 allocatable cores, the control plane's 4 x 100m requested: heavy (2 CPUs) cannot fit, medium (1) can
    assert tier == "medium", tier
    assert resources(auto_pod) == ({"cpu": "1", "memory": "2Gi"}, {"cpu": "2", "memory": "4Gi"})
    assert d.api.xcom("resource_aware_k8s_dag", auto, "process_with_adaptive_resources") == {
        "tier": "medium",
        "status": "processing",
    }

    url = d.outputs["executionApiUrl"]
    assert re.fullmatch(
        rf"http://{d.outputs['apiServerServiceName']}\.{d.namespace}\.svc\.cluster\.local:8080/execution/", url
    )
    for pod in (heavy, light, auto_pod):
        assert pod["status"]["phase"] == "Succeeded" and exit_code(pod) == 0, pod["status"]
        assert pod["spec"]["nodeName"] == "kc-node"
        assert base(pod)["args"][:4] == WORKLOAD_ARGS
        assert base(pod)["image"] == d.stack.values["workerImage"]
        env = {e["name"]: e.get("value") for e in base(pod).get("env") or []}
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == url  # the Service, by its DNS name
        assert not [name for name in env if "SQL_ALCHEMY" in name or "FERNET" in name]
        assert not pod["spec"].get("hostAliases") and pod["spec"].get("dnsPolicy") in (None, "ClusterFirst")
        assert d.recorder.creations(pod["metadata"]["name"]) == 1
    figures["seed_task_pod_latency_seconds"] = {
        f"{dag}.{task}": latency(pod)
        for dag, task, pod in (
            ("custom_pod_dag", "heavy_computation", heavy),
            ("custom_pod_dag", "light_task", light),
            ("resource_aware_k8s_dag", "process_with_adaptive_resources", auto_pod),
        )
    }
    log(f"seed DAG figures: {figures['seed_task_pod_latency_seconds']}")


def test_task_pods_reached_the_execution_api_from_their_own_pod_addresses(dags_ready: Deployed):
    """The api-server's access log has the Execution API calls of a finished task, from that task pod's IP."""
    d = dags_ready
    run = d.api.trigger("kc_hardening", "execution-api-run")
    assert d.api.wait_for_run("kc_hardening", run)["state"] == "success"
    (pod,) = ended_pods(d.recorder, "kc_hardening", run)[("probe", 1)]
    ip = pod["status"]["podIP"]
    logs = "".join(
        d.kit.kubectl("logs", p["metadata"]["name"], "-n", d.namespace, "-c", "api-server", check=False)
        for p in d.pods("app.kubernetes.io/component=api-server")
    )
    calls = [line for line in logs.splitlines() if f"{ip}:" in line and "/execution/" in line]
    assert any("/run" in line for line in calls), calls[:5] or logs[-2000:]  # the task's start
    assert any("/state" in line for line in calls), calls[:5]  # and its end, reported by the Task SDK
