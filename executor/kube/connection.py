"""Building the official client's ``ApiClient`` from the settings Airflow and kubeconfigs give.

Kept apart from :mod:`~airflow_k8s.executor.kube.client` (which only moves requests): credentials
from the in-cluster service account or a kubeconfig, Airflow's ``client_factory``, TLS
verification and CA, TCP keepalive, and the connection pool sized for the concurrent launchers
with urllib3's own retries off (the executor counts and logs its retries itself).
"""

from __future__ import annotations

import base64
import binascii
import importlib
import json
import socket
from pathlib import Path

import urllib3
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from airflow_k8s.executor.contract.errors import ConfigError, KubeApiError

TOKEN_PATH = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")


def load(in_cluster: bool, config_file: str | None, context: str | None) -> k8s_client.Configuration:
    configuration = k8s_client.Configuration()
    try:
        if in_cluster:
            k8s_config.load_incluster_config(client_configuration=configuration)
        else:
            k8s_config.load_kube_config(config_file=config_file, context=context, client_configuration=configuration)
    except (k8s_config.ConfigException, OSError) as exc:
        where = "in-cluster service account" if in_cluster else f"kubeconfig {config_file or '(default)'}"
        hint = (
            " - not running in a pod? Outside a cluster set [kubernetes_executor] in_cluster = False and "
            "config_file = <kubeconfig path> (or pass --kubeconfig / --api-url to the operator commands)"
            if in_cluster
            else ""
        )
        raise KubeApiError(f"cannot load Kubernetes credentials from {where}: {exc}{hint}") from exc
    return configuration


def from_factory(path: str) -> k8s_client.Configuration:
    """The configuration of the ``CoreV1Api`` Airflow's ``client_factory`` callable returns."""
    module_name, _, attribute = path.rpartition(".")
    where = {"section": "kubernetes_executor", "key": "client_factory", "value": path}
    try:
        factory = getattr(importlib.import_module(module_name), attribute)
        api = factory()
    except Exception as exc:  # an import or a factory failure: report it naming the setting
        raise ConfigError(f"cannot build a client: {type(exc).__name__}: {exc}", **where) from exc
    configuration = getattr(getattr(api, "api_client", None), "configuration", None)
    if not isinstance(configuration, k8s_client.Configuration):
        raise ConfigError("the factory must return a kubernetes.client.CoreV1Api", **where)
    return configuration


def keepalive(idle: int, interval: int, count: int) -> list[tuple[int, int, int]]:
    """Socket options for TCP keepalive, as Airflow sets them (options the platform lacks are skipped)."""
    options = [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)]
    for name, value in (("TCP_KEEPIDLE", idle), ("TCP_KEEPINTVL", interval), ("TCP_KEEPCNT", count)):
        if hasattr(socket, name):
            options.append((socket.IPPROTO_TCP, getattr(socket, name), value))
    return [*urllib3.connection.HTTPConnection.default_socket_options, *options]


def tuned(configuration: k8s_client.Configuration, pool_size: int) -> k8s_client.ApiClient:
    """Pool size for the concurrent launchers; urllib3's own retries off (ours count and log them)."""
    configuration.connection_pool_maxsize = pool_size
    configuration.retries = False
    return k8s_client.ApiClient(configuration)


def own_service_account(token_path: Path | None = None) -> str | None:
    """The service account this process runs as (in a pod), from its token's claims; None when unknown.

    The claims are read, not verified: this only guards against configuring task pods with the
    scheduler's own identity, it grants nothing.
    """
    try:
        payload = (token_path or TOKEN_PATH).read_text().strip().split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (OSError, IndexError, ValueError, binascii.Error, UnicodeDecodeError):
        return None
    if not isinstance(claims, dict):
        return None
    bound = claims.get("kubernetes.io")
    if isinstance(bound, dict) and isinstance(bound.get("serviceaccount"), dict):  # projected (bound) tokens
        name = bound["serviceaccount"].get("name")
        return name if isinstance(name, str) else None
    legacy = claims.get("kubernetes.io/serviceaccount/service-account.name")  # secret-based tokens
    return legacy if isinstance(legacy, str) else None


def refuse_own_service_account(worker: str | None, task_allowed: tuple[str, ...], own: str | None) -> None:
    """A ConfigError when task pods could run as the scheduler itself (its rights to create and delete pods)."""
    if own is None:
        return
    why = f"is the scheduler's own service account ({own}): task pods would get its rights to create and delete pods"
    if worker == own:
        raise ConfigError(why, section="kubernetes_executor", key="worker_service_account_name", value=worker)
    if own in task_allowed:
        raise ConfigError(why, section="kubernetes_executor", key="task_allowed_service_accounts", value=own)
