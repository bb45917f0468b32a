"""API discovery: ``/api``, ``/api/v1`` and ``/apis``, listing exactly what the fake serves.

Clients that discover before they call - ``kubernetes.dynamic.DynamicClient``, which Airflow's
KubernetesExecutor uses to list its pods for adoption, and ``kubectl`` - need these documents.
``/apis`` lists metrics.k8s.io only while the metrics API is served (``metrics_enabled``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .metrics import GROUP_VERSION
from .routes import Request, Response

if TYPE_CHECKING:
    from .cluster import Cluster

_READ = ["get", "list", "watch"]
_WRITE = ["create", "delete", "deletecollection", "patch", "update"]
# name, kind, namespaced, verbs: the resources and subresources the routes serve (server.build_router).
_CORE = (
    ("pods", "Pod", True, _READ + _WRITE),
    ("pods/status", "Pod", True, ["get", "patch", "update"]),
    ("pods/log", "Pod", True, ["get"]),
    ("nodes", "Node", False, ["get", "list", "watch", "patch"]),
    ("events", "Event", True, _READ),
    ("namespaces", "Namespace", False, ["get", "list"]),
    ("resourcequotas", "ResourceQuota", True, _READ + _WRITE),
    ("configmaps", "ConfigMap", True, _READ + _WRITE),
    ("secrets", "Secret", True, _READ + _WRITE),
)


def core_resources() -> dict[str, Any]:
    resources = [
        {"name": name, "singularName": "" if "/" in name else kind.lower(), "namespaced": namespaced, "kind": kind,
         "verbs": verbs}
        for name, kind, namespaced, verbs in _CORE
    ]  # fmt: skip
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "v1", "resources": resources}


class DiscoveryApi:
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    def versions(self, req: Request) -> Response:
        return Response.of({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []})

    def core(self, req: Request) -> Response:
        return Response.of(core_resources())

    def groups(self, req: Request) -> Response:
        groups = []
        if self.cluster.config.metrics_enabled:
            version = {"groupVersion": GROUP_VERSION, "version": GROUP_VERSION.split("/")[1]}
            groups.append({"name": GROUP_VERSION.split("/")[0], "versions": [version], "preferredVersion": version})
        return Response.of({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
