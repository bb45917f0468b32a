"""Shared fixtures: the seed's config, the shipped templates, and a clean environment."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_k8s.executor.contract.config import ExecutorConfig
from airflow_k8s.executor.contract.config_loader import parse_config
from airflow_k8s.executor.kube.client import KubeClient
from airflow_k8s.executor.pods.templates import TemplateStore

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_DIR = ROOT / "pod_templates"

# The Airflow tier runs in .venv-airflow (make test-airflow); the project's venv has no Airflow,
# and the Airflow venv has no Pulumi, so each collects only what it can import.
collect_ignore = []
if importlib.util.find_spec("airflow") is None:
    collect_ignore.append("airflow")
if importlib.util.find_spec("pulumi") is None:
    collect_ignore.append("infra")

SEED_CFG = """\
# airflow.cfg - Kubernetes executor configuration (the seed's, comments included)
[core]
executor = airflow_k8s.executor.airflow.KubernetesPlatformExecutor
[kubernetes]
# Namespace for worker pods
namespace = airflow
worker_container_image = apache/airflow:2.8.0
worker_service_account_name = airflow-worker
worker_resource_request_cpu = 500m
worker_resource_request_memory = 1Gi
worker_resource_limit_cpu = 1000m
worker_resource_limit_memory = 2Gi
pod_template_file = /opt/airflow/pod_templates/default_template.yaml
delete_worker_pods = True
delete_worker_pods_on_failure = True
pod_creation_timeout = 600
max_pod_pending_timeout = 600
image_pull_policy = IfNotPresent
# worker_node_selector = {"node-type": "worker"}
# worker_tolerations = [{"key": "dedicated", "operator": "Equal", "value": "worker", "effect": "NoSchedule"}]
"""


def write_kubeconfig(path: Path, server: str, namespace: str = "airflow") -> str:
    """A kubeconfig for an API URL (the fake server's), with a dummy token; returns its path."""
    import json

    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "fake", "cluster": {"server": server}}],
                "users": [{"name": "dev", "user": {"token": "not-a-real-token"}}],
                "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "dev", "namespace": namespace}}],
                "current-context": "fake",
            }
        )
    )
    return str(path)


@pytest.fixture(autouse=True)
def _no_airflow_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """AIRFLOW__* variables of the developer's shell must not leak into config tests."""
    import os

    for name in list(os.environ):
        if name.startswith("AIRFLOW__"):
            monkeypatch.delenv(name)


@pytest.fixture
def seed_config() -> ExecutorConfig:
    return parse_config(SEED_CFG, source="seed.cfg", environ={})


@pytest.fixture
def templates() -> TemplateStore:
    return TemplateStore(TEMPLATE_DIR)


@pytest.fixture
def kube(fake_kube) -> Iterator[KubeClient]:
    """The executor's API client on the ``fake_kube`` server."""
    client = KubeClient.for_host(fake_kube.url, request_timeout=10)
    try:
        yield client
    finally:
        client.close()
