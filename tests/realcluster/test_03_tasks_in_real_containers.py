"""What a task pod is, read from inside its container; its log while it runs and after; failures and retries."""

from __future__ import annotations

from typing import Any

import pytest

from tests.realcluster.conftest import Deployed
from tests.realcluster.kit import wait_for
from tests.realcluster.pods import ended_pods, exit_code

pytestmark = pytest.mark.realcluster

NO_CAPABILITIES = "0000000000000000"
SECCOMP_FILTER = "2"


@pytest.fixture(scope="module")
def d(deployed: Deployed) -> Deployed:
    deployed.api.wait_for_dags(["kc_hold", "kc_pod_deleted", "kc_timeout", "kc_hardening"])
    return deployed


def running_pod(d: Deployed, dag_id: str, run_id: str, task_id: str, try_number: int) -> dict[str, Any]:
    def running() -> dict[str, Any] | None:
        pods = d.recorder.task_pods(dag_id, run_id).get((task_id, try_number)) or []
        live = [p for p in pods if p["status"].get("phase") == "Running"]
        return live[-1] if live else None

    return wait_for(running, what=f"{dag_id}.{task_id} try {try_number} running", timeout=900)


def pod_log(d: Deployed, pod: dict[str, Any]) -> str:
    return d.kit.kubectl("logs", pod["metadata"]["name"], "-n", d.namespace, "-c", "base", check=False)


def test_the_kubelet_enforced_the_task_pods_hardening_as_seen_from_inside_the_container(d: Deployed):
    run = d.api.trigger("kc_hardening", "hardening-run")
    assert d.api.wait_for_run("kc_hardening", run)["state"] == "success"
    seen = d.api.xcom("kc_hardening", run, "probe")
    assert (seen["uid"], seen["euid"], seen["gid"], seen["user"]) == (50000, 50000, 0, "airflow")
    assert seen["root"] == "EROFS" and seen["home"] == "EROFS", seen  # read-only root filesystem
    assert "ro" in seen["root_mount"], seen["root_mount"]
    assert seen["tmp"] == "writable" and seen["logs"] == "writable"  # only the emptyDirs
    assert seen["token_mounted"] is False  # no service-account token
    assert seen["cap_eff"] == seen["cap_prm"] == NO_CAPABILITIES  # capabilities dropped
    assert seen["no_new_privs"] == "1"  # allowPrivilegeEscalation: false
    assert seen["seccomp"] == SECCOMP_FILTER  # RuntimeDefault seccomp profile
    # no database URL, Fernet key or JWT secret: only the Task SDK's own guard against database access
    assert seen["secret_env"] == {
        "AIRFLOW__CORE__SQL_ALCHEMY_CONN": "airflow-db-not-allowed:///",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "airflow-db-not-allowed:///",
    }, seen["secret_env"]
    (pod,) = d.recorder.task_pods("kc_hardening", run)[("probe", 1)]
    assert pod["spec"]["automountServiceAccountToken"] is False
    assert pod["spec"]["serviceAccountName"] == d.outputs["workerServiceAccountName"]


def test_a_tasks_log_is_read_from_its_pod_while_it_runs_and_from_remote_storage_after(d: Deployed):
    run = d.api.trigger("kc_hold", "log-run")
    pod = running_pod(d, "kc_hold", run, "hold_0", 1)
    name = pod["metadata"]["name"]

    def heartbeats() -> list[str] | None:
        lines = d.api.task_log("kc_hold", run, "hold_0", 1)
        return lines if any("KC-HEARTBEAT hold_0" in line for line in lines) else None

    while_running = wait_for(heartbeats, what="the running task's heartbeats in its log", timeout=600, period=5)
    text = "\n".join(while_running)
    assert f"{d.namespace}/{name}" in text, text[-2000:]  # the executor found it in the pod, through the API
    assert "KC-START hold_0 try=1" in text
    d.api.set_variable(f"kc_release_{run}", "go")
    assert d.api.wait_for_run("kc_hold", run)["state"] == "success"

    def uploaded() -> str | None:  # the task's supervisor uploads its log as the pod ends
        text = "\n".join(d.api.task_log("kc_hold", run, "hold_0", 1))
        return text if "KC-DONE hold_0" in text else None

    after = wait_for(uploaded, what="the finished task's log from the remote log store", timeout=600, period=5)
    assert "KC-START hold_0 try=1" in after and "s3://airflow-logs/task-logs/" in after, after[-2000:]


def test_a_task_pod_deleted_while_running_is_reported_failed_and_retried_in_a_new_pod(d: Deployed):
    run = d.api.trigger("kc_pod_deleted", "deleted-run")
    first = running_pod(d, "kc_pod_deleted", run, "deleted_under_it", 1)
    wait_for(lambda: "KC-START" in pod_log(d, first), what="the first try's code to start", timeout=600)
    d.kit.kubectl("delete", "pod", first["metadata"]["name"], "-n", d.namespace, "--wait=false")
    assert d.api.wait_for_run("kc_pod_deleted", run)["state"] == "success"
    tries = d.api.tries("kc_pod_deleted", run, "deleted_under_it")
    assert [(t["try_number"], t["state"]) for t in tries] == [(1, "failed"), (2, "success")]
    pods = ended_pods(d.recorder, "kc_pod_deleted", run)
    assert sorted(pods) == [("deleted_under_it", 1), ("deleted_under_it", 2)]
    (one,), (two,) = pods[("deleted_under_it", 1)], pods[("deleted_under_it", 2)]
    assert one["metadata"]["name"] != two["metadata"]["name"]
    assert two["status"]["phase"] == "Succeeded" and exit_code(two) == 0
    for pod in (one, two):
        assert d.recorder.creations(pod["metadata"]["name"]) == 1
    # Airflow learnt of the first try's end from the executor's event (nothing reported through the API)
    mismatches = [entry.get("extra") or "" for entry in d.api.event_logs("kc_pod_deleted", "state mismatch")]
    assert any(one["metadata"]["name"] in extra for extra in mismatches), mismatches


def test_a_task_that_overruns_its_execution_timeout_fails_and_is_retried(d: Deployed):
    run = d.api.trigger("kc_timeout", "timeout-run")
    assert d.api.wait_for_run("kc_timeout", run)["state"] == "success"
    tries = d.api.tries("kc_timeout", run, "overruns_once")
    assert [(t["try_number"], t["state"]) for t in tries] == [(1, "failed"), (2, "success")]
    first_log = "\n".join(d.api.task_log("kc_timeout", run, "overruns_once", 1))
    assert "timed out" in first_log.lower(), first_log[-3000:]  # Airflow's "Process timed out"
    pods = ended_pods(d.recorder, "kc_timeout", run)
    assert sorted(pods) == [("overruns_once", 1), ("overruns_once", 2)]
    assert all(d.recorder.creations(p["metadata"]["name"]) == 1 for (pod,) in pods.values() for p in (pod,))
