"""The executor in a real Airflow 3.3.2 (scheduler, dag-processor, api-server, PostgreSQL), whose task pods
really run the Task SDK as local processes under the fake Kubernetes API (:mod:`.stack`).

The scheduler-kill test restarts the scheduler, so it comes last in this module.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from tests.airflow.e2e.stack import NAMESPACE, AirflowStack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

WORKLOAD_ARGS = ["python", "-m", "airflow.sdk.execution_time.execute_workload", "--json-string"]


def pods_of(stack: AirflowStack, dag_id: str, run_id: str) -> dict[tuple[str, int], dict[str, Any]]:
    """The run's pods by (task id, try number), from the exact task key the executor annotates them with."""
    found = {}
    for pod in stack.fake.pods():
        notes = pod["metadata"].get("annotations") or {}
        if notes.get("dag_id") == dag_id and notes.get("run_id") == run_id:
            found[(notes["task_id"], int(notes["try_number"]))] = pod
    return found


def finished_pods_of(stack: AirflowStack, dag_id: str, run_id: str) -> dict[tuple[str, int], dict[str, Any]]:
    """:func:`pods_of` once every one of them has ended (a task reports its state before its process exits)."""

    def finished() -> dict[tuple[str, int], dict[str, Any]] | None:
        pods = pods_of(stack, dag_id, run_id)
        ended = all(pod["status"].get("phase") in ("Succeeded", "Failed") for pod in pods.values())
        return pods if pods and ended else None

    return stack.wait(finished, what=f"the pods of {dag_id} {run_id} to end", timeout=120)


def base_container(pod: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in pod["spec"]["containers"] if c["name"] == "base")


