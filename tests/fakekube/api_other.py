"""Nodes, events, namespaces, metrics.k8s.io, and the small unversioned endpoints (/version, /healthz...)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .api_pods import apply_request_patch
from .errors import not_found, path_not_found
from .listing import list_or_watch, object_filter
from .metrics import GROUP_VERSION, metrics_list, node_metrics, pod_metrics
from .routes import Request, Response, WatchResponse
from .updates import finalize_update

if TYPE_CHECKING:
    from .cluster import Cluster

VERSION = {
    "major": "1",
    "minor": "31",
    "gitVersion": "v1.31.0-fakekube",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2024-08-13T00:00:00Z",
    "goVersion": "go1.22.5",
    "compiler": "gc",
    "platform": "linux/amd64",
}
_METRICS_RESOURCES = {
    "kind": "APIResourceList",
    "apiVersion": "v1",
    "groupVersion": GROUP_VERSION,
    "resources": [
        {"name": "nodes", "singularName": "", "namespaced": False, "kind": "NodeMetrics", "verbs": ["get", "list"]},
        {"name": "pods", "singularName": "", "namespaced": True, "kind": "PodMetrics", "verbs": ["get", "list"]},
    ],
}


class OtherApi:
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.store = cluster.store

    # ------------------------------------------------------------------ nodes
    def list_nodes(self, req: Request) -> Response | WatchResponse:
        return list_or_watch(self.store, self.cluster.config, req, "nodes", "Node", None)

    def get_node(self, req: Request) -> Response:
        stored = self.store.get("nodes", "", req.params["name"])
        if stored is None:
            raise not_found("nodes", req.params["name"])
        return Response(200, stored.raw)

    def patch_node(self, req: Request) -> Response:
        name = req.params["name"]
        stored = self.store.update(
            "nodes", "", name, lambda cur: finalize_update("nodes", "Node", cur, apply_request_patch(req, cur))
        )
        return Response(200, stored.raw)

    # ----------------------------------------------------------------- events
    def list_events(self, req: Request) -> Response | WatchResponse:
        return list_or_watch(self.store, self.cluster.config, req, "events", "Event", req.params.get("namespace"))

    # ------------------------------------------------------------- namespaces
    @staticmethod
    def _namespace(name: str) -> dict:
        return {
            "kind": "Namespace",
            "apiVersion": "v1",
            "metadata": {
                "name": name,
                "labels": {"kubernetes.io/metadata.name": name},
                "resourceVersion": "1",
                "creationTimestamp": "2024-01-01T00:00:00Z",
            },
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"},
        }

    def list_namespaces(self, req: Request) -> Response:
        names = sorted({"default", "kube-system", *self.store.namespaces()})
        items = [self._namespace(n) for n in names]
        meta = {"resourceVersion": str(self.store.rv)}
        return Response.of({"kind": "NamespaceList", "apiVersion": "v1", "metadata": meta, "items": items})

    def get_namespace(self, req: Request) -> Response:
        """Namespaces are implicit: every name exists and is Active."""
        return Response.of(self._namespace(req.params["name"]))

    # ---------------------------------------------------------------- metrics
    def _check_metrics(self) -> None:
        if not self.cluster.config.metrics_enabled:
            raise path_not_found()

    def metrics_discovery(self, req: Request) -> Response:
        self._check_metrics()
        return Response.of(_METRICS_RESOURCES)

    def pod_metrics_list(self, req: Request) -> Response:
        self._check_metrics()
        flt = object_filter(req, "pods", req.params.get("namespace"))
        return Response.of(metrics_list("PodMetricsList", pod_metrics(self.store, self.cluster.kubelet, flt)))

    def pod_metrics_get(self, req: Request) -> Response:
        self._check_metrics()
        ns, name = req.params["namespace"], req.params["name"]
        flt = object_filter(req, "pods", ns)
        for item in pod_metrics(self.store, self.cluster.kubelet, flt):
            if item["metadata"]["name"] == name:
                return Response.of({"kind": "PodMetrics", "apiVersion": GROUP_VERSION, **item})
        raise not_found("pods.metrics.k8s.io", name, group="metrics.k8s.io")

    def node_metrics_list(self, req: Request) -> Response:
        self._check_metrics()
        return Response.of(metrics_list("NodeMetricsList", node_metrics(self.store, self.cluster.kubelet)))

    def node_metrics_get(self, req: Request) -> Response:
        self._check_metrics()
        for item in node_metrics(self.store, self.cluster.kubelet):
            if item["metadata"]["name"] == req.params["name"]:
                return Response.of({"kind": "NodeMetrics", "apiVersion": GROUP_VERSION, **item})
        raise not_found("nodes.metrics.k8s.io", req.params["name"], group="metrics.k8s.io")

    # ---------------------------------------------------------------- misc
    def version(self, req: Request) -> Response:
        return Response.of(VERSION)

    def health(self, req: Request) -> Response:
        return Response(200, b"ok", "text/plain")
