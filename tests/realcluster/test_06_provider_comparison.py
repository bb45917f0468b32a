"""The figures' reference: the same small DAG run by this executor and by the provider's KubernetesExecutor, on the
same cluster at the same time (both control planes up, the same image, the same node, task logs to the same S3
store).  It prints and records
the figures; it asserts only what must hold for them to mean anything (both runs succeeded, one pod per task)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from tests.realcluster import provider, workload
from tests.realcluster.airflow_api import AirflowApi
from tests.realcluster.conftest import Deployed, log
from tests.realcluster.kit import wait_for
from tests.realcluster.pods import PodRecorder, latency

pytestmark = pytest.mark.realcluster
TASKS = {"step_0", "step_1", "step_2", "total"}


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def measure(api: AirflowApi, recorder: PodRecorder, run_id: str) -> dict[str, Any]:
    ran = api.wait_for_run("kc_small", run_id)
    assert ran["state"] == "success", ran
    tis = api.task_instances("kc_small", run_id)
    assert {t: ti["state"] for t, ti in tis.items()} == dict.fromkeys(TASKS, "success")

    def ended() -> dict | None:
        pods = recorder.task_pods("kc_small", run_id)
        done = all(p[-1]["status"].get("phase") in ("Succeeded", "Failed") for p in pods.values())
        return pods if set(t for t, _ in pods) == TASKS and done else None

    pods = wait_for(ended, what=f"the pods of kc_small {run_id} to end", timeout=600)
    assert all(len(p) == 1 for p in pods.values()), {k: len(p) for k, p in pods.items()}  # one pod per task
    tasks = {}
    for (task, _), (pod,) in sorted(pods.items()):
        queued = tis[task].get("queued_when")
        created = _time(pod["metadata"]["creationTimestamp"])
        tasks[task] = {
            "queued_to_created": None if not queued else round((created - _time(queued)).total_seconds(), 1),
            **latency(pod),
        }
    start, end = _time(ran["start_date"]), _time(ran["end_date"])
    return {"run_seconds": round((end - start).total_seconds(), 1), "tasks": tasks}


def test_the_same_small_dag_on_this_executor_and_on_the_providers_kubernetes_executor(
    deployed: Deployed, figures: dict[str, Any]
):
    d = deployed
    d.api.wait_for_dags(["kc_small"])
    log_folder = f"s3://{workload.LOGS_BUCKET}/provider-task-logs"  # the platform's: .../task-logs
    provider.deploy(d.kit, d.stack.values["workerImage"], d.work / "dags", d.stack.secrets["databaseUrl"], log_folder)
    reference = AirflowApi(d.kit, provider.NAMESPACE, provider.SERVICE)
    reference.request("POST", "/connections", workload.log_connection(d.log_endpoint))
    recorder = PodRecorder(d.kit, provider.NAMESPACE).start()
    try:
        reference.wait_for_dags(["kc_small"])
        results = {}
        for round_ in (1, 2):
            results[f"this executor, run {round_}"] = measure(
                d.api, d.recorder, d.api.trigger("kc_small", f"compare-{round_}")
            )
            results[f"provider KubernetesExecutor, run {round_}"] = measure(
                reference, recorder, reference.trigger("kc_small", f"compare-{round_}")
            )
        figures["small_dag_comparison"] = results
        for name, found in results.items():
            log(f"{name}: {found}")
    finally:
        recorder.stop()
        provider.remove(d.kit)
