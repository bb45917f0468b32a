"""``FakeKubeServer``: the fake cluster served over HTTP on 127.0.0.1, plus the URL table.

    with FakeKubeServer(nodes=[NodeSpec("n1", cpu="4")], run_seconds=0.1) as server:
        cfg = kubernetes.client.Configuration()
        cfg.host = server.url
        core = kubernetes.client.CoreV1Api(kubernetes.client.ApiClient(cfg))

Everything tests poke at hangs off the server: ``cluster`` (nodes, behaviours, pause/step, inspection), ``store``,
``faults``, ``stats``, ``admission``.

``strict=True`` applies :meth:`ClusterConfig.strict`'s preset (every real-server behaviour the kind defaults hide);
``process_mode=ProcessMode(...)`` makes the kubelet run each pod's container command as a local process.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, TypeVar

from .api_objects import register_objects
from .api_other import OtherApi
from .api_pods import PodApi
from .behavior import BehaviorPolicy
from .cluster import WAIT_TIMEOUT, Cluster, wait_for
from .config import ClusterConfig
from .control import ControlApi
from .discovery import DiscoveryApi
from .nodes import NodeSpec
from .overload import Overload
from .processes import ProcessMode
from .restart import Restarts
from .routes import Router
from .transport import HttpApp, HttpServerThread

T = TypeVar("T")
_NS = "/api/v1/namespaces/{namespace}"
_METRICS = "/apis/metrics.k8s.io/v1beta1"


def build_router(cluster: Cluster) -> Router:
    pods, other, discovery = PodApi(cluster), OtherApi(cluster), DiscoveryApi(cluster)
    r = Router()
    r.add("/api", "discovery", GET=discovery.versions)
    r.add("/api/v1", "discovery", GET=discovery.core)
    r.add("/apis", "discovery", GET=discovery.groups)
    r.add(f"{_NS}/pods", "pods", GET=pods.list, POST=pods.create, DELETE=pods.delete_collection)
    r.add(f"{_NS}/pods/{{name}}", "pods", GET=pods.get, PATCH=pods.patch, PUT=pods.put, DELETE=pods.delete)
    r.add(f"{_NS}/pods/{{name}}/status", "pods/status", GET=pods.get, PATCH=pods.patch_status, PUT=pods.put_status)
    r.add(f"{_NS}/pods/{{name}}/log", "pods/log", GET=pods.log)
    r.add("/api/v1/pods", "pods", GET=pods.list)
    r.add("/api/v1/nodes", "nodes", GET=other.list_nodes)
    r.add("/api/v1/nodes/{name}", "nodes", GET=other.get_node, PATCH=other.patch_node)
    r.add(f"{_NS}/events", "events", GET=other.list_events)
    r.add("/api/v1/events", "events", GET=other.list_events)
    r.add("/api/v1/namespaces", "namespaces", GET=other.list_namespaces)
    r.add("/api/v1/namespaces/{name}", "namespaces", GET=other.get_namespace)
    r.add(_METRICS, "metrics", GET=other.metrics_discovery)
    r.add(f"{_METRICS}/namespaces/{{namespace}}/pods", "metrics/pods", GET=other.pod_metrics_list)
    r.add(f"{_METRICS}/namespaces/{{namespace}}/pods/{{name}}", "metrics/pods", GET=other.pod_metrics_get)
    r.add(f"{_METRICS}/pods", "metrics/pods", GET=other.pod_metrics_list)
    r.add(f"{_METRICS}/nodes", "metrics/nodes", GET=other.node_metrics_list)
    r.add(f"{_METRICS}/nodes/{{name}}", "metrics/nodes", GET=other.node_metrics_get)
    r.add("/version", "version", GET=other.version)
    for probe in ("/healthz", "/readyz", "/livez"):
        r.add(probe, "health", GET=other.health)
    register_objects(r, cluster)
    return r


class FakeKubeServer:
    """A fake Kubernetes API server.  ``config_overrides`` are :class:`ClusterConfig` fields, e.g.
    ``FakeKubeServer(run_seconds=1.0, history_size=100)``, applied after the ``strict`` preset.  ``port=0`` picks a
    free port."""

    def __init__(
        self,
        nodes: Iterable[NodeSpec] = (),
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        config: ClusterConfig | None = None,
        behavior: BehaviorPolicy | None = None,
        priorities: dict[str, int] | None = None,
        seed: int = 0,
        strict: bool = False,
        process_mode: ProcessMode | None = None,
        **config_overrides: Any,
    ) -> None:
        if host != "localhost" and not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"fakekube only listens on loopback addresses, not {host!r}")
        config = config or ClusterConfig()
        if strict:
            config = config.with_strict()
        config = config.with_changes(**config_overrides)
        self.cluster = Cluster(
            nodes, config=config, behavior=behavior, priorities=priorities, seed=seed, process_mode=process_mode
        )
        self.store = self.cluster.store
        self.faults = self.cluster.faults
        self.stats = self.cluster.stats
        self.admission = self.cluster.admission
        self._stopping = threading.Event()
        self.router = build_router(self.cluster)
        ControlApi(self).register(self.router)
        self.overload = Overload(lambda: self.cluster.config, self._stopping)
        self.restarts = Restarts()
        self._app = HttpApp(
            self.router, self.store, self.faults, self.stats, self._stopping, self.restarts, overload=self.overload
        )
        self._http = HttpServerThread(host, port, self._app, self._close_watches)
        self._started = self._stopped = False

    # ------------------------------------------------------------ lifecycle
    def start(self) -> FakeKubeServer:
        if not self._started:
            self._started = True
            self.cluster.start()
            self._http.start()
        return self

    def stop(self) -> None:
        if self._started and not self._stopped:
            self._stopped = True
            self._stopping.set()
            self._http.stop()
            self.cluster.stop()

    def __enter__(self) -> FakeKubeServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None):
        self.stop()

    def _close_watches(self) -> None:
        for watcher in self.store.external_watchers():
            watcher.close()

    # ----------------------------------------------------------- addresses
    @property
    def host(self) -> str:
        return self._http.address[0]

    @property
    def port(self) -> int:
        return self._http.address[1]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # ------------------------------------------------------------ shortcuts
    @property
    def config(self) -> ClusterConfig:
        return self.cluster.config

    def configure(self, **changes: Any) -> ClusterConfig:
        return self.cluster.configure(**changes)

    @property
    def open_watches(self) -> int:
        return self.store.open_watches

    @property
    def errors(self) -> list[str]:
        """Unexpected exceptions inside the fake (HTTP handlers, kubelet, behaviour callables)."""
        return [*self._app.errors, *self.cluster.kubelet.errors]

    def drop_watches(self) -> int:
        return self.faults.drop_watches()

    def expire_watches(self) -> int:
        return self.faults.expire_watches()

    def compact(self) -> int:
        return self.faults.compact()

    def restart(self, downtime: float = 0.0) -> None:
        """Simulate a kube-apiserver restart (see :mod:`.restart`): every connection cut, ``downtime`` seconds of
        cut connections, the watch history compacted, then ``rbac_sync_delay`` seconds of RBAC 403s."""
        self.restarts.begin(downtime, self.config.rbac_sync_delay)
        self.faults.compact()
        self.faults.drop_watches()
        self._http.close_connections()

    def wait_for(self, predicate: Callable[[], T], timeout: float = WAIT_TIMEOUT, message: str = "") -> T:
        return wait_for(predicate, timeout, message=message)

    def api_client(self) -> Any:
        """A ``kubernetes.client.ApiClient`` for this server (imported lazily: the fake itself needs only stdlib)."""
        from kubernetes import client

        cfg = client.Configuration()
        cfg.host = self.url
        return client.ApiClient(cfg)
