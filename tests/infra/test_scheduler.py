"""Scheduler Deployment hardening, Service, PDB, and the config-hash rollout."""

from __future__ import annotations

import pytest

from airflow_k8s.executor.pods import security
from airflow_k8s.infra.components.names import CONFIG_HASH_ANNOTATION
from airflow_k8s.infra.render.offline import Evaluation

from .conftest import one


@pytest.fixture(scope="module")
def deployment(default_eval: Evaluation) -> dict:
    return one(default_eval, "Deployment")


def test_deployment_passes_pss_restricted_and_hardening(deployment: dict) -> None:
    assert security.restricted_violations(deployment) == []
    assert security.hardening_violations(deployment, allow_token=True) == []
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
        "runAsGroup": 10001,
        "runAsNonRoot": True,
        "runAsUser": 10001,
    }
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is True  # the API client needs its token
    assert pod["serviceAccountName"] == "airflow-scheduler"
    assert {m["mountPath"] for m in container["volumeMounts"]} >= {"/tmp"}
    assert container["resources"] == {
        "limits": {"cpu": "500m", "memory": "512Mi"},
        "requests": {"cpu": "100m", "memory": "256Mi"},
    }


def test_deployment_shape(deployment: dict) -> None:
    spec = deployment["spec"]
    assert spec["replicas"] == 1 and isinstance(spec["replicas"], int)  # normalized from the mock's float
    assert spec["strategy"] == {"type": "Recreate"}
    (container,) = spec["template"]["spec"]["containers"]
    assert container["args"] == ["python", "-m", "airflow_k8s.executor", "run", "--config", "/opt/airflow/airflow.cfg"]
    assert "command" not in container
    assert container["image"] == "ghcr.io/airflow-k8s/executor:0.1.0"
    assert container["ports"] == [{"containerPort": 9102, "name": "metrics", "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= labels.items()
    assert labels["component"] == "scheduler"


def test_metrics_service_and_pdb(default_eval: Evaluation) -> None:
    service = one(default_eval, "Service")
    assert service["spec"] == {
        "ports": [{"name": "metrics", "port": 9102, "protocol": "TCP", "targetPort": "metrics"}],
        "selector": one(default_eval, "Deployment")["spec"]["selector"]["matchLabels"],
        "type": "ClusterIP",
    }
    pdb = one(default_eval, "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1  # a single restart-safe replica must never block a drain
    assert "minAvailable" not in pdb["spec"]
    assert pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


def test_metrics_port_from_config_everywhere(stack) -> None:
    evaluation = stack(metricsPort=9200)
    (container,) = one(evaluation, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert container["ports"][0]["containerPort"] == 9200
    assert one(evaluation, "Service")["spec"]["ports"][0]["port"] == 9200
    metrics_policy = one(evaluation, "NetworkPolicy", "airflow-scheduler-metrics")
    assert metrics_policy["spec"]["ingress"][0]["ports"] == [{"port": 9200, "protocol": "TCP"}]


def _hash(evaluation: Evaluation) -> str:
    return one(evaluation, "Deployment")["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH_ANNOTATION]


def test_config_changes_roll_the_deployment(stack, default_eval: Evaluation) -> None:
    base = _hash(default_eval)
    assert _hash(stack()) == base  # deterministic
    assert _hash(stack(workerPodsMax=16)) != base  # airflow.cfg changed
    assert _hash(stack(workerImage="apache/airflow:2.9.0")) != base
    assert _hash(stack(fernet=True)) != base  # templates changed (Fernet env)
    assert _hash(stack(quotaPods=50)) == base  # nothing the scheduler reads
    assert _hash(stack(schedulerImage="ghcr.io/airflow-k8s/executor:0.2.0")) == base  # the image rolls it anyway


def test_scheduler_image_from_config(stack) -> None:
    evaluation = stack(
        schedulerImage="registry.example/executor@sha256:" + "a" * 64, schedulerImagePullPolicy="IfNotPresent"
    )
    (container,) = one(evaluation, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert container["image"].endswith("@sha256:" + "a" * 64)
    assert container["imagePullPolicy"] == "IfNotPresent"
