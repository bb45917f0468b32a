"""When the executor fails a task, the reason reaches the DAG author: at queue time for what no pod could fix (a
policy violation in a DAG parsed where the cluster policy is not installed, a request no node can ever hold), and
always in the try's own log (``<base_log_folder>/<log_path>.executor.log``, which Airflow's log view reads), with the
cluster's words for a pod deleted under its task ("preempted by <pod>")."""

from __future__ import annotations

import json
from pathlib import Path

from airflow.utils.state import TaskInstanceState
from kubernetes.client import models as k8s

from airflow_k8s.executor.airflow import reasons
from tests.airflow.conftest import NAMESPACE, events_until, run, workload
from tests.airflow.test_executor import annotations, pod_of, states

FAILED, RUNNING = TaskInstanceState.FAILED, TaskInstanceState.RUNNING


def reason_lines(folder: Path, item) -> list[dict]:
    path = folder / f"{item.log_path}{reasons.SUFFIX}"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def started(make_executor, tmp_path: Path, **changes):
    executor = make_executor(**changes)
    executor.log_folder = str(tmp_path / "logs")  # [logging] base_log_folder
    return executor


def test_a_policy_violation_fails_at_queue_time_and_the_reason_is_in_the_trys_log(cluster, make_executor, tmp_path):
    executor = started(make_executor, tmp_path)
    host_path = k8s.V1Pod(
        spec=k8s.V1PodSpec(
            containers=[k8s.V1Container(name="base", volume_mounts=[k8s.V1VolumeMount(mount_path="/h", name="h")])],
            volumes=[k8s.V1Volume(name="h", host_path=k8s.V1HostPathVolumeSource(path="/etc"))],
        )
    )
    item = workload("parsed_elsewhere", executor_config={"pod_override": host_path})
    run(executor, item)
    assert executor.get_event_buffer()[item.ti.key][0] == FAILED  # in the same call: no pod, no waiting
    assert cluster.stats.creates() == {}
    (line,) = reason_lines(tmp_path / "logs", item)
    assert line["level"] == "error" and line["logger"] == "airflow_k8s.executor"
    assert "spec.volumes[4] (h): hostPath volumes are not allowed" in line["event"]


def test_a_request_no_node_can_ever_hold_fails_at_queue_time_with_the_largest_allowed_values(
    cluster, make_executor, tmp_path
):
    executor = started(make_executor, tmp_path)
    cluster.cluster.wait_for(lambda: executor.engine.nodes)  # the scheduler has listed the nodes
    huge = {"kubernetes_config": {"tier": "light", "resources": {"requests": {"cpu": "20"}, "limits": {"cpu": "20"}}}}
    fits = {"kubernetes_config": {"tier": "heavy", "resources": {"requests": {"cpu": "20"}, "limits": {"cpu": "20"}},
                                  "annotations": {"fakekube/outcome": "hang"}}}  # fmt: skip
    too_big, on_compute = workload("too_big", executor_config=huge), workload("on_compute", executor_config=fits)
    run(executor, too_big, on_compute)
    state, info = executor.get_event_buffer()[too_big.ti.key]
    assert state == FAILED
    assert "requests cpu=20, memory=512Mi fit no node this pod may run on (1 matching node-type=worker)" in info
    assert "the largest allowed is cpu=16, memory=64Gi (node worker-1's allocatable)" in info
    assert "fit no node" in reason_lines(tmp_path / "logs", too_big)[0]["event"]
    events_until(executor, lambda e: RUNNING in states(e, on_compute))
    assert pod_of(cluster, on_compute)["spec"]["nodeSelector"] == {"node-type": "compute-optimized"}  # 32 CPUs hold it


def test_a_preempted_pod_fails_its_task_saying_which_pod_preempted_it(cluster, make_executor, tmp_path):
    cluster.cluster.set_priorities({"urgent": 1_000_000})
    executor = started(make_executor, tmp_path, pod_launch_failure_retries=0)
    item = workload("preempted", executor_config={**annotations(outcome="hang")})
    item.ti.executor_config["kubernetes_config"]["tier"] = "light"
    run(executor, item)
    events_until(executor, lambda e: RUNNING in states(e, item))
    victim = pod_of(cluster, item)
    urgent = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "urgent-job", "namespace": NAMESPACE, "annotations": {"fakekube/outcome": "hang"}},
        "spec": {
            "priorityClassName": "urgent",
            "nodeSelector": {"node-type": "worker"},
            "tolerations": victim["spec"]["tolerations"],
            "containers": [{"name": "c", "image": "busybox", "resources": {"requests": {"cpu": "16"}}}],
        },
    }
    cluster.admission.enforce_pod_security(False)  # someone else's pod, not hardened
    executor.kube.create_pod(NAMESPACE, urgent)
    events = events_until(executor, lambda e: FAILED in states(e, item), timeout=120)
    info = events[item.ti.key][-1][1]
    assert f"pod {victim['metadata']['name']} failed: Preempted" in info
    assert f"preempted by {NAMESPACE}/urgent-job on node worker-1" in info
    assert "preempted by airflow/urgent-job" in reason_lines(tmp_path / "logs", item)[0]["event"]
