"""Building one API request, without any I/O: target, JSON body, headers with the credentials.

Kept apart from the exchange (:mod:`~airflow_k8s.executor.kube.exchange`) so the request is
written once, whichever transport carries it (the standard library's keep-alive connections or
the official client's urllib3 pool), and so an error can name exactly what was asked.

The credentials come from the official client's ``Configuration.auth_settings()``: bearer tokens
of a service account or a kubeconfig are refreshed by the configuration's own hooks, which may
raise the client's ``ApiException`` (the exchange turns it into a ``KubeApiError``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from airflow_k8s.executor.contract import jsonfast

JSON = {"Accept": "application/json", "Content-Type": "application/json"}
MERGE_PATCH = {"Accept": "application/json", "Content-Type": "application/merge-patch+json"}

Query = Sequence[tuple[str, Any]]


@dataclass(frozen=True)
class ApiRequest:
    """One request as it goes on the wire; ``target`` is the path with its query string."""

    method: str
    path: str
    target: str
    body: bytes | None
    headers: dict[str, str]

    @property
    def what(self) -> str:
        """How errors and logs name the request: ``POST /api/v1/namespaces/x/pods``."""
        return f"{self.method} {self.path}"


def target(path: str, query: Query | None) -> str:
    return f"{path}?{urlencode(list(query))}" if query else path


def build(
    api_client: Any,
    method: str,
    path: str,
    *,
    query: Query | None = None,
    body: Any = None,
    headers: Mapping[str, str] = JSON,
) -> ApiRequest:
    """The request ``api_client`` (a ``kubernetes.client.ApiClient``) would send, body as JSON bytes."""
    return ApiRequest(
        method=method,
        path=path,
        target=target(path, query),
        body=None if body is None else jsonfast.dumps(body),
        headers=auth_headers(api_client, headers),
    )


def auth_headers(api_client: Any, headers: Mapping[str, str]) -> dict[str, str]:
    """``headers`` over the client's default headers, plus the credentials of its configuration."""
    out = {**api_client.default_headers, **headers}
    for setting in api_client.configuration.auth_settings().values():
        if setting.get("in") == "header" and setting.get("value"):
            out[setting["key"]] = setting["value"]
    return out
