"""One request/answer exchange with the API server: a deadline for the whole of it, a cap on its size.

Plain requests go over the standard library's keep-alive connections
(:mod:`~airflow_k8s.executor.kube.transport`); streams (watches) and proxied clusters over the
official client's urllib3 pool.  Both are bounded the same way:

* **Deadline**: connect, headers and body together must finish within the request timeout
  (``kube_request_timeout`` seconds, or connect + read of ``_request_timeout = [connect, read]``);
  past it the socket is cut (:mod:`~airflow_k8s.executor.kube.deadlines`) and the call fails with
  ``DeadlineExceeded``.  A stream's headers get the same deadline; its body then gets its own.
* **Size**: an answer's body may not exceed ``max_bytes`` (``kube_max_response_mib``); a larger
  one fails with ``ResponseTooLarge`` without being read past the cap.
* **Cancel**: :meth:`Exchanger.cancel` cuts every exchange of a scope and refuses new ones.

Every error names the server and the request (``GET https://10.0.0.1:6443/api/v1/pods``).
Transport failures become ``KubeApiError`` with status 0 and non-2xx answers the typed errors of
:mod:`~airflow_k8s.executor.kube.decoding`; nothing is retried here
(:mod:`~airflow_k8s.executor.kube.retry` decides).
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import urllib3
from kubernetes.client.exceptions import ApiException

from airflow_k8s.executor.contract.errors import Cancelled, DeadlineExceeded, KubeApiError, ResponseTooLarge
from airflow_k8s.executor.kube import transport
from airflow_k8s.executor.kube.deadlines import Reaper, Scope, Ticket
from airflow_k8s.executor.kube.decoding import status_error
from airflow_k8s.executor.kube.request import ApiRequest

Timeout = float | tuple[float, float]
DEFAULT_MAX_BYTES = 64 << 20
_PIECE = 1 << 16
_current = threading.local()  # the ticket of the exchange this thread is opening over urllib3


def whole(timeout: Timeout) -> float:
    """The deadline of a whole exchange for a request timeout: connect + read for a pair."""
    return float(timeout[0] + timeout[1]) if isinstance(timeout, tuple) else float(timeout)


@dataclass(frozen=True)
class Stream:
    """An open streamed answer (2xx): the urllib3 response, unread, and the ticket bounding it."""

    response: Any
    ticket: Ticket
    what: str

    def release(self) -> None:
        self.ticket.end()
        self.response.release_conn()


class Exchanger:
    """Sends :class:`~airflow_k8s.executor.kube.request.ApiRequest` s to one API server."""

    def __init__(
        self,
        api_client: Any,
        request_timeout: Timeout,
        max_bytes: int = DEFAULT_MAX_BYTES,
        on_dropped: Callable[[], None] | None = None,
    ) -> None:
        self.api = api_client
        self.request_timeout = request_timeout
        self.max_bytes = max_bytes
        self.reaper = Reaper()
        self._timeouts: dict[Timeout, urllib3.Timeout] = {}
        configuration = api_client.configuration
        self.host = configuration.host.rstrip("/")
        parsed = urllib3.util.parse_url(configuration.host)
        self._origin = f"{parsed.scheme}://{parsed.netloc}"
        manager = api_client.rest_client.pool_manager
        manager.pool_classes_by_scheme = {
            scheme: _hooked_pool(cls) for scheme, cls in manager.pool_classes_by_scheme.items()
        }
        # One connection pool for the API server, looked up once instead of per request.
        self._pool = None if configuration.proxy else manager.connection_from_url(self._origin)
        self._direct = None if configuration.proxy else transport.Connections(configuration, on_dropped)

    def close(self) -> None:
        if self._direct is not None:
            self._direct.close()

    def cancel(self, scope: Scope) -> int:
        """Cut every exchange of ``scope`` in flight and refuse new ones; returns how many were cut."""
        return self.reaper.cancel(scope)

    def what(self, request: ApiRequest) -> str:
        """The request as errors name it: method and URL (server included), without the query."""
        return self.describe(request.method, request.path)

    def describe(self, method: str, path: str) -> str:
        return f"{method} {self.host}{path}"

    # -- whole answers ---------------------------------------------------------------------------
    def answer(self, request: ApiRequest, scope: Scope, timeout: Timeout | None = None) -> transport.Answer:
        """The whole answer to ``request``; a non-2xx status raises its typed ``KubeApiError``."""
        value = timeout or self.request_timeout
        if self._direct is None:
            stream = self.stream(request, scope, timeout)
            try:
                data = self._read_capped(stream)
            finally:
                stream.release()
            return transport.Answer(stream.response.status, stream.response.reason, stream.response.headers, data)
        what = self.what(request)
        ticket = self._begin(what, whole(value), scope)
        pair = value if isinstance(value, tuple) else (value, value)
        try:
            answer = self._direct.request(
                request.method, request.target, request.body, request.headers, pair, ticket=ticket, limit=self.max_bytes
            )
        except transport.TooLarge as exc:
            raise ResponseTooLarge(f"{what}: {exc}", status=exc.status) from exc
        except (http.client.HTTPException, OSError, ValueError) as exc:
            raise _cut_or_lost(what, ticket, exc, whole(value)) from exc
        finally:
            ticket.end()
        if not 200 <= answer.status <= 299:
            retry = answer.headers.get("Retry-After")
            raise status_error(what, answer.status, answer.reason, retry, answer.data)
        return answer

    # -- streams ---------------------------------------------------------------------------------
    def stream(
        self, request: ApiRequest, scope: Scope, timeout: Timeout | None = None, *, deadline: float | None = None
    ) -> Stream:
        """The open answer to ``request`` (2xx only; the caller releases it).

        ``timeout`` bounds each step (connect, read); ``deadline`` (default: the whole of
        ``timeout``) the exchange until the caller extends the ticket.
        """
        value = timeout or self.request_timeout
        what = self.what(request)
        ticket = self._begin(what, deadline or whole(value), scope)
        _current.ticket = ticket
        try:
            url = f"{self.host}{request.target}"
            if self._pool is not None and url.startswith(self._origin):
                response = self._pool.urlopen(
                    request.method,
                    url[len(self._origin) :],
                    body=request.body,
                    headers=request.headers,
                    timeout=self._timeout(value),
                    preload_content=False,
                    retries=False,
                )
            else:  # proxies and other hosts: let the pool manager route it
                response = self.api.rest_client.pool_manager.request(
                    request.method,
                    url,
                    body=request.body,
                    headers=request.headers,
                    timeout=self._timeout(value),
                    preload_content=False,
                    retries=False,
                )
        except ApiException as exc:  # TLS problems surface here with status 0
            ticket.end()
            raise KubeApiError(f"{what}: {exc.reason}", status=exc.status or 0) from exc
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            ticket.end()
            raise _cut_or_lost(what, ticket, exc, deadline or whole(value)) from exc
        finally:
            _current.ticket = None
        stream = Stream(response, ticket, what)
        if not 200 <= response.status <= 299:
            try:
                raw = self._read_capped(stream)
            finally:
                stream.release()
            raise status_error(what, response.status, response.reason, response.headers.get("Retry-After"), raw)
        return stream

    def _read_capped(self, stream: Stream) -> bytes:
        response, limit = stream.response, self.max_bytes
        declared = response.headers.get("content-length")
        try:
            if declared is not None and declared.isdigit() and int(declared) > limit:
                raise transport.TooLarge(response.status, limit, int(declared))
            data = bytearray()
            while piece := response.read(_PIECE, decode_content=False):
                data += piece
                if len(data) > limit:
                    raise transport.TooLarge(response.status, limit, None)
        except transport.TooLarge as exc:
            response.close()  # never read the rest: the connection is closed instead
            raise ResponseTooLarge(f"{stream.what}: {exc}", status=exc.status) from exc
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            raise _cut_or_lost(stream.what, stream.ticket, exc, stream.ticket.remaining(), reading=True) from exc
        return bytes(data)

    def _begin(self, what: str, seconds: float, scope: Scope) -> Ticket:
        ticket = self.reaper.begin(seconds, scope)
        if ticket is None:
            raise Cancelled(f"{what}: the client is shutting down", status=0)
        return ticket

    def _timeout(self, value: Timeout) -> urllib3.Timeout:
        cached = self._timeouts.get(value)
        if cached is None:
            if isinstance(value, tuple):
                cached = urllib3.Timeout(connect=value[0], read=value[1])
            else:
                cached = urllib3.Timeout(connect=value, read=value)
            self._timeouts[value] = cached
        return cached


def _cut_or_lost(
    what: str, ticket: Ticket, exc: BaseException, seconds: float, *, reading: bool = False
) -> KubeApiError:
    """The error for an exchange that broke: cut by its deadline, cut by a cancel, or lost."""
    if ticket.cancelled:
        return Cancelled(f"{what}: the client is shutting down", status=0)
    if ticket.expired:
        return DeadlineExceeded(f"{what}: no complete answer within the {seconds:g}s deadline", status=0)
    step = "connection error while reading" if reading else "connection error"
    return KubeApiError(f"{what}: {step}: {exc}", status=0)


# -- urllib3: tie each connection to the ticket of the exchange using it -----------------------------
def _hooked_connection(base: type) -> type:
    """``base`` (a urllib3 connection class) attaching itself to the opening thread's ticket."""

    class Hooked(base):
        def connect(self) -> None:
            ticket: Ticket | None = getattr(_current, "ticket", None)
            if ticket is not None:
                ticket.attach(self)
            super().connect()
            if ticket is not None:
                ticket.connected()

        def request(self, *args: Any, **kwargs: Any) -> Any:
            ticket: Ticket | None = getattr(_current, "ticket", None)
            if ticket is not None:
                ticket.attach(self)  # a reused keep-alive connection: no connect() this time
            return super().request(*args, **kwargs)

    Hooked.__name__ = f"Deadline{base.__name__}"
    return Hooked


def _hooked_pool(pool: type[urllib3.HTTPConnectionPool]) -> type:
    if getattr(pool, "_deadline_hooked", False):
        return pool
    attributes = {"ConnectionCls": _hooked_connection(pool.ConnectionCls), "_deadline_hooked": True}
    return type(f"Deadline{pool.__name__}", (pool,), attributes)
