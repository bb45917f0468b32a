"""A simulated kube-apiserver restart: connections cut, the watch cache rebuilt, RBAC not yet synced.

What a real restart (an upgrade of a managed cluster's control plane) looks like to a client:

1. every open connection is cut, watches included;
2. for ``downtime`` seconds nothing answers (here: every request's connection is cut unanswered);
3. the watch cache starts from the current resourceVersion, so an older one gets 410 (here: the
   history is compacted);
4. for a moment after it serves again, its RBAC authorizer has not loaded the Roles and bindings
   yet and refuses requests made with valid credentials: ``403 pods is forbidden: User "..." cannot
   create resource "pods" in API group "" in the namespace "..."``.  Measured on kube-apiserver 1.20
   (the real-apiserver tier): 0.1-0.6 s.  The knob ``rbac_sync_delay`` sets how long (strict: 0.6 s);
   the health, version and discovery endpoints stay open, as the apiserver's always-allowed paths do.

``FakeKubeServer.restart(downtime=...)`` / ``POST /_fake/restart {"downtime": s}`` start one.
"""

from __future__ import annotations

import threading
import time

from .errors import ApiError

#: Resources answered even while RBAC is not synced (always-allowed paths, and what discovery needs).
OPEN_RESOURCES = frozenset({"health", "version", "discovery", "_fake"})
USER = "system:serviceaccount:airflow:airflow-scheduler"
_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete", "WATCH": "watch"}


class Restarts:
    """When the last simulated restart's downtime and RBAC window end (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._down_until = 0.0
        self._rbac_until = 0.0
        self.count = 0
        self.denied = 0  # requests refused with the RBAC 403

    def begin(self, downtime: float, rbac_sync_delay: float) -> None:
        now = time.monotonic()
        with self._lock:
            self.count += 1
            self._down_until = now + downtime
            self._rbac_until = now + downtime + rbac_sync_delay

    def verdict(self, resource: str) -> str | None:
        """``"down"`` (cut the connection), ``"rbac"`` (refuse with 403) or None (serve) for a request now."""
        if resource in OPEN_RESOURCES:
            return None
        now = time.monotonic()
        with self._lock:
            if now < self._down_until:
                return "down"
            if now < self._rbac_until:
                self.denied += 1
                return "rbac"
        return None


def rbac_denial(verb: str, resource: str, path: str, params: dict[str, str]) -> ApiError:
    """The 403 the RBAC authorizer answers for ``verb`` on ``path``, worded as kube-apiserver words it."""
    name = params.get("name")
    verb = ("get" if name else "list") if verb == "GET" else _VERBS.get(verb, verb.lower())
    if verb == "delete" and not name:
        verb = "deletecollection"
    group = "metrics.k8s.io" if path.startswith("/apis/metrics.k8s.io/") else ""
    kind = resource.split("/", maxsplit=1)[0]  # a subresource is named in full only after "cannot"
    subject = f'{kind} "{name}"' if name else kind
    namespace = params.get("namespace")
    scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    message = (
        f'{subject} is forbidden: User "{USER}" cannot {verb} resource "{resource}" in API group "{group}" {scope}'
    )
    return ApiError(403, message, "Forbidden", details={"kind": kind, **({"name": name} if name else {})})
