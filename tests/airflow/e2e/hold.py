"""Driving ``e2e_hold`` runs (``dags/e2e_hold.py``): tasks that hold until the test releases them."""

from __future__ import annotations

from typing import Any

from tests.airflow.e2e.stack import AirflowStack

DAG_ID = "e2e_hold"
HOLDS = tuple(f"hold_{n}" for n in range(4))
TASKS = (*HOLDS, "after")


def pods_of(stack: AirflowStack, run_id: str) -> dict[str, dict[str, Any]]:
    """The run's task pods by task id (every task of this DAG has one try here; a second would be a failure)."""
    found: dict[str, dict[str, Any]] = {}
    for pod in stack.fake.pods():
        notes = pod["metadata"].get("annotations") or {}
        if notes.get("dag_id") == DAG_ID and notes.get("run_id") == run_id:
            assert notes["task_id"] not in found, f"two pods for {notes['task_id']}"
            found[notes["task_id"]] = pod
    return found


def marks(stack: AirflowStack, run_id: str) -> list[tuple[str, int]]:
    """(task instance id, try) each time a task's code started."""
    path = stack.shared / f"marks-{run_id}.log"
    lines = path.read_text().splitlines() if path.exists() else []
    return [(ti, int(try_number)) for ti, try_number in (line.split() for line in lines)]


def release(stack: AirflowStack, run_id: str, *task_ids: str) -> None:
    """Let the named tasks (all of the run's, without names) finish."""
    for name in [f"release-{run_id}-{t}" for t in task_ids] or [f"release-{run_id}"]:
        (stack.shared / name).touch()


def wait_until_holding(stack: AirflowStack, run_id: str) -> dict[str, dict[str, Any]]:
    """Until every hold task runs its code in a Running pod and Airflow says running; the pods."""

    def holding() -> dict[str, dict[str, Any]] | None:
        tis = stack.api.task_instances(DAG_ID, run_id)
        pods = pods_of(stack, run_id)
        running = {t for t in HOLDS if tis.get(t, {}).get("state") == "running"}
        pods_running = {t for t in HOLDS if pods.get(t, {}).get("status", {}).get("phase") == "Running"}
        ok = running == pods_running == set(HOLDS) and len(marks(stack, run_id)) == len(HOLDS)
        return pods if ok else None

    return stack.wait(holding, what=f"every hold task of {run_id} running in its pod", timeout=300)


def assert_every_task_ran_once_in_one_pod(stack: AirflowStack, run_id: str) -> dict[str, dict[str, Any]]:
    """The run succeeded; each task had one try, one pod created once, and its code ran once; the pods."""
    for task in TASKS:
        tries = stack.api.tries(DAG_ID, run_id, task)
        assert [(t["try_number"], t["state"]) for t in tries] == [(1, "success")], (task, tries)
    pods = pods_of(stack, run_id)
    assert sorted(pods) == sorted(TASKS)
    creates = stack.fake.creates()
    assert {task: creates[pod["metadata"]["name"]] for task, pod in pods.items()} == dict.fromkeys(TASKS, 1)
    ran = sorted(marks(stack, run_id))
    assert ran == sorted((pod["metadata"]["annotations"]["task_instance_id"], 1) for pod in pods.values())
    assert [stack.api.xcom(DAG_ID, run_id, task) for task in HOLDS] == list(HOLDS)
    assert stack.api.xcom(DAG_ID, run_id, "after") == len(HOLDS)
    assert stack.api.event_logs(DAG_ID, "state mismatch") == []  # no task ended by the executor's word
    return pods
