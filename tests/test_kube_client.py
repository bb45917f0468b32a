"""KubeClient: credentials from a kubeconfig, errors mapped to KubeApiError with status and reason."""

from __future__ import annotations

import pytest
import yaml

from airflow_k8s.executor.contract.errors import KubeApiError, NotFound
from airflow_k8s.executor.kube.client import KubeClient
from airflow_k8s.executor.kube.retry import is_retryable


def kubeconfig(path, server: str) -> str:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "fake", "cluster": {"server": server}}],
                "users": [{"name": "dev", "user": {"token": "not-a-real-token"}}],
                "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "dev", "namespace": "airflow"}}],
                "current-context": "fake",
            }
        )
    )
    return str(path)


def test_a_kubeconfig_is_loaded_outside_the_cluster(fake_kube, tmp_path):
    client = KubeClient.from_settings(in_cluster=False, config_file=kubeconfig(tmp_path / "config", fake_kube.url))
    listing = client.list_pods("airflow")
    assert listing.items == [] and listing.resource_version


def test_missing_credentials_are_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(KubeApiError, match="in-cluster service account"):
        KubeClient.from_settings(in_cluster=True)
    with pytest.raises(KubeApiError, match="kubeconfig"):
        KubeClient.from_settings(in_cluster=False, config_file=str(tmp_path / "absent"))


def test_api_errors_carry_status_reason_and_retry_after(fake_kube):
    client = KubeClient.for_host(fake_kube.url)
    with pytest.raises(KubeApiError) as info:
        client.get_pod("airflow", "nope")
    assert (info.value.status, info.value.reason) == (404, "NotFound")
    assert isinstance(info.value, NotFound)
    fake_kube.faults.throttle(method="GET", path=r"/pods/nope$", retry_after=7)
    with pytest.raises(KubeApiError) as info:
        client.get_pod("airflow", "nope")
    assert (info.value.status, info.value.retry_after) == (429, 7.0)
    assert is_retryable(info.value)


def test_connection_failures_have_status_zero():
    client = KubeClient.for_host("http://127.0.0.1:9", request_timeout=2)
    with pytest.raises(KubeApiError) as info:
        client.list_pods("airflow")
    assert info.value.status == 0 and "connection" in str(info.value)
