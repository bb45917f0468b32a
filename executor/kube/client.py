"""The executor's Kubernetes API client: pods, nodes, logs and metrics of one cluster, as plain JSON dicts.

Why not the generated ``CoreV1Api`` methods with models: deserialising every pod into
``V1Pod`` objects costs milliseconds, and the executor handles tens of thousands of pod events.
This layer still uses the official client for everything that matters - configuration loading
(kubeconfig or in-cluster service account, token refresh), authentication, TLS and connection
pooling - and works on plain JSON dicts.  It relies only on client APIs that are stable across
releases (``Configuration.auth_settings()``, the REST client's pool manager), so it runs on the
kubernetes 37.x this project pins and on the 36.x the Airflow image ships.

What it does is split along the steps of a call: :mod:`~airflow_k8s.executor.kube.request`
builds a request, :mod:`~airflow_k8s.executor.kube.exchange` carries one exchange,
:mod:`~airflow_k8s.executor.kube.decoding` reads the answer or its error,
:mod:`~airflow_k8s.executor.kube.paging` follows a list's pages and
:mod:`~airflow_k8s.executor.kube.watchstream` reads a watch.

:meth:`KubeClient.from_config` honours Airflow's connection settings: ``client_factory``,
``in_cluster`` / ``config_file`` / ``cluster_context``, ``verify_ssl``, ``ssl_ca_cert``,
``enable_tcp_keepalive`` with ``tcp_keep_idle`` / ``_intvl`` / ``_cnt``, and the request timeout.

Every failure becomes a :class:`~airflow_k8s.executor.contract.errors.KubeApiError` with the HTTP status (0 for
connection errors), the Kubernetes Status ``reason`` and ``Retry-After``.  No retries happen
here; :mod:`airflow_k8s.executor.kube.retry` decides what to retry.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kubernetes import client as k8s_client
from kubernetes.client.exceptions import ApiException

from airflow_k8s.executor.contract import jsonfast
from airflow_k8s.executor.contract.errors import KubeApiError
from airflow_k8s.executor.kube import connection, paging
from airflow_k8s.executor.kube import request as requests
from airflow_k8s.executor.kube.decoding import decoded
from airflow_k8s.executor.kube.exchange import Exchanger, Timeout
from airflow_k8s.executor.kube.paging import PodList
from airflow_k8s.executor.kube.watchstream import WatchStream

if TYPE_CHECKING:
    from airflow_k8s.executor.contract.config import ExecutorConfig

__all__ = ["KubeClient", "PodList", "WatchStream"]

log = logging.getLogger(__name__)


class KubeClient:
    """Pods, nodes, logs and metrics of one cluster, as plain dicts."""

    def __init__(self, api_client: k8s_client.ApiClient, *, request_timeout: Timeout = 60.0) -> None:
        self.api = api_client
        self.request_timeout = request_timeout
        self._exchange = Exchanger(api_client, request_timeout)

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def for_host(cls, host: str, *, pool_size: int = 16, request_timeout: Timeout = 60.0) -> KubeClient:
        """A client for an unauthenticated API URL (tests, ``kubectl proxy``)."""
        configuration = k8s_client.Configuration()
        configuration.host = host
        return cls(connection.tuned(configuration, pool_size), request_timeout=request_timeout)

    @classmethod
    def from_settings(
        cls,
        *,
        in_cluster: bool,
        config_file: str | None = None,
        context: str | None = None,
        pool_size: int = 16,
        request_timeout: Timeout = 60.0,
    ) -> KubeClient:
        """In-cluster service account, or a kubeconfig (``$KUBECONFIG`` / ~/.kube/config)."""
        configuration = connection.load(in_cluster, config_file, context)
        return cls(connection.tuned(configuration, pool_size), request_timeout=request_timeout)

    @classmethod
    def from_config(cls, config: ExecutorConfig, *, pool_size: int = 16) -> KubeClient:
        """The client airflow.cfg describes (module docstring); ``verify_ssl = False`` is logged loudly."""
        if config.client_factory:
            configuration = connection.from_factory(config.client_factory)
        else:
            configuration = connection.load(config.in_cluster, config.config_file, config.cluster_context)
        if config.ssl_ca_cert:
            configuration.ssl_ca_cert = config.ssl_ca_cert
        if not config.verify_ssl:
            log.warning("[kubernetes_executor] verify_ssl = False: the API server's certificate is not checked")
            configuration.verify_ssl = False
        if config.enable_tcp_keepalive:
            timers = (config.tcp_keep_idle, config.tcp_keep_intvl, config.tcp_keep_cnt)
            configuration.socket_options = connection.keepalive(*timers)
        return cls(connection.tuned(configuration, pool_size), request_timeout=config.request_timeout())

    def close(self) -> None:
        self._exchange.close()
        self.api.close()

    # -- transport ------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        query: requests.Query | None = None,
        body: Any = None,
        headers: Mapping[str, str] = requests.JSON,
        timeout: Timeout | None = None,
        stream: bool = False,
        decode: bool = True,
    ) -> Any:
        """One API call; returns parsed JSON (or the raw urllib3 response when ``stream``).

        The official client's configuration supplies the authentication headers (bearer tokens
        are refreshed by its hooks) and owns the TLS connection pool; the body is encoded and the
        response decoded here, with :mod:`~airflow_k8s.executor.contract.jsonfast`, skipping the
        client's generic (and slow) serialisation layer.
        """
        try:
            built = requests.build(self.api, method, path, query=query, body=body, headers=headers)
        except ApiException as exc:  # raised by the configuration's token refresh hooks
            raise KubeApiError(f"{method} {path}: {exc.reason}", status=exc.status or 0) from exc
        if stream:
            return self._exchange.stream(built, timeout)
        answer = self._exchange.answer(built, timeout)
        return decoded(answer.data, answer.headers.get("content-type"), decode)

    # -- pods -----------------------------------------------------------------------------
    def _object(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """A call whose answer is one JSON object (a pod, a list)."""
        answer = self.request(method, path, **kwargs)
        if not isinstance(answer, dict):
            raise KubeApiError(f"{method} {path}: expected a JSON object, got {type(answer).__name__}")
        return answer

    def create_pod(self, namespace: str, pod: Mapping[str, Any]) -> dict[str, Any]:
        return self._object("POST", f"/api/v1/namespaces/{namespace}/pods", body=pod)

    def get_pod(self, namespace: str, name: str) -> dict[str, Any]:
        return self._object("GET", f"/api/v1/namespaces/{namespace}/pods/{name}")

    def delete_pod(
        self,
        namespace: str,
        name: str,
        *,
        grace_period: int | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        """Delete a pod; ``options`` are extra DeleteOptions fields (Airflow's ``delete_option_kwargs``)."""
        body: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
        body.update(options or {})
        if grace_period is not None:
            body["gracePeriodSeconds"] = grace_period
        self.request("DELETE", f"/api/v1/namespaces/{namespace}/pods/{name}", body=body, decode=False)

    def patch_pod_metadata(
        self, namespace: str, name: str, *, labels: Mapping[str, str | None] | None = None
    ) -> dict[str, Any]:
        """JSON merge patch of labels (None removes a label)."""
        body = {"metadata": {"labels": dict(labels or {})}}
        path = f"/api/v1/namespaces/{namespace}/pods/{name}"
        return self._object("PATCH", path, body=body, headers=requests.MERGE_PATCH)

    def list_pods(self, namespace: str | None, *, label_selector: str | None = None, page_size: int = 500) -> PodList:
        """All matching pods (following ``continue`` pages) and the list's resourceVersion."""
        path = f"/api/v1/namespaces/{namespace}/pods" if namespace else "/api/v1/pods"
        return paging.list_all(
            lambda query: self.request("GET", path, query=query), label_selector=label_selector, page_size=page_size
        )

    def watch_pods(
        self,
        namespace: str | None,
        *,
        label_selector: str | None,
        resource_version: str,
        timeout_seconds: int,
        read_timeout: float,
    ) -> WatchStream:
        """An open watch: raw events (``{"type": ..., "object": {...}}``), bookmarks included.

        The server ends the stream after ``timeout_seconds``; ``read_timeout`` bounds silence on
        the socket (the client library's ``_request_timeout``), so a half-dead connection cannot
        hang the watcher forever.  A real server may stay silent for most of ``timeoutSeconds``
        (its watch cache bookmarks about once a minute), so :meth:`WatchStream.close` exists to
        end a watch from another thread without waiting for the next event.
        """
        query: list[tuple[str, Any]] = [
            ("watch", "true"),
            ("allowWatchBookmarks", "true"),
            ("resourceVersion", resource_version),
            ("timeoutSeconds", timeout_seconds),
        ]
        if label_selector:
            query.append(("labelSelector", label_selector))
        path = f"/api/v1/namespaces/{namespace}/pods" if namespace else "/api/v1/pods"
        response = self.request("GET", path, query=query, stream=True, timeout=(10.0, read_timeout))
        return WatchStream(response, path)

    def read_pod_log(self, namespace: str, name: str, *, container: str = "base", tail_lines: int = 20) -> str:
        query = [("container", container), ("tailLines", tail_lines)]
        headers = {"Accept": "text/plain, */*"}
        result = self.request("GET", f"/api/v1/namespaces/{namespace}/pods/{name}/log", query=query, headers=headers)
        return result if isinstance(result, str) else jsonfast.dumps(result).decode("utf-8")

    # -- cluster --------------------------------------------------------------------------
    def list_nodes(self) -> list[dict[str, Any]]:
        return list(self.request("GET", "/api/v1/nodes").get("items") or [])

    def pod_metrics(self, namespace: str) -> list[dict[str, Any]]:
        """metrics.k8s.io PodMetrics (KubeApiError 404 when the metrics API is not installed)."""
        path = f"/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods"
        return list(self.request("GET", path).get("items") or [])
