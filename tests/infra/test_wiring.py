"""airflow.cfg in the ConfigMap loads with the executor's loader and names the created objects."""

from __future__ import annotations

from pathlib import Path

import yaml

from airflow_k8s.executor.contract.config import DEFAULT_TIERS
from airflow_k8s.executor.contract.config_loader import parse_config
from airflow_k8s.executor.pods.templates import TemplateStore, parse_template
from airflow_k8s.infra.components.configmaps import config_checksum
from airflow_k8s.infra.components.rollout import config_digest
from airflow_k8s.infra.render.offline import Evaluation

from .conftest import objects, one

ROOT = Path(__file__).resolve().parents[2]


def _config_maps(evaluation: Evaluation) -> tuple[dict, dict]:
    by_name = {o["metadata"]["name"]: o for o in objects(evaluation, "ConfigMap")}
    return by_name["etl-config"], by_name["etl-pod-templates"]


def test_airflow_cfg_loads_and_names_the_created_objects(etl_eval: Evaluation) -> None:
    cfg_map, _ = _config_maps(etl_eval)
    assert set(cfg_map["data"]) == {"airflow.cfg"}
    config = parse_config(cfg_map["data"]["airflow.cfg"], environ={})
    namespace = one(etl_eval, "Namespace")["metadata"]["name"]
    accounts = {o["metadata"]["name"] for o in objects(etl_eval, "ServiceAccount")}
    priority = {o["metadata"]["name"]: o for o in objects(etl_eval, "PriorityClass")}
    assert config.namespace == namespace == "etl-jobs"
    assert config.worker_service_account_name == "etl-worker" and config.worker_service_account_name in accounts
    assert priority[config.worker_priority_class]["value"] == 0  # preempts placeholders, nothing else
    assert priority[config.placeholder_priority_class]["value"] == -10
    assert priority[config.placeholder_priority_class]["preemptionPolicy"] == "Never"
    assert config.scheduler_instance_id == "etl"
    assert config.executor == "airflow_k8s.executor.airflow.KubernetesPlatformExecutor"
    assert config.in_cluster is True


def test_the_control_plane_runs_at_a_priority_no_task_pod_can_preempt(etl_eval: Evaluation) -> None:
    """Found on a real cluster: at priority 0 the control plane was preempted by a task pod sharing its node."""
    cfg_map, _ = _config_maps(etl_eval)
    config = parse_config(cfg_map["data"]["airflow.cfg"], environ={})
    priority = {o["metadata"]["name"]: o for o in objects(etl_eval, "PriorityClass")}
    control_plane = priority["etl-control-plane"]
    assert control_plane["value"] >= priority[config.worker_priority_class]["value"]  # preemption needs lower
    assert control_plane["value"] == 1_000_000_000  # >= any taskPriority the stack accepts
    assert control_plane["preemptionPolicy"] == "Never"  # nor does it evict running tasks
    assert control_plane["globalDefault"] is False
    pods = [d["spec"]["template"]["spec"] for d in objects(etl_eval, "Deployment")]
    pods.append(one(etl_eval, "Job", "etl-db-migrate")["spec"]["template"]["spec"])
    assert len(pods) == 5
    assert {pod.get("priorityClassName") for pod in pods} == {"etl-control-plane"}


def test_template_dir_matches_the_scheduler_mount_and_holds_every_tier_template(etl_eval: Evaluation) -> None:
    cfg_map, templates = _config_maps(etl_eval)
    config = parse_config(cfg_map["data"]["airflow.cfg"], environ={})
    deployment = one(etl_eval, "Deployment", "etl-scheduler")
    pod = deployment["spec"]["template"]["spec"]
    mounts = {m["name"]: m for m in pod["containers"][0]["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert mounts["pod-templates"]["mountPath"] == config.pod_template_dir == "/opt/airflow/pod_templates"
    assert volumes["pod-templates"]["configMap"]["name"] == templates["metadata"]["name"]
    assert mounts["airflow-cfg"] == {
        "mountPath": "/opt/airflow/airflow.cfg",
        "name": "airflow-cfg",
        "readOnly": True,
        "subPath": "airflow.cfg",
    }
    assert volumes["airflow-cfg"]["configMap"]["name"] == cfg_map["metadata"]["name"]
    assert config.task_intake_dir not in {m["mountPath"] for m in mounts.values()}  # no spool: the database queues
    assert config.pod_template_file == f"{config.pod_template_dir}/default_template.yaml"
    published = set(templates["data"])
    assert {t.pod_template for t in DEFAULT_TIERS} <= published
    assert "default_template.yaml" in published


def test_published_templates_load_with_the_executor_from_a_mounted_directory(
    etl_eval: Evaluation, tmp_path: Path
) -> None:
    cfg_map, templates = _config_maps(etl_eval)
    for key, text in templates["data"].items():
        (tmp_path / key).write_text(text)
    config = parse_config(cfg_map["data"]["airflow.cfg"], environ={})
    store = TemplateStore(tmp_path, logical_dir=config.pod_template_dir)
    loaded = store.load_all()
    assert set(loaded) == {p.name for p in (ROOT / "pod_templates").glob("*.yaml")}
    assert store.load(config.pod_template_file)["kind"] == "Pod"


def test_checksum_output_is_the_hash_of_the_published_config(etl_eval: Evaluation) -> None:
    cfg_map, templates = _config_maps(etl_eval)
    expected = config_checksum(cfg_map["data"]["airflow.cfg"], templates["data"])
    assert etl_eval.plain_outputs()["configChecksum"] == expected
    cfg_only = config_digest(cfg_map["data"]["airflow.cfg"])
    for deployment in objects(etl_eval, "Deployment"):
        # the roles that load the templates (scheduler, dag-processor) roll on airflow.cfg and them, the others
        # on airflow.cfg
        loads = any(v["name"] == "pod-templates" for v in deployment["spec"]["template"]["spec"]["volumes"])
        annotation = deployment["spec"]["template"]["metadata"]["annotations"]["airflow-k8s/config-sha256"]
        assert annotation == (expected if loads else cfg_only)


def test_every_template_is_rewired_to_the_created_objects(etl_eval: Evaluation) -> None:
    _, templates = _config_maps(etl_eval)
    for key, text in templates["data"].items():
        pod = parse_template(text, source=key)
        spec = pod["spec"]
        assert spec["serviceAccountName"] == "etl-worker"
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert volumes["airflow-config"]["configMap"]["name"] == "etl-config"
        assert volumes["dags"]["persistentVolumeClaim"]["claimName"] == "etl-dags"
        assert "secretKeyRef" not in text and "etl-secrets" not in text  # task pods read no Secret
        assert "airflow-dags" not in text
        assert yaml.safe_load(text) == pod


def test_created_objects_match_the_references(etl_eval: Evaluation) -> None:
    claims = {o["metadata"]["name"] for o in objects(etl_eval, "PersistentVolumeClaim")}
    assert claims == {"etl-dags"}
    secret = one(etl_eval, "Secret")
    assert secret["metadata"]["name"] == "etl-secrets"
    # + the simple auth manager's Admin password (authManager: simple, the default)
    assert set(secret["stringData"]) == {"database-url", "fernet-key", "jwt-secret", "api-secret-key", "admin-password"}
