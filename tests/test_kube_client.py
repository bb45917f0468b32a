"""KubeClient: credentials from a kubeconfig, errors mapped to KubeApiError with status and reason."""

from __future__ import annotations

import dataclasses
import socket
import sys
import types

import pytest
from kubernetes import client as k8s_client

from airflow_k8s.executor.contract.config import ExecutorConfig
from airflow_k8s.executor.contract.errors import ConfigError, KubeApiError, NotFound
from airflow_k8s.executor.kube.client import KubeClient
from airflow_k8s.executor.kube.retry import is_retryable
from tests.conftest import write_kubeconfig


def test_a_kubeconfig_is_loaded_outside_the_cluster(fake_kube, tmp_path):
    client = KubeClient.from_settings(
        in_cluster=False, config_file=write_kubeconfig(tmp_path / "config", fake_kube.url)
    )
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


# -- KubeClient.from_config: Airflow's connection settings --------------------------------------------
def outside(path, server: str, **changes) -> ExecutorConfig:
    return dataclasses.replace(
        ExecutorConfig(), in_cluster=False, config_file=write_kubeconfig(path, server), **changes
    )


def test_airflows_client_factory_supplies_the_configuration(fake_kube, monkeypatch):
    module = types.ModuleType("site_k8s_clients")

    def make() -> k8s_client.CoreV1Api:
        configuration = k8s_client.Configuration()
        configuration.host = fake_kube.url
        return k8s_client.CoreV1Api(k8s_client.ApiClient(configuration))

    module.make = make  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "site_k8s_clients", module)
    client = KubeClient.from_config(dataclasses.replace(ExecutorConfig(), client_factory="site_k8s_clients.make"))
    assert client.list_pods("airflow").items == []


def test_a_broken_client_factory_is_a_config_error_naming_the_key(monkeypatch):
    with pytest.raises(ConfigError, match=r"client_factory = 'no_such_module.make': cannot build a client"):
        KubeClient.from_config(dataclasses.replace(ExecutorConfig(), client_factory="no_such_module.make"))


def test_tls_settings_reach_the_connection_pool(fake_kube, tmp_path, caplog):
    ca = tmp_path / "ca.pem"
    ca.write_text("not used over http")
    client = KubeClient.from_config(outside(tmp_path / "config", fake_kube.url, verify_ssl=False, ssl_ca_cert=str(ca)))
    configuration = client.api.configuration
    assert configuration.verify_ssl is False and configuration.ssl_ca_cert == str(ca)
    assert "verify_ssl = False" in caplog.text


def test_tcp_keepalive_is_set_on_api_connections(fake_kube, tmp_path):
    config = outside(tmp_path / "config", fake_kube.url, tcp_keep_idle=77, tcp_keep_intvl=11, tcp_keep_cnt=3)
    client = KubeClient.from_config(config)
    options = client.api.configuration.socket_options
    assert (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1) in options
    assert (socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 77) in options
    assert client.list_pods("airflow").items == []  # and the options are valid for real sockets
    off = KubeClient.from_config(dataclasses.replace(config, enable_tcp_keepalive=False))
    assert not any(option[1] == socket.SO_KEEPALIVE for option in off.api.configuration.socket_options or [])


def test_the_request_timeout_comes_from_kube_client_request_args(fake_kube, tmp_path):
    config = outside(tmp_path / "config", fake_kube.url, kube_client_request_args=(("_request_timeout", (3.0, 9.0)),))
    assert KubeClient.from_config(config).request_timeout == (3.0, 9.0)


def test_closing_a_quiet_watch_from_another_thread_ends_it_at_once(fake_kube):
    import threading
    import time

    fake_kube.configure(bookmark_interval=60)  # a real server's watch cache: no event for a minute
    client = KubeClient.for_host(fake_kube.url)
    rv = client.list_pods("airflow").resource_version
    stream = client.watch_pods("airflow", label_selector=None, resource_version=rv, timeout_seconds=30, read_timeout=40)
    events: list[dict] = []
    reader = threading.Thread(target=lambda: events.extend(stream), daemon=True)
    reader.start()
    reader.join(0.3)
    assert reader.is_alive()  # blocked on the silent socket
    started = time.monotonic()
    stream.close()
    reader.join(5)
    assert not reader.is_alive() and time.monotonic() - started < 1.0
    assert events == []  # ended quietly: no error, no event
    stream.close()  # idempotent
    assert client.list_pods("airflow").items == []  # the pool still works after the closed watch


# -- the scheduler's own service account is never a task pod's ----------------------------------------
def service_account_token(path, claims: dict) -> None:
    import base64
    import json

    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    path.write_text(f"{part({'alg': 'RS256'})}.{part(claims)}.signature")


@pytest.fixture
def in_a_pod(fake_kube, tmp_path, monkeypatch):
    """In-cluster credentials as a pod has them; the token names the service account in ``token``'s claims."""
    import certifi
    from kubernetes.config import incluster_config

    from airflow_k8s.executor.kube import connection

    token, ca = tmp_path / "token", certifi.where()  # a readable CA bundle: nothing is connected to
    host, port = fake_kube.url.removeprefix("http://").split(":")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", host)
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", port)
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(token))
    monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(ca))
    monkeypatch.setattr(connection, "TOKEN_PATH", token)
    return token


@pytest.mark.parametrize(
    "claims",
    [
        {"kubernetes.io": {"namespace": "airflow", "serviceaccount": {"name": "airflow-scheduler", "uid": "u"}}},
        {"kubernetes.io/serviceaccount/service-account.name": "airflow-scheduler"},
    ],
    ids=["bound token", "legacy token"],
)
def test_task_pods_running_as_the_schedulers_own_service_account_is_a_config_error(in_a_pod, claims):
    service_account_token(in_a_pod, claims)
    config = dataclasses.replace(ExecutorConfig(), in_cluster=True, worker_service_account_name="airflow-scheduler")
    with pytest.raises(ConfigError) as info:
        KubeClient.from_config(config)
    assert info.value.key == "worker_service_account_name"
    assert "is the scheduler's own service account (airflow-scheduler)" in str(info.value)
    allowed = dataclasses.replace(
        config, worker_service_account_name="airflow-worker", task_allowed_service_accounts=("airflow-scheduler",)
    )
    with pytest.raises(ConfigError) as info:
        KubeClient.from_config(allowed)
    assert info.value.key == "task_allowed_service_accounts"
    fine = dataclasses.replace(allowed, task_allowed_service_accounts=("team-a",))
    assert KubeClient.from_config(fine).request_timeout == 60.0