def resources(pod: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    spec = base_container(pod)["resources"]
    return spec["requests"], spec["limits"]


def exit_code(pod: dict[str, Any]) -> int | None:
    for status in pod["status"].get("containerStatuses") or ():
        terminated = status.get("state", {}).get("terminated")
        if terminated:
            return int(terminated["exitCode"])
    return None


def ti_id(pod: dict[str, Any]) -> str:
    return str(pod["metadata"]["annotations"]["task_instance_id"])


def marks(stack: AirflowStack, name: str) -> list[tuple[str, int]]:
    """What test tasks wrote into the shared directory: one "<ti id> <try>" line each time their code ran."""
    path = stack.shared / name
    lines = path.read_text().splitlines() if path.exists() else []
    return [(instance, int(try_number)) for instance, try_number in (line.split() for line in lines)]


def test_the_seed_dags_run_to_success_each_task_in_a_pod_sized_as_its_executor_config_asks(stack):
    seed = stack.api.trigger("custom_pod_dag", "seed-run")
    auto = stack.api.trigger("resource_aware_k8s_dag", "auto-run")
    assert stack.wait_for_run("custom_pod_dag", seed)["state"] == "success"
    assert stack.wait_for_run("resource_aware_k8s_dag", auto)["state"] == "success"

    tis = stack.api.task_instances("custom_pod_dag", seed)
    assert {task: (ti["state"], ti["try_number"]) for task, ti in tis.items()} == {
        "heavy_computation": ("success", 1),
        "light_task": ("success", 1),
    }
    pods = finished_pods_of(stack, "custom_pod_dag", seed)
    heavy, light = pods[("heavy_computation", 1)], pods[("light_task", 1)]
    assert resources(heavy) == ({"cpu": "2", "memory": "4Gi"}, {"cpu": "4", "memory": "8Gi"})
    assert resources(light) == ({"cpu": "250m", "memory": "512Mi"}, {"cpu": "500m", "memory": "1Gi"})
    assert (heavy["spec"]["nodeName"], light["spec"]["nodeName"]) == ("compute-1", "worker-1")  # their templates' pools
    for pod in (heavy, light):
        assert pod["status"]["phase"] == "Succeeded" and exit_code(pod) == 0
        assert base_container(pod)["args"][:4] == WORKLOAD_ARGS
        env = {e["name"]: e.get("value") for e in base_container(pod)["env"]}
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == f"{stack.api.base_url}/execution/"
        assert not [name for name in env if "SQL_ALCHEMY" in name or "DATABASE" in name]

    (auto_pod,) = finished_pods_of(stack, "resource_aware_k8s_dag", auto).values()
    assert auto_pod["metadata"]["labels"]["airflow_executor_tier"] == "heavy"  # the largest tier that fits
    assert resources(auto_pod) == ({"cpu": "2", "memory": "4Gi"}, {"cpu": "4", "memory": "8Gi"})
    result = stack.api.xcom("resource_aware_k8s_dag", auto, "process_with_adaptive_resources")
    assert result == {"tier": "heavy", "status": "processing"}  # what the task saw through the downward API

    creates = stack.fake.creates()
    assert [creates[pod["metadata"]["name"]] for pod in (heavy, light, auto_pod)] == [1, 1, 1]
    # The tasks' Airflow has no database URL, and never fell back to its default SQLite file.
    assert "sql_alchemy_conn" not in (stack.worker_home / "airflow.cfg").read_text()
    assert not (stack.worker_home / "airflow.db").exists()


def test_a_task_whose_pod_dies_is_retried_in_a_new_pod_and_fails_with_the_pods_reason(stack):
    run_id = stack.api.trigger("e2e_pod_dies", "dies-run")
    assert stack.wait_for_run("e2e_pod_dies", run_id)["state"] == "failed"

    tries = stack.api.tries("e2e_pod_dies", run_id, "dies_with_its_pod")
    assert [(t["try_number"], t["state"]) for t in tries] == [(1, "failed"), (2, "failed")]
    pods = finished_pods_of(stack, "e2e_pod_dies", run_id)
    assert sorted(pods) == [("dies_with_its_pod", 1), ("dies_with_its_pod", 2)]
    first, second = pods[("dies_with_its_pod", 1)], pods[("dies_with_its_pod", 2)]
    names = [first["metadata"]["name"], second["metadata"]["name"]]
    assert names[0] != names[1]
    for pod in (first, second):
        assert (pod["status"]["phase"], exit_code(pod)) == ("Failed", 137)  # its main process was SIGKILLed
    # Each try's code ran once, in its own pod (Airflow 3 gives every try a task instance id of its own).
    assert marks(stack, "pod_dies.log") == [(ti_id(first), 1), (ti_id(second), 2)]

    # Nothing reported through the Execution API: Airflow learnt of each failure from the executor's event,
    # and its audit log keeps the executor's info (pod, reason, exit code).
    mismatches = [entry["extra"] for entry in stack.api.event_logs("e2e_pod_dies", "state mismatch")]
    assert len(mismatches) == 2, mismatches
    for name in names:
        assert any(f"pod {name} failed: Error, exit code 137" in extra for extra in mismatches), (name, mismatches)
    creates = stack.fake.creates()
    assert [creates[name] for name in names] == [1, 1]


def test_a_scheduler_killed_mid_run_is_replaced_and_the_new_one_adopts_the_running_pods(stack):
    run_id = stack.api.trigger("e2e_adoption", "adoption-run")
    tasks = {f"long_{n}" for n in range(3)}

    def all_running() -> bool:
        tis = stack.api.task_instances("e2e_adoption", run_id)
        pods = pods_of(stack, "e2e_adoption", run_id)
        return (
            {t for t, ti in tis.items() if ti["state"] == "running"} == tasks
            and {task for task, _ in pods} == tasks
            and all(pod["status"]["phase"] == "Running" for pod in pods.values())
            and len(marks(stack, "adoption.log")) == len(tasks)
        )

    stack.wait(all_running, what="every task of e2e_adoption running in its pod", timeout=300)
    # A running task's log comes from its pod: the API server asks the executor (get_task_log).
    pod_name = pods_of(stack, "e2e_adoption", run_id)[("long_0", 1)]["metadata"]["name"]
    log = stack.api.task_log("e2e_adoption", run_id, "long_0", 1)
    assert f"Found logs of pod {NAMESPACE}/{pod_name} through the Kubernetes API" in log, log
    first_job = {pod["metadata"]["labels"]["airflow-worker"] for pod in pods_of(stack, "e2e_adoption", run_id).values()}
    assert len(first_job) == 1

    assert stack.scheduler.kill() == -9  # SIGKILL: no cleanup, no goodbye; its pods keep running
    assert all(pod["status"]["phase"] == "Running" for pod in pods_of(stack, "e2e_adoption", run_id).values())
    stack.start_scheduler()

    def adopted() -> bool:
        labels = [pod["metadata"]["labels"] for pod in pods_of(stack, "e2e_adoption", run_id).values()]
        return all(label["airflow-worker"] not in first_job for label in labels)

    stack.wait(adopted, what="the new scheduler to adopt the running pods", timeout=300)
    (stack.shared / "release").touch()
    assert stack.wait_for_run("e2e_adoption", run_id)["state"] == "success"

    for task in sorted(tasks):
        tries = stack.api.tries("e2e_adoption", run_id, task)
        assert [(t["try_number"], t["state"]) for t in tries] == [(1, "success")], (task, tries)
    pods = finished_pods_of(stack, "e2e_adoption", run_id)
    assert sorted(pods) == sorted((task, 1) for task in tasks)
    creates = stack.fake.creates()
    assert {pod["metadata"]["name"]: creates[pod["metadata"]["name"]] for pod in pods.values()} == {
        pod["metadata"]["name"]: 1 for pod in pods.values()
    }
    # Each task's code ran exactly once, in the one pod created for it.
    assert Counter(marks(stack, "adoption.log")) == Counter((ti_id(pod), 1) for pod in pods.values())
    assert stack.api.event_logs("e2e_adoption", "state mismatch") == []
