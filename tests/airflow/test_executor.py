"""KubernetesPlatformExecutor inside Airflow 3.3.2: workloads to pods, events back, the scheduler's calls."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from airflow.providers.cncf.kubernetes.pod_generator import make_safe_label_value
from airflow.utils.state import TaskInstanceState
from kubernetes.client import models as k8s

from airflow_k8s.executor.airflow.executor import airflow_key
from airflow_k8s.executor.airflow.instances import InstanceState
from airflow_k8s.executor.airflow.workloads import task_key
from airflow_k8s.executor.contract.errors import ConfigError
from airflow_k8s.executor.tasks import identity
from tests.airflow.conftest import API_URL, JOB_ID, NAMESPACE, events_until, run, workload
from tests.conftest import ROOT

RUNNING, SUCCESS, FAILED = TaskInstanceState.RUNNING, TaskInstanceState.SUCCESS, TaskInstanceState.FAILED


def pod_of(cluster, item, namespace: str = NAMESPACE):
    return cluster.cluster.pod(namespace, identity.pod_name(task_key(item.ti)))


def annotations(**fake: str) -> dict:
    """kubernetes_config that scripts the fake kubelet (``fakekube/<name>`` pod annotations)."""
    return {"kubernetes_config": {"annotations": {f"fakekube/{k.replace('_', '-')}": v for k, v in fake.items()}}}


def states(events, item) -> list:
    return [state for state, _ in events.get(item.ti.key, [])]


def test_airflow_loads_the_executor_from_core_executor():
    code = (
        "from airflow.executors.executor_loader import ExecutorLoader\n"
        "executor = ExecutorLoader.get_default_executor()\n"
        "print(type(executor).__module__, type(executor).__name__)\n"
    )
    env = {**os.environ, "AIRFLOW__CORE__EXECUTOR": "airflow_k8s.executor.airflow.KubernetesPlatformExecutor"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split()[-2:] == ["airflow_k8s.executor.airflow.executor", "KubernetesPlatformExecutor"]


def test_a_workload_runs_in_a_pod_like_airflows_own_and_reports_running_then_success(cluster, make_executor):
    executor = make_executor(worker_pods_max=4)
    item = workload("hello")
    run(executor, item)
    events = events_until(executor, lambda e: SUCCESS in states(e, item))
    assert states(events, item) == [RUNNING, SUCCESS]
    assert events[item.ti.key][0][1] == identity.pod_name(task_key(item.ti))  # external_executor_id: the pod
    assert item.ti.key not in executor.running
    assert cluster.stats.creates() == {(NAMESPACE, identity.pod_name(task_key(item.ti))): 1}


def test_the_pod_runs_execute_workload_with_the_execution_api_and_airflows_labels(cluster, make_executor):
    executor = make_executor()
    executor_config = annotations(outcome="hang")
    item = workload("labelled", run_id="scheduled__2026-12-01T00:00:00+00:00", executor_config=executor_config)
    run(executor, item)
    events_until(executor, lambda e: RUNNING in states(e, item))
    pod = pod_of(cluster, item)
    base = next(c for c in pod["spec"]["containers"] if c["name"] == "base")
    assert base["args"][:4] == ["python", "-m", "airflow.sdk.execution_time.execute_workload", "--json-string"]
    assert json.loads(base["args"][4])["ti"]["id"] == str(item.ti.id)
    env = {e["name"]: e.get("value") for e in base["env"]}
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == API_URL
    assert env["AIRFLOW_IS_K8S_EXECUTOR_POD"] == "True"
    assert not any("SQL_ALCHEMY_CONN" in name for name in env)
    labels = pod["metadata"]["labels"]
    assert labels["dag_id"] == make_safe_label_value("dag")
    assert labels["run_id"] == make_safe_label_value("scheduled__2026-12-01T00:00:00+00:00")
    assert (labels["kubernetes_executor"], labels["airflow-worker"], labels["try_number"]) == ("True", str(JOB_ID), "1")
    assert pod["metadata"]["annotations"]["task_instance_id"] == str(item.ti.id)


def test_stale_workloads_are_dropped_with_one_query_for_the_whole_batch(cluster, make_executor):
    executor = make_executor()
    fresh = [workload(f"fresh{i}") for i in range(2)]
    running_elsewhere, retried, cleared = workload("running"), workload("retried"), workload("cleared")
    for item in fresh:
        executor.instances.queued(item)
    executor.instances.rows[str(running_elsewhere.ti.id)] = InstanceState("running", 1, JOB_ID)
    executor.instances.rows[str(retried.ti.id)] = InstanceState("queued", 2, JOB_ID)  # a newer try was queued
    run(executor, *fresh, running_elsewhere, retried, cleared, queued=False)
    assert len(executor.instances.calls) == 1 and len(executor.instances.calls[0]) == 5
    for item in (running_elsewhere, retried, cleared):
        assert item.ti.key not in executor.running
    events = events_until(executor, lambda e: all(SUCCESS in states(e, item) for item in fresh))
    assert not any(item.ti.key in events for item in (running_elsewhere, retried, cleared))
    created = {name for (_, name) in cluster.stats.creates()}
    assert created == {identity.pod_name(task_key(item.ti)) for item in fresh}


def test_worker_pods_creation_batch_size_caps_new_pods_per_scheduler_loop(cluster, make_executor):
    executor = make_executor(worker_pods_creation_batch_size=2)
    items = [workload(f"b{i}", executor_config=annotations(outcome="hang")) for i in range(5)]
    run(executor, *items)
    assert len(executor._backlog) == 3  # one loop handed the engine two
    executor.heartbeat()
    assert len(executor._backlog) == 1
    executor.heartbeat()
    assert len(executor._backlog) == 0


def test_core_parallelism_bounds_what_the_executor_takes(cluster, make_executor):
    executor = make_executor(parallelism=2)
    items = [workload(f"p{i}", executor_config=annotations(outcome="hang")) for i in range(3)]
    run(executor, *items)
    assert len(executor.running) == 2 and len(executor.queued_tasks) == 1


def test_a_failed_pod_fails_the_task_with_the_pods_reason_exit_code_and_log(cluster, make_executor):
    executor = make_executor()
    item = workload("boom", executor_config=annotations(outcome="fail", exit_code="3", log="loading\nKeyError: 'x'"))
    run(executor, item)
    events = events_until(executor, lambda e: FAILED in states(e, item))
    info = events[item.ti.key][-1][1]
    assert "failed: Error, exit code 3" in info and "KeyError: 'x'" in info


def test_a_pod_that_fails_before_its_task_starts_is_relaunched_once_then_failed(cluster, make_executor):
    executor = make_executor(pod_launch_failure_retries=1)
    item = workload("pull", executor_config={"kubernetes_config": {"image": "registry.example/none:bad"}})
    run(executor, item)  # the task instance stays queued: its process never started
    events = events_until(executor, lambda e: FAILED in states(e, item))
    assert "ErrImagePull" in events[item.ti.key][-1][1]
    assert cluster.stats.creates()[(NAMESPACE, identity.pod_name(task_key(item.ti)))] == 2


def test_an_invalid_executor_config_fails_the_task_without_a_pod(cluster, make_executor):
    executor = make_executor()
    item = workload("typo", executor_config={"kubernetes_cfg": {"tier": "light"}})
    run(executor, item)
    events = events_until(executor, lambda e: FAILED in states(e, item))
    assert "unknown key(s) ['kubernetes_cfg']" in events[item.ti.key][-1][1]
    assert cluster.stats.creates() == {}


def test_a_run_id_the_executor_cannot_use_is_reported_as_such_not_as_an_invalid_executor_config(cluster, make_executor):
    executor = make_executor()
    item = workload("odd", run_id="manual__1\nforged")
    run(executor, item)
    events = events_until(executor, lambda e: FAILED in states(e, item))
    info = events[item.ti.key][-1][1]
    assert "run_id = 'manual__1\\nforged': expected 1-250 printable characters" in info, info
    assert "executor_config" not in info
    assert cluster.stats.creates() == {}


def test_airflows_pod_override_and_the_typed_kubernetes_config_both_reach_the_pod(cluster, make_executor):
    executor = make_executor()
    override = k8s.V1Pod(
        spec=k8s.V1PodSpec(
            containers=[k8s.V1Container(name="base", env=[k8s.V1EnvVar(name="FROM_OVERRIDE", value="1")])]
        )
    )
    typed = {"tier": "heavy", "env": {"FROM_TYPED": "2"}, "annotations": {"fakekube/outcome": "hang"}}
    config = {"pod_override": override, "kubernetes_config": typed}
    item = workload("both", executor_config=config)
    run(executor, item)
    events_until(executor, lambda e: RUNNING in states(e, item))
    base = next(c for c in pod_of(cluster, item)["spec"]["containers"] if c["name"] == "base")
    env = {e["name"]: e.get("value") for e in base["env"]}
    assert (env["FROM_OVERRIDE"], env["FROM_TYPED"]) == ("1", "2")
    assert base["resources"]["requests"] == {"cpu": "2", "memory": "4Gi"}


def test_a_new_scheduler_adopts_the_running_pods_of_a_dead_one_without_a_second_pod(cluster, make_executor):
    first = make_executor(job_id=1)
    hanging = workload("long", executor_config=annotations(outcome="hang"))
    run(first, hanging)
    events_until(first, lambda e: RUNNING in states(e, hanging))
    first.terminate()  # the scheduler dies: nothing is cleaned up
    second = make_executor(job_id=2)
    adopted_ti, orphan_ti = OrphanedTI(hanging, queued_by_job_id=1), OrphanedTI(workload("never"), queued_by_job_id=1)
    assert list(second.try_adopt_task_instances([adopted_ti, orphan_ti])) == [orphan_ti]
    assert hanging.ti.key in second.running
    name = identity.pod_name(task_key(hanging.ti))
    assert cluster.cluster.pod(NAMESPACE, name)["metadata"]["labels"]["airflow-worker"] == "2"
    cluster.cluster.complete(NAMESPACE, name)
    events = events_until(second, lambda e: SUCCESS in states(e, hanging))
    assert states(events, hanging)[-1] == SUCCESS
    assert cluster.stats.creates()[(NAMESPACE, name)] == 1


class OrphanedTI:
    """What adopt_or_reset_orphaned_tasks hands the executor: a task instance queued by a dead scheduler job."""

    def __init__(self, item, *, queued_by_job_id: int) -> None:
        ti = item.ti
        self.dag_id, self.task_id, self.run_id, self.map_index = ti.dag_id, ti.task_id, ti.run_id, ti.map_index
        self.try_number, self.key, self.id, self.queued_by_job_id = ti.try_number, ti.key, ti.id, queued_by_job_id
        self.executor_config = ti.executor_config


def test_revoking_a_task_deletes_its_pod_and_reports_nothing(cluster, make_executor):
    executor = make_executor()
    item = workload("revoked", executor_config=annotations(outcome="hang"))
    run(executor, item)
    events_until(executor, lambda e: RUNNING in states(e, item))
    executor.revoke_task(ti=item.ti)
    assert item.ti.key not in executor.running
    cluster.cluster.wait_for(lambda: pod_of(cluster, item) is None)
    executor.heartbeat()
    assert item.ti.key not in executor.get_event_buffer()


def test_the_log_of_a_running_task_comes_from_its_pod(cluster, make_executor):
    executor = make_executor()
    item = workload("chatty", executor_config=annotations(outcome="hang", log="step one\nstep two"))
    run(executor, item)
    events_until(executor, lambda e: RUNNING in states(e, item))
    reader = make_executor(start=False)  # the API server builds an executor only to read logs
    messages, logs = reader.get_task_log(item.ti, try_number=1)
    assert "Found logs of pod" in messages[0] and "step two" in logs[0]
    messages, logs = reader.get_task_log(item.ti, try_number=2)
    assert "is gone" in messages[0] and logs == [""]


def test_a_pod_that_cannot_start_before_its_token_expires_fails_saying_so(cluster, make_executor):
    executor = make_executor()
    no_toleration = {"kubernetes_config": {"node_selector": {"node-type": "gpu"}}}  # the GPU pool, never scheduled
    stuck = workload("stuck", executor_config=no_toleration, expires_in=31)
    run(executor, stuck)
    events = events_until(executor, lambda e: FAILED in states(e, stuck))
    assert "StartDeadlineExceeded" in events[stuck.ti.key][-1][1]
    cluster.cluster.wait_for(lambda: pod_of(cluster, stuck) is None)


def test_sharing_a_scheduler_with_airflows_kubernetes_executor_is_refused(make_executor):
    both = "KubernetesExecutor,airflow_k8s.executor.airflow.KubernetesPlatformExecutor"
    executor = make_executor(start=False, executor=both)
    with pytest.raises(ConfigError, match="same \\[kubernetes_executor\\] section"):
        executor.start()


def test_event_keys_are_airflows_task_instance_keys():
    item = workload("k", try_number=3, map_index=5)
    assert airflow_key(task_key(item.ti)) == item.ti.key


def test_a_scheduler_whose_config_sets_only_pod_template_dir_starts_and_uses_its_default_template(
    cluster, make_executor, tmp_path
):
    import shutil

    templates = tmp_path / "templates"
    shutil.copytree(ROOT / "pod_templates", templates)
    executor = make_executor(pod_template_dir=str(templates), pod_template_file="")
    assert executor.settings.pod_template_file == f"{templates}/default_template.yaml"
    item = workload("from_the_directory", executor_config=annotations(outcome="hang"))
    run(executor, item)
    events_until(executor, lambda e: RUNNING in states(e, item))
    assert pod_of(cluster, item)["spec"]["nodeSelector"] == {"node-type": "worker"}  # default_template.yaml's


def test_a_missing_default_template_stops_the_scheduler_naming_the_setting_and_the_directory(make_executor, tmp_path):
    (tmp_path / "light_task.yaml").write_text((ROOT / "pod_templates" / "light_task.yaml").read_text())
    executor = make_executor(start=False, pod_template_dir=str(tmp_path), pod_template_file="")
    with pytest.raises(ConfigError) as info:
        executor.start()
    message = str(info.value)
    assert f"pod_template_file = '{tmp_path}/default_template.yaml'" in message and "not found" in message
    assert "[kubernetes_tier:medium] pod_template = 'default_template.yaml'" in message  # the tier needs it too
