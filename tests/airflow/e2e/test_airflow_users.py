"""What an Airflow user of the provider's KubernetesExecutor relies on, in the real Airflow 3.3.2 stack (:mod:`.stack`,
PostgreSQL): mistakes in ``executor_config`` caught when the DAG is parsed, a deferred task and a reschedule-mode
sensor with either ``delete_worker_pods``, the executor's reasons in the task's log view, and the provider's own
``airflow kubernetes cleanup-pods`` finding this executor's pods.

The test that restarts the scheduler puts the stack's configuration back before it ends; the cleanup test deletes
every finished pod in the namespace, so it comes last in this module (which runs before test_end_to_end.py).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from tests.airflow.e2e.stack import NAMESPACE, AirflowStack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]


def run_pods(stack: AirflowStack, dag_id: str, run_id: str) -> dict[str, list[dict[str, Any]]]:
    """Every pod of a run still in the namespace, by task id, oldest first (a try may have several: one per launch)."""
    found: dict[str, list[dict[str, Any]]] = {}
    for pod in stack.fake.pods():
        notes = pod["metadata"].get("annotations") or {}
        if notes.get("dag_id") == dag_id and notes.get("run_id") == run_id:
            found.setdefault(notes["task_id"], []).append(pod)
    for pods in found.values():
        pods.sort(key=lambda pod: pod["metadata"]["creationTimestamp"])
    return found


def ended_run_pods(stack: AirflowStack, dag_id: str, run_id: str) -> dict[str, list[dict[str, Any]]]:
    """:func:`run_pods` once every one has ended (a task reports its state before its process exits)."""

    def ended() -> dict[str, list[dict[str, Any]]] | None:
        pods = run_pods(stack, dag_id, run_id)
        phases = [pod["status"].get("phase") for found in pods.values() for pod in found]
        return pods if pods and all(phase in ("Succeeded", "Failed") for phase in phases) else None

    return stack.wait(ended, what=f"the pods of {dag_id} {run_id} to end", timeout=120)


def marks(stack: AirflowStack, run_id: str) -> Counter[tuple[str, int, str]]:
    path = stack.shared / f"resumed-{run_id}.log"
    lines = path.read_text().splitlines() if path.exists() else []
    return Counter((task, int(try_number), what) for task, try_number, what in (line.split() for line in lines))


def created(stack: AirflowStack, prefix: str) -> dict[str, int]:
    """How often each pod whose name starts with ``prefix`` was created (deleted pods included)."""
    return {name: count for name, count in stack.fake.creates().items() if name.startswith(prefix)}


def test_a_dag_with_six_broken_executor_configs_shows_as_an_import_error_naming_task_field_and_rule(stack):
    def broken() -> str | None:
        errors = [e for e in stack.api.import_errors() if e["filename"].endswith("e2e_broken_configs.py")]
        return errors[0]["stack_trace"] if errors else None

    error = stack.wait(broken, what="the dag-processor to report e2e_broken_configs.py", timeout=300)
    assert "6 task(s) of DAG 'e2e_broken_configs' have an executor_config that KubernetesPlatformExecutor refuses" in (
        error
    ), error
    for fragment in (
        "task 'misspelt_key': executor_config: unknown key(s) ['kubernetes_confg']; did you mean 'kubernetes_config'?",
        "task 'misspelt_field': executor_config.kubernetes_config: unknown key 'resource'; did you mean 'resources'?",
        "task 'unknown_tier': kubernetes_config.tier: unknown tier 'huge'",
        "task 'not_a_quantity': executor_config.kubernetes_config.resources.requests.cpu: '500x'",
        "task 'host_path_volume': pod_override violates the task pod policy",
        "hostPath volumes are not allowed",
        "task 'request_over_limit': executor_config.kubernetes_config.resources: requests.cpu = '8' is greater",
    ):
        assert fragment in error, (fragment, error)
    assert stack.api.dag("e2e_broken_configs") is None  # never serialised: nothing of it can be scheduled


def _resumed_run(stack: AirflowStack, run_id: str) -> None:
    stack.wait_for_dags(["e2e_resumed"])
    stack.api.trigger("e2e_resumed", run_id)
    assert stack.wait_for_run("e2e_resumed", run_id, timeout=400)["state"] == "success"
    tis = stack.api.task_instances("e2e_resumed", run_id)
    assert {task: (ti["state"], ti["try_number"]) for task, ti in tis.items()} == {
        "defers_once": ("success", 1),
        "pokes_until_the_third_time": ("success", 1),
    }
    assert marks(stack, run_id) == Counter(
        {
            ("defers_once", 1, "execute"): 1,
            ("defers_once", 1, "resume"): 1,
            ("pokes_until_the_third_time", 1, "poke"): 3,
        }
    )


def test_a_deferred_task_and_a_reschedule_sensor_get_a_pod_per_launch_whatever_delete_worker_pods_says(stack):
    assert stack.api.event_logs("e2e_resumed", "state mismatch") == []
    # delete_worker_pods = False (the stack's setting): every launch's pod is kept, each one its own.
    _resumed_run(stack, "kept")
    pods = ended_run_pods(stack, "e2e_resumed", "kept")
    assert {task: len(found) for task, found in pods.items()} == {"defers_once": 2, "pokes_until_the_third_time": 3}
    for found in pods.values():
        names = [pod["metadata"]["name"] for pod in found]
        launches = {pod["metadata"]["annotations"]["airflow_executor_launch"] for pod in found}
        assert len(set(names)) == len(names) == len(launches)
        # Airflow's pre-assigned external_executor_id (a database UUID), not the token's jti fallback (bare hex).
        assert all(launch.count("-") == 4 for launch in launches), launches
        assert all(pod["status"]["phase"] == "Succeeded" for pod in found)
        assert {pod["metadata"]["annotations"]["try_number"] for pod in found} == {"1"}
        assert all(stack.fake.creates()[name] == 1 for name in names)

    # delete_worker_pods = True: each launch's pod is deleted when it ends; the next launch still gets its own.
    before = {task: created(stack, f"e2e-resumed-{task.replace('_', '-')}-") for task in pods}
    stack.restart_scheduler(AIRFLOW__KUBERNETES_EXECUTOR__DELETE_WORKER_PODS="True")
    try:
        _resumed_run(stack, "deleted")
        stack.wait(lambda: not run_pods(stack, "e2e_resumed", "deleted"), what="every pod deleted once it ended")
        for task, launches in (("defers_once", 2), ("pokes_until_the_third_time", 3)):
            after = created(stack, f"e2e-resumed-{task.replace('_', '-')}-")
            new = {name: count for name, count in after.items() if name not in before[task]}
            assert list(new.values()) == [1] * launches, (task, new)
    finally:
        stack.restart_scheduler()  # the stack's own configuration for the tests after this one
    assert stack.api.event_logs("e2e_resumed", "state mismatch") == []


def test_the_executors_reasons_for_failing_a_task_are_in_the_tasks_log_view(stack):
    stack.wait_for_dags(["e2e_reasons"])
    stack.fake.post("/_fake/priorities", {"urgent": 1_000_000})
    run_id = stack.api.trigger("e2e_reasons", "reasons")
    stack.wait((stack.shared / f"preempt-me-{run_id}").exists, what="the preempted task to run", timeout=300)
    (victim,) = run_pods(stack, "e2e_reasons", run_id)["preempted_while_running"]
    urgent = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "urgent-job"},
        "spec": {
            "priorityClassName": "urgent",
            "nodeSelector": victim["spec"]["nodeSelector"],
            "tolerations": victim["spec"]["tolerations"],
            "containers": [
                {
                    "name": "c",
                    "image": "busybox",
                    "command": ["python", "-c", "pass"],
                    "resources": {"requests": {"cpu": "31"}},
                }
            ],  # only with the victim gone (32 CPUs)
        },
    }
    stack.fake.post(f"/api/v1/namespaces/{NAMESPACE}/pods", urgent)
    try:
        assert stack.wait_for_run("e2e_reasons", run_id)["state"] == "failed"
    finally:  # it holds 31 of the compute pool's 32 CPUs: the tests after this one need them
        stack.fake.delete(f"/api/v1/namespaces/{NAMESPACE}/pods/urgent-job")
    tis = stack.api.task_instances("e2e_reasons", run_id)
    assert {task: ti["state"] for task, ti in tis.items()} == dict.fromkeys(tis, "failed")

    def log_of(task: str) -> str:
        return "\n".join(stack.api.task_log("e2e_reasons", run_id, task, 1))

    pulled = log_of("image_cannot_be_pulled")
    assert "KubernetesPlatformExecutor: pod e2e-reasons-image-cannot-be-pulled-" in pulled, pulled
    assert "failed: ErrImagePull" in pulled and "apache/airflow:bad" in pulled, pulled
    too_big = log_of("larger_than_any_worker_node")
    assert "fit no node this pod may run on (1 matching node-type=worker)" in too_big, too_big
    assert "the largest allowed is cpu=16, memory=64Gi (node worker-1's allocatable)" in too_big, too_big
    preempted = log_of("preempted_while_running")
    assert f"pod {victim['metadata']['name']} failed: Preempted" in preempted, preempted
    assert f"preempted by {NAMESPACE}/urgent-job on node compute-1" in preempted, preempted
    for text in (pulled, too_big, preempted):
        assert "Hostname not available" not in text, text


def test_the_providers_cleanup_pods_command_finds_and_deletes_this_executors_finished_pods(stack):
    run_id = stack.api.trigger("custom_pod_dag", "cleanup-run")
    assert stack.wait_for_run("custom_pod_dag", run_id)["state"] == "success"

    pods = {task: found[-1] for task, found in ended_run_pods(stack, "custom_pod_dag", run_id).items()}
    for pod in pods.values():
        assert pod["metadata"]["labels"]["airflow_version"] == "3.3.2"
    stack.airflow(
        "cleanup-pods", "kubernetes", "cleanup-pods", "--namespace", NAMESPACE, "--min-completed-minutes", "0"
    )
    output = (stack.services.log_dir / "cleanup-pods.log").read_text()
    for pod in pods.values():
        assert f'Deleting pod "{pod["metadata"]["name"]}" phase "succeeded"' in output, output
    stack.wait(lambda: not run_pods(stack, "custom_pod_dag", run_id), what="the run's pods to be deleted")
