"""The scheduler's task intake spool: a durable ReadWriteOnce claim by default, emptyDir opt-out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
import pytest

from airflow_k8s.executor.contract.config_loader import parse_config
from airflow_k8s.executor.pods import security
from airflow_k8s.infra.components.configmaps import AIRFLOW_CFG_KEY, ExecutorWiring, build_executor_config
from airflow_k8s.infra.components.names import PlatformNames
from airflow_k8s.infra.components.scheduler import SchedulerWiring, deployment_manifest
from airflow_k8s.infra.config.args import ExecutorSettings, IntakeStorageSpec, SchedulerSpec
from airflow_k8s.infra.config.stack_config import PROJECT, StackConfigError, parse_stack_config, to_raw
from airflow_k8s.infra.render.checks import check_directory
from airflow_k8s.infra.render.main import write_render
from airflow_k8s.infra.render.manifests import manifests
from airflow_k8s.infra.render.offline import Evaluation

from .conftest import objects, one, run_stack

CLAIM_TYPE = "kubernetes:core/v1:PersistentVolumeClaim"


def _pod(evaluation: Evaluation) -> dict[str, Any]:
    return one(evaluation, "Deployment")["spec"]["template"]["spec"]


def _task_intake_dir(evaluation: Evaluation, config_map: str) -> str:
    cfg = one(evaluation, "ConfigMap", config_map)["data"][AIRFLOW_CFG_KEY]
    return parse_config(cfg, environ={}).task_intake_dir


def _intake_mount_and_volume(evaluation: Evaluation, path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    pod = _pod(evaluation)
    (container,) = pod["containers"]
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == path]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    return mount, volume


def _claims(evaluation: Evaluation) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects(evaluation, "PersistentVolumeClaim")}


def test_default_spool_is_a_read_write_once_claim_of_the_scheduler(default_eval: Evaluation) -> None:
    claim = _claims(default_eval)["airflow-executor-state"]
    assert claim["metadata"]["namespace"] == "airflow"
    assert claim["spec"] == {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    assert "storageClassName" not in claim["spec"]  # "" = the cluster default
    # the Deployment that mounts it is created after it: waiting for Bound would deadlock (WaitForFirstConsumer)
    assert claim["metadata"]["annotations"] == {"pulumi.com/skipAwait": "true"}
    assert claim["metadata"]["labels"]["app.kubernetes.io/component"] == "executor-state"
    (resource,) = [r for r in default_eval.of_type(CLAIM_TYPE) if r.name == "airflow-scheduler-state"]
    assert resource.parent.endswith("airflow-k8s:index:SchedulerDeployment::airflow-scheduler")
    assert default_eval.plain_outputs()["intakePvcName"] == "airflow-executor-state"


def test_claim_size_and_class_from_config(stack) -> None:
    evaluation = stack(platformName="etl", namespace="etl-jobs", intakeStorageSize="5Gi", intakeStorageClass="gp3")
    claim = _claims(evaluation)["etl-executor-state"]
    assert claim["metadata"]["namespace"] == "etl-jobs"
    assert claim["spec"] == {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "5Gi"}},
        "storageClassName": "gp3",
    }
    assert evaluation.plain_outputs()["intakePvcName"] == "etl-executor-state"
    assert _claims(evaluation)["etl-dags"]["spec"]["accessModes"] == ["ReadWriteMany"]  # the DAGs claim is untouched


def test_deployment_mounts_the_claim_at_the_configured_task_intake_dir(etl_eval: Evaluation) -> None:
    path = _task_intake_dir(etl_eval, "etl-config")
    assert path == "/var/run/airflow-executor/intake"
    mount, volume = _intake_mount_and_volume(etl_eval, path)
    assert mount == {"name": "task-intake", "mountPath": path}  # writable, the whole volume
    assert volume == {"name": "task-intake", "persistentVolumeClaim": {"claimName": "etl-executor-state"}}
    assert volume["persistentVolumeClaim"]["claimName"] in _claims(etl_eval)
    deployment = one(etl_eval, "Deployment")
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}  # RWO: the old pod releases the volume first
    assert deployment["spec"]["replicas"] == 1
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    # the non-root scheduler can write the volume: fsGroup is its own group
    assert pod["securityContext"]["fsGroup"] == container["securityContext"]["runAsGroup"] == 10001
    assert pod["securityContext"]["fsGroupChangePolicy"] == "OnRootMismatch"
    assert security.restricted_violations(deployment) == []
    assert security.hardening_violations(deployment, allow_token=True) == []


def test_empty_dir_opt_out(stack, tmp_path: Path) -> None:
    evaluation = stack(intakeStorage="emptyDir", intakeStorageSize="2Gi")
    assert set(_claims(evaluation)) == {"airflow-dags"}
    assert not [r for r in evaluation.of_type(CLAIM_TYPE) if r.name == "airflow-scheduler-state"]
    path = _task_intake_dir(evaluation, "airflow-config")
    mount, volume = _intake_mount_and_volume(evaluation, path)
    assert mount == {"name": "task-intake", "mountPath": path}
    assert volume == {"name": "task-intake", "emptyDir": {"sizeLimit": "2Gi"}}
    assert evaluation.plain_outputs()["intakePvcName"] is None
    out = tmp_path / "render"
    write_render(manifests(evaluation), evaluation, out)
    assert check_directory(out) == []


def test_empty_dir_opt_out_warns_that_tasks_can_be_lost() -> None:
    stack = parse_stack_config({"intakeStorage": "emptyDir"}, secrets_set={"databaseUrl"})
    assert stack.platform.intake == IntakeStorageSpec(volume="emptyDir", size="1Gi", storage_class=None)
    assert not stack.platform.intake.durable
    (warning,) = stack.warnings
    assert warning.startswith(f"{PROJECT}:intakeStorage is emptyDir: queued tasks and recorded results are lost")
    assert parse_stack_config({}, secrets_set={"databaseUrl"}).warnings == ()


def _problems(**raw: object) -> list[str]:
    with pytest.raises(StackConfigError) as info:
        parse_stack_config({k: to_raw(v) for k, v in raw.items()}, secrets_set={"databaseUrl"})
    return [str(p) for p in info.value.problems]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            {"intakeStorage": "hostPath"},
            f"{PROJECT}:intakeStorage = 'hostPath': expected one of persistentVolumeClaim, emptyDir",
        ),
        ({"intakeStorage": "pvc"}, f"{PROJECT}:intakeStorage = 'pvc': expected one of"),
        ({"intakeStorageSize": "1GB"}, f"{PROJECT}:intakeStorageSize = '1GB': "),
        ({"intakeStorageSize": "0"}, f"{PROJECT}:intakeStorageSize = '0': "),
        ({"intakeStorageClass": "Fast_SSD"}, f"{PROJECT}:intakeStorageClass = 'Fast_SSD': "),
        (
            {"intakeStorage": "emptyDir", "intakeStorageClass": "gp3"},
            f"{PROJECT}:intakeStorageClass = 'gp3': only used with {PROJECT}:intakeStorage persistentVolumeClaim, "
            "not emptyDir",
        ),
    ],
)
def test_bad_intake_config_names_the_key(raw: dict[str, object], expected: str) -> None:
    found = _problems(**raw)
    assert len(found) == 1, found
    assert found[0].startswith(expected), found[0]


def test_bad_intake_config_fails_the_stack_program() -> None:
    with pytest.raises(pulumi.RunError, match=f"{PROJECT}:intakeStorage = 'nfs': expected one of"):
        run_stack(intakeStorage="nfs")


def test_durable_spool_without_a_claim_name_is_refused() -> None:
    """The manifest builder never falls back to an emptyDir silently."""
    names = ExecutorWiring("airflow", "airflow-worker", "airflow-task", "airflow-placeholder", "airflow")
    config = build_executor_config(ExecutorSettings(), names)
    wiring = SchedulerWiring("airflow", "airflow-scheduler", "airflow-config", "airflow-pod-templates", "0" * 64)
    with pytest.raises(ValueError, match="needs its PersistentVolumeClaim"):
        deployment_manifest(PlatformNames("airflow"), SchedulerSpec(), config, wiring, IntakeStorageSpec())
