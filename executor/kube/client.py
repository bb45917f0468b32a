"""A thin, fast Kubernetes API layer over the official ``kubernetes`` client.

Why not the generated ``CoreV1Api`` methods with models: deserialising every pod into
``V1Pod`` objects costs milliseconds, and the executor handles tens of thousands of pod events.
This layer still uses the official client for everything that matters - configuration loading
(kubeconfig or in-cluster service account, token refresh), authentication, TLS and connection
pooling - and works on plain JSON dicts.  It relies only on client APIs that are stable across
releases (``Configuration.auth_settings()``, the REST client's pool manager), so it runs on the
kubernetes 37.x this project pins and on the 36.x the Airflow image ships.

:meth:`KubeClient.from_config` honours Airflow's connection settings: ``client_factory``,
``in_cluster`` / ``config_file`` / ``cluster_context``, ``verify_ssl``, ``ssl_ca_cert``,
``enable_tcp_keepalive`` with ``tcp_keep_idle`` / ``_intvl`` / ``_cnt``, and the request timeout.

Every failure becomes a :class:`~airflow_k8s.executor.contract.errors.KubeApiError` with the HTTP status (0 for
connection errors), the Kubernetes Status ``reason`` and ``Retry-After``.  No retries happen
here; :mod:`airflow_k8s.executor.kube.retry` decides what to retry.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import socket
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import urllib3
from kubernetes import client as k8s_client
from kubernetes.client.exceptions import ApiException

from airflow_k8s.executor.contract import jsonfast
from airflow_k8s.executor.contract.errors import KubeApiError, api_error
from airflow_k8s.executor.kube import connection, transport

if TYPE_CHECKING:
    from airflow_k8s.executor.contract.config import ExecutorConfig

log = logging.getLogger(__name__)
_JSON = {"Accept": "application/json", "Content-Type": "application/json"}
_MERGE_PATCH = {"Accept": "application/json", "Content-Type": "application/merge-patch+json"}


@dataclass(frozen=True)
class PodList:
    items: list[dict[str, Any]]
    resource_version: str


class WatchStream:
    """The events of one open watch, iterated once; :meth:`close` ends it from any thread.

    Closing shuts the socket down, so a read blocked on a quiet watch returns at once and the
    iteration simply ends (no error: the caller asked for it).
    """

    def __init__(self, response: Any, path: str) -> None:
        self._response = response
        self._path = path
        self._closed = threading.Event()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        response = self._response
        try:
            buffer = b""
            for chunk in response.stream(amt=None, decode_content=False):
                data = buffer + chunk if buffer else chunk
                *lines, buffer = data.split(b"\n")
                for line in lines:
                    if line.strip():
                        yield jsonfast.loads(line)
            if buffer.strip() and not self._closed.is_set():
                yield jsonfast.loads(buffer)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            if self._closed.is_set():
                return
            raise KubeApiError(f"watch {self._path}: connection lost: {exc}", status=0) from exc
        except ValueError as exc:  # JSONDecodeError / orjson.JSONDecodeError
            if self._closed.is_set():  # a line cut short by close()
                return
            raise KubeApiError(f"watch {self._path}: malformed event: {exc}", status=0) from exc
        finally:
            response.release_conn()

    def close(self) -> None:
        """End the watch now; safe from any thread, more than once, and after the stream ended."""
        if self._closed.is_set():
            return
        self._closed.set()
        sock = getattr(getattr(self._response, "connection", None), "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class KubeClient:
    """Pods, nodes, logs and metrics of one cluster, as plain dicts."""

    def __init__(
        self, api_client: k8s_client.ApiClient, *, request_timeout: float | tuple[float, float] = 60.0
    ) -> None:
        self.api = api_client
        self.request_timeout = request_timeout
        self._timeouts: dict[float | tuple[float, float], urllib3.Timeout] = {}
        # One connection pool for the API server, looked up once instead of per request.
        configuration = api_client.configuration
        self._host = configuration.host.rstrip("/")
        parsed = urllib3.util.parse_url(configuration.host)
        self._origin = f"{parsed.scheme}://{parsed.netloc}"
        self._pool = (
            None if configuration.proxy else api_client.rest_client.pool_manager.connection_from_url(self._origin)
        )
        # Plain requests go over the standard library's keep-alive connections (kube/transport.py);
        # streams and proxied clusters over the official client's urllib3 pool.
        self._direct = None if configuration.proxy else transport.Connections(configuration)

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def for_host(
        cls, host: str, *, pool_size: int = 16, request_timeout: float | tuple[float, float] = 60.0
    ) -> KubeClient:
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
        request_timeout: float | tuple[float, float] = 60.0,
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
        if self._direct is not None:
            self._direct.close()
        self.api.close()

    # -- transport ------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        query: list[tuple[str, Any]] | None = None,
        body: Any = None,
        headers: Mapping[str, str] = _JSON,
        timeout: float | tuple[float, float] | None = None,
        stream: bool = False,
        decode: bool = True,
    ) -> Any:
        """One API call; returns parsed JSON (or the raw urllib3 response when ``stream``).

        The official client's configuration supplies the authentication headers (bearer tokens
        are refreshed by its hooks) and owns the TLS connection pool; the body is encoded and the
        response decoded here, with :mod:`~airflow_k8s.executor.contract.jsonfast`, skipping the
        client's generic (and slow) serialisation layer.
        """
        what = f"{method} {path}"
        if self._direct is not None and not stream:
            return self._request_direct(method, path, query, body, headers, timeout, decode)
        try:
            url = f"{self._host}{path}?{urlencode(query)}" if query else f"{self._host}{path}"
            header_params = self._headers(headers)
            payload = None if body is None else jsonfast.dumps(body)
            if self._pool is not None and url.startswith(self._origin):
                response = self._pool.urlopen(
                    method,
                    url[len(self._origin) :],
                    body=payload,
                    headers=header_params,
                    timeout=self._timeout(timeout),
                    preload_content=False,
                    retries=False,
                )
            else:  # proxies and other hosts: let the pool manager route it
                response = self.api.rest_client.pool_manager.request(
                    method,
                    url,
                    body=payload,
                    headers=header_params,
                    timeout=self._timeout(timeout),
                    preload_content=False,
                )
        except ApiException as exc:  # TLS problems surface here with status 0
            raise KubeApiError(f"{what}: {exc.reason}", status=exc.status or 0) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise KubeApiError(
                f"{what}: connection error: cannot reach the API server {self._host}: {exc}", status=0
            ) from exc
        if not 200 <= response.status <= 299:
            raw = response.data or b""
            response.release_conn()
            raise _status_error(what, response.status, response.reason, response.headers.get("Retry-After"), raw)
        if stream:
            return response
        try:
            data = response.data
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise KubeApiError(f"{what}: connection error while reading: {exc}", status=0) from exc
        finally:
            response.release_conn()
        return _decoded(data, response.headers.get("content-type"), decode)

    def _request_direct(
        self,
        method: str,
        path: str,
        query: list[tuple[str, Any]] | None,
        body: Any,
        headers: Mapping[str, str],
        timeout: float | tuple[float, float] | None,
        decode: bool,
    ) -> Any:
        assert self._direct is not None
        what = f"{method} {path}"
        value = timeout or self.request_timeout
        pair = value if isinstance(value, tuple) else (value, value)
        try:
            target = f"{path}?{urlencode(query)}" if query else path
            payload = None if body is None else jsonfast.dumps(body)
            answer = self._direct.request(method, target, payload, self._headers(headers), pair)
        except ApiException as exc:  # raised by the configuration's token refresh hooks
            raise KubeApiError(f"{what}: {exc.reason}", status=exc.status or 0) from exc
        except (http.client.HTTPException, OSError) as exc:
            raise KubeApiError(
                f"{what}: connection error: cannot reach the API server {self._host}: {exc}", status=0
            ) from exc
        if not 200 <= answer.status <= 299:
            raise _status_error(what, answer.status, answer.reason, answer.headers.get("Retry-After"), answer.data)
        return _decoded(answer.data, answer.headers.get("content-type"), decode)

    def _headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        out = {**self.api.default_headers, **headers}
        for setting in self.api.configuration.auth_settings().values():
            if setting.get("in") == "header" and setting.get("value"):
                out[setting["key"]] = setting["value"]
        return out

    def _timeout(self, timeout: float | tuple[float, float] | None) -> urllib3.Timeout:
        value = timeout or self.request_timeout
        cached = self._timeouts.get(value)
        if cached is None:
            if isinstance(value, tuple):
                cached = urllib3.Timeout(connect=value[0], read=value[1])
            else:
                cached = urllib3.Timeout(total=value)
            self._timeouts[value] = cached
        return cached

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
        return self._object("PATCH", path, body=body, headers=_MERGE_PATCH)

    def list_pods(self, namespace: str | None, *, label_selector: str | None = None, page_size: int = 500) -> PodList:
        """All matching pods (following ``continue`` pages) and the list's resourceVersion."""
        path = f"/api/v1/namespaces/{namespace}/pods" if namespace else "/api/v1/pods"
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            query: list[tuple[str, Any]] = [("limit", page_size)]
            if label_selector:
                query.append(("labelSelector", label_selector))
            if token:
                query.append(("continue", token))
            page = self.request("GET", path, query=query)
            items.extend(page.get("items") or [])
            metadata = page.get("metadata") or {}
            token = metadata.get("continue")
            if not token:
                return PodList(items, str(metadata.get("resourceVersion", "")))

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
        return list(self.request("GET", "/api/v1/nodes").get("items") or [])

    def pod_metrics(self, namespace: str) -> list[dict[str, Any]]:
        """metrics.k8s.io PodMetrics (KubeApiError 404 when the metrics API is not installed)."""
        path = f"/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods"
        return list(self.request("GET", path).get("items") or [])


def _decoded(data: bytes, content_type: str | None, decode: bool) -> Any:
    if not decode:  # the caller only needs success (DELETE answers with the whole object)
        return None
    if "json" not in (content_type or ""):
        return data.decode("utf-8", errors="replace")
    return jsonfast.loads(data)


def _status_error(
    what: str, status: int, http_reason: str | None, retry_header: str | None, raw: bytes
) -> KubeApiError:
    """Turn a non-2xx response into KubeApiError with the Status reason and Retry-After."""
    reason, message, body = "", "", None
    try:
        body = jsonfast.loads(raw)
        reason = body.get("reason") or ""
        message = body.get("message") or ""
    except (ValueError, AttributeError):
        message = raw[:200].decode("utf-8", errors="replace")
    retry_after = None
    header = retry_header
    if header:
        try:
            retry_after = max(0.0, float(header))
        except ValueError:
            retry_after = None
    return api_error(
        f"{what}: HTTP {status} {reason or http_reason}: {message}".rstrip(": "),
        status=status,
        reason=reason,
        retry_after=retry_after,
        body=body,
    )
