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
from airflow_k8s.executor.contract.errors import Cancelled, KubeApiError
from airflow_k8s.executor.kube import connection, decoding, paging, slimpod
from airflow_k8s.executor.kube import request as requests
from airflow_k8s.executor.kube.deadlines import Scope
from airflow_k8s.executor.kube.disruption import Disruptions
from airflow_k8s.executor.kube.exchange import DEFAULT_MAX_BYTES, Exchanger, Timeout, whole
from airflow_k8s.executor.kube.paging import PodList
from airflow_k8s.executor.kube.watchstream import WatchStream

if TYPE_CHECKING:
    from airflow_k8s.executor.contract.config import ExecutorConfig

__all__ = ["KubeClient", "PodList", "WatchStream"]

log = logging.getLogger(__name__)
WATCH_CONNECT_TIMEOUT = 10.0


class KubeClient:
    """Pods, nodes, logs and metrics of one cluster, as plain dicts."""

    def __init__(
        self,
        api_client: k8s_client.ApiClient,
        *,
        request_timeout: Timeout = 60.0,
        max_response_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self.api = api_client
        self.request_timeout = request_timeout
        self.max_response_bytes = max_response_bytes
        self.disruptions = Disruptions()  # shared by every scoped view: the watcher notes, the launcher reads
        dropped = lambda: self.disruptions.note("connection closed by the server")  # noqa: E731
        self._exchange = Exchanger(api_client, request_timeout, max_response_bytes, on_dropped=dropped)
        self._scope = Scope()
        self._root = True

    def scoped(self) -> KubeClient:
        """A view of this client (same connections, deadlines and disruption record) that
        :meth:`cancel` ends on its own: an engine cancels its own calls at stop, not its owner's."""
        view = object.__new__(KubeClient)
        view.__dict__.update(self.__dict__)
        view._scope = Scope(parent=self._scope)
        view._root = False
        return view

    def cancel(self) -> int:
        """Cut every call of this client (or view) in flight and refuse new ones with ``Cancelled``.

        Returns how many calls were in flight.  Threads blocked in a call return at once, so a
        shutdown waits for no server.
        """
        return self._exchange.cancel(self._scope)

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def for_host(
        cls,
        host: str,
        *,
        pool_size: int = 16,
        request_timeout: Timeout = 60.0,
        max_response_bytes: int = DEFAULT_MAX_BYTES,
    ) -> KubeClient:
        """A client for an unauthenticated API URL (tests, ``kubectl proxy``)."""
        configuration = k8s_client.Configuration()
        configuration.host = host
        tuned = connection.tuned(configuration, pool_size)
        return cls(tuned, request_timeout=request_timeout, max_response_bytes=max_response_bytes)

    @classmethod
    def from_settings(
        cls,
        *,
        in_cluster: bool,
        config_file: str | None = None,
        context: str | None = None,
        pool_size: int = 16,
        request_timeout: Timeout = 60.0,
        max_response_bytes: int = DEFAULT_MAX_BYTES,
    ) -> KubeClient:
        """In-cluster service account, or a kubeconfig (``$KUBECONFIG`` / ~/.kube/config)."""
        configuration = connection.load(in_cluster, config_file, context)
        tuned = connection.tuned(configuration, pool_size)
        return cls(tuned, request_timeout=request_timeout, max_response_bytes=max_response_bytes)

    @classmethod
    def from_config(cls, config: ExecutorConfig, *, pool_size: int = 16) -> KubeClient:
        """The client airflow.cfg describes (module docstring); ``verify_ssl = False`` is logged loudly.

        In a pod, a worker service account (or one a task may switch to) that is the scheduler's
        own is a ``ConfigError``: task pods must never get the rights to create and delete pods.
        """
        if config.client_factory:
            configuration = connection.from_factory(config.client_factory)
        else:
            configuration = connection.load(config.in_cluster, config.config_file, config.cluster_context)
        if config.in_cluster:
            own = connection.own_service_account()
            accounts = config.task_allowed_service_accounts
            connection.refuse_own_service_account(config.worker_service_account_name, accounts, own)
        if config.ssl_ca_cert:
            configuration.ssl_ca_cert = config.ssl_ca_cert
        if not config.verify_ssl:
            log.warning("[kubernetes_executor] verify_ssl = False: the API server's certificate is not checked")
            configuration.verify_ssl = False
        if config.enable_tcp_keepalive:
            timers = (config.tcp_keep_idle, config.tcp_keep_intvl, config.tcp_keep_cnt)
            configuration.socket_options = connection.keepalive(*timers)
        return cls(
            connection.tuned(configuration, pool_size),
            request_timeout=config.request_timeout(),
            max_response_bytes=config.kube_max_response_mib << 20,
        )

    def close(self) -> None:
        """Cancel every call in flight; the client (not a view) also closes its connections."""
        self.cancel()
        if self._root:
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
        decode: bool = True,
    ) -> Any:
        """One API call; returns its JSON (text when the answer is not JSON; None without ``decode``).

        The official client's configuration supplies the authentication headers (bearer tokens
        are refreshed by its hooks); the body is encoded and the answer decoded here, with
        :mod:`~airflow_k8s.executor.contract.jsonfast`, skipping the client's generic (and slow)
        serialisation layer.  The call ends within its deadline and reads at most
        ``max_response_bytes`` (:mod:`~airflow_k8s.executor.kube.exchange`).
        """
        answer = self._answer(method, path, query=query, body=body, headers=headers, timeout=timeout)
        if not decode:  # the caller only needs success (DELETE answers with the whole object)
            return None
        if "json" not in (answer.headers.get("content-type") or ""):
            return decoding.text(answer)
        return decoding.json_value(answer, self._exchange.describe(method, path))

    def _answer(self, method: str, path: str, **kwargs: Any) -> Any:
        timeout = kwargs.pop("timeout", None)
        try:
            built = requests.build(self.api, method, path, **kwargs)
        except ApiException as exc:  # raised by the configuration's token refresh hooks
            raise KubeApiError(f"{method} {path}: {exc.reason}", status=exc.status or 0) from exc
        try:
            return self._exchange.answer(built, self._scope, timeout)
        except KubeApiError as exc:
            self._noted(exc)
            raise

    def _object(self, method: str, path: str, loads: Any = jsonfast.loads, **kwargs: Any) -> dict[str, Any]:
        """A call whose answer must be one JSON object (a pod, a list page)."""
        answer = self._answer(method, path, **kwargs)
        return decoding.json_object(answer, self._exchange.describe(method, path), loads)

    def _noted(self, error: KubeApiError) -> None:
        """A lost connection, a missed deadline or a 5xx is a disruption of the API server (see retry.py)."""
        if not isinstance(error, Cancelled) and (error.status == 0 or error.status >= 500):
            self.disruptions.note(type(error).__name__)

    # -- pods -----------------------------------------------------------------------------
    def create_pod(self, namespace: str, pod: Mapping[str, Any], *, slim: bool = False) -> dict[str, Any]:
        """Create a pod; the answer is the created pod (``slim``: its spec left undecoded, see kube/slimpod.py)."""
        loads = slimpod.pod if slim else jsonfast.loads
        return self._object("POST", f"/api/v1/namespaces/{namespace}/pods", loads=loads, body=pod)

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
        return self._list(path, label_selector=label_selector, page_size=page_size)

    def _list(self, path: str, *, label_selector: str | None = None, page_size: int = 500) -> PodList:
        return paging.list_all(
            lambda query: self._object("GET", path, query=query),
            what=self._exchange.describe("GET", path),
            label_selector=label_selector,
            page_size=page_size,
        )

    def watch_pods(
        self,
        namespace: str | None,
        *,
        label_selector: str | None,
        resource_version: str,
        timeout_seconds: int,
        read_timeout: float,
        slim: bool = False,
    ) -> WatchStream:
        """An open watch: raw events (``{"type": ..., "object": {...}}``), bookmarks included.

        The server ends the stream after ``timeout_seconds``; ``read_timeout`` bounds silence on
        the socket (the client library's ``_request_timeout``), so a half-dead connection cannot
        hang the watcher forever.  The headers must come within the request deadline and the whole
        stream must end within ``timeout_seconds`` plus the request timeout, so a server that keeps
        trickling bytes cannot hold it open either; each event is at most ``max_response_bytes``.
        A real server may stay silent for most of ``timeoutSeconds`` (its watch cache bookmarks
        about once a minute), so :meth:`WatchStream.close` exists to end a watch from another
        thread without waiting for the next event.  ``slim``: each pod's spec is left undecoded but
        for ``nodeName`` (kube/slimpod.py).
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
        try:
            built = requests.build(self.api, "GET", path, query=query)
        except ApiException as exc:
            raise KubeApiError(f"GET {path}: {exc.reason}", status=exc.status or 0) from exc
        deadline = whole(self.request_timeout)
        try:
            stream = self._exchange.stream(built, self._scope, (WATCH_CONNECT_TIMEOUT, read_timeout), deadline=deadline)
        except KubeApiError as exc:
            self._noted(exc)
            raise
        stream.ticket.extend(timeout_seconds + deadline)  # the headers came in time: now the stream's own
        return WatchStream(stream, self.max_response_bytes, slimpod.event if slim else jsonfast.loads)

    def read_pod_log(self, namespace: str, name: str, *, container: str = "base", tail_lines: int = 20) -> str:
        query = [("container", container), ("tailLines", tail_lines)]
        headers = {"Accept": "text/plain, */*"}
        path = f"/api/v1/namespaces/{namespace}/pods/{name}/log"
        return decoding.text(self._answer("GET", path, query=query, headers=headers))

    def pod_events(
        self, namespace: str, name: str, uid: str | None = None, *, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Events about one pod (``involvedObject`` name, and uid when given), as the API lists them."""
        selector = f"involvedObject.kind=Pod,involvedObject.name={name}"
        if uid:
            selector += f",involvedObject.uid={uid}"
        query: list[tuple[str, Any]] = [("fieldSelector", selector), ("limit", limit)]
        return list(self.request("GET", f"/api/v1/namespaces/{namespace}/events", query=query).get("items") or [])

    # -- cluster --------------------------------------------------------------------------
    def list_nodes(self) -> list[dict[str, Any]]:
        """Every node, page by page."""
        return self._list("/api/v1/nodes").items

    def pod_metrics(self, namespace: str) -> list[dict[str, Any]]:
        """metrics.k8s.io PodMetrics, page by page (KubeApiError 404 when the metrics API is not installed)."""
        return self._list(f"/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods").items
