"""One request/answer exchange with the API server, over whichever transport fits.

Plain requests go over the standard library's keep-alive connections
(:mod:`~airflow_k8s.executor.kube.transport`); streams (watches) and proxied clusters over the
official client's urllib3 pool.  Transport failures become ``KubeApiError`` with status 0 and
non-2xx answers the typed errors of :mod:`~airflow_k8s.executor.kube.decoding`; nothing is
retried here (:mod:`~airflow_k8s.executor.kube.retry` decides).
"""

from __future__ import annotations

import http.client
from typing import Any

import urllib3
from kubernetes.client.exceptions import ApiException

from airflow_k8s.executor.contract.errors import KubeApiError
from airflow_k8s.executor.kube import transport
from airflow_k8s.executor.kube.decoding import status_error
from airflow_k8s.executor.kube.request import ApiRequest

Timeout = float | tuple[float, float]


class Exchanger:
    """Sends :class:`~airflow_k8s.executor.kube.request.ApiRequest` s to one API server."""

    def __init__(self, api_client: Any, request_timeout: Timeout) -> None:
        self.api = api_client
        self.request_timeout = request_timeout
        self._timeouts: dict[Timeout, urllib3.Timeout] = {}
        configuration = api_client.configuration
        self.host = configuration.host.rstrip("/")
        parsed = urllib3.util.parse_url(configuration.host)
        self._origin = f"{parsed.scheme}://{parsed.netloc}"
        # One connection pool for the API server, looked up once instead of per request.
        self._pool = (
            None if configuration.proxy else api_client.rest_client.pool_manager.connection_from_url(self._origin)
        )
        self._direct = None if configuration.proxy else transport.Connections(configuration)

    def close(self) -> None:
        if self._direct is not None:
            self._direct.close()

    def answer(self, request: ApiRequest, timeout: Timeout | None = None) -> transport.Answer:
        """The whole answer to ``request``; a non-2xx status raises its typed ``KubeApiError``."""
        if self._direct is None:
            response = self.stream(request, timeout)
            try:
                data = response.data
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                raise KubeApiError(f"{request.what}: connection error while reading: {exc}", status=0) from exc
            finally:
                response.release_conn()
            return transport.Answer(response.status, response.reason, response.headers, data)
        value = timeout or self.request_timeout
        pair = value if isinstance(value, tuple) else (value, value)
        try:
            answer = self._direct.request(request.method, request.target, request.body, request.headers, pair)
        except (http.client.HTTPException, OSError) as exc:
            raise KubeApiError(f"{request.what}: connection error: {exc}", status=0) from exc
        if not 200 <= answer.status <= 299:
            retry = answer.headers.get("Retry-After")
            raise status_error(request.what, answer.status, answer.reason, retry, answer.data)
        return answer

    def stream(self, request: ApiRequest, timeout: Timeout | None = None) -> Any:
        """The urllib3 response to ``request`` with its body unread (2xx only; the caller releases it)."""
        try:
            url = f"{self.host}{request.target}"
            if self._pool is not None and url.startswith(self._origin):
                response = self._pool.urlopen(
                    request.method,
                    url[len(self._origin) :],
                    body=request.body,
                    headers=request.headers,
                    timeout=self._timeout(timeout),
                    preload_content=False,
                    retries=False,
                )
            else:  # proxies and other hosts: let the pool manager route it
                response = self.api.rest_client.pool_manager.request(
                    request.method,
                    url,
                    body=request.body,
                    headers=request.headers,
                    timeout=self._timeout(timeout),
                    preload_content=False,
                )
        except ApiException as exc:  # TLS problems surface here with status 0
            raise KubeApiError(f"{request.what}: {exc.reason}", status=exc.status or 0) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise KubeApiError(f"{request.what}: connection error: {exc}", status=0) from exc
        if not 200 <= response.status <= 299:
            raw = response.data or b""
            response.release_conn()
            retry = response.headers.get("Retry-After")
            raise status_error(request.what, response.status, response.reason, retry, raw)
        return response

    def _timeout(self, timeout: Timeout | None) -> urllib3.Timeout:
        value = timeout or self.request_timeout
        cached = self._timeouts.get(value)
        if cached is None:
            if isinstance(value, tuple):
                cached = urllib3.Timeout(connect=value[0], read=value[1])
            else:
                cached = urllib3.Timeout(total=value)
            self._timeouts[value] = cached
        return cached
