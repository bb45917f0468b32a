"""Tunable knobs of the fake cluster (one immutable value, replaced atomically on change).

The defaults keep the fake *kind*: instant quota release, 1 s bookmarks, count-bounded watch history, only the
defaulting the fake always did.  :meth:`ClusterConfig.strict` turns on every behaviour a real kube-apiserver shows
that the kind defaults hide, with realistic values (see its docstring for each value and why).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

BOOKMARK_SHAPES = ("short", "apiserver")
OVERLOAD_VERBS = ("mutating", "all")
#: The knobs :meth:`ClusterConfig.strict` changes (values explained there).
STRICT_PRESET: dict[str, Any] = {
    "deletion_delay": 2.0,
    "bookmark_interval": 60.0,
    "bookmark_before_timeout": True,
    "bookmark_shape": "apiserver",
    "history_seconds": 75.0,
    "quota_release_delay": 2.0,
    "quota_conflict_every": 20,
    "server_defaults": True,
    "reject_unknown_priority_class": True,
    "rbac_sync_delay": 0.6,
}


@dataclass(frozen=True)
class ClusterConfig:
    """Timing and sizing.  All durations are seconds.

    ``schedule_delay``: pod created -> bound to a node (also the retry cadence for unschedulable pods).
    ``start_delay``: bound -> Running (or stuck waiting on an image error).
    ``run_seconds``: Running -> Succeeded/Failed, unless the pod's Behavior says otherwise.
    ``deletion_delay``: how long the kubelet takes to stop a bound, non-terminal pod after a graceful DELETE: the
    DELETE sets deletionTimestamp (MODIFIED) and the object disappears (DELETED) after
    min(deletion_delay, grace period).  0 = immediate removal.
    ``bookmark_interval``: BOOKMARK cadence on watches with allowWatchBookmarks=true.
    ``bookmark_before_timeout``: also send one BOOKMARK 2 s before the watch's timeoutSeconds runs out, as the
    apiserver's watch cache does (so a client re-watches from a fresh resourceVersion).
    ``bookmark_shape``: ``"short"`` (``{"kind","apiVersion","metadata":{"resourceVersion"}}``) or ``"apiserver"``:
    an empty object as Go encodes it, ``"metadata":{"resourceVersion":N,"creationTimestamp":null}`` plus
    ``"spec":{"containers":null},"status":{}`` for pods.
    ``history_size``: watch events retained per resource kind; older resourceVersions get 410 Expired.
    ``history_seconds``: watch events also expire this long after they happened (0: no time limit), like the
    apiserver's watch cache, which keeps a time window rather than a fixed count.
    ``default_watch_timeout``: server-side cap for watches without timeoutSeconds.
    ``emit_events``/``max_events``: whether the simulation writes Event objects, and how many are kept.
    ``metrics_enabled``: serve metrics.k8s.io (False: every metrics URL is a 404, as if metrics-server is absent).
    ``quota_release_delay``: 0: ResourceQuota usage is recalculated from the live pods at every admission (a
    finished pod frees its share at once).  > 0: usage is charged at CREATE and released only when the quota
    controller recalculates, this long after a pod was deleted or finished (``inf``: only on an explicit
    ``resync_quotas``).
    ``quota_conflict_every``: every Nth pod create admitted in a namespace that has a ResourceQuota fails with
    409 Conflict on the quota object, as racing creates do on a real server (0: never).
    ``server_defaults``: add what API defaulting and the default mutating admission plugins add and the fake
    otherwise leaves out (default tolerations, preemptionPolicy, enableServiceLinks, the service account token
    volume...; see :func:`.defaults.apply_server_defaults`).
    ``reject_unknown_priority_class``: a pod naming a PriorityClass the fake does not know is refused with 403
    (the Priority admission plugin), instead of getting priority 0.
    ``overload_*``: an overloaded server (:mod:`.overload`, off while ``overload_concurrency`` and
    ``overload_rate`` are 0, also in the strict preset): ``overload_concurrency`` requests execute at once, each
    for at least ``overload_service_time`` s, ``overload_queue`` more wait (rising latency), the rest get 429 with
    ``Retry-After: overload_retry_after``; ``overload_rate``/``overload_burst``: a token bucket on top;
    ``overload_verbs``: ``mutating`` (POST/PUT/PATCH/DELETE) or ``all`` (watches never).
    ``rbac_sync_delay``: after a simulated restart (``FakeKubeServer.restart``), how long every API request is
    refused with the RBAC authorizer's 403 ("User ... cannot create resource ..."), as a restarted apiserver does
    until its informers have the Roles and bindings (0: never).
    """

    schedule_delay: float = 0.01
    start_delay: float = 0.02
    run_seconds: float = 0.05
    deletion_delay: float = 0.0
    bookmark_interval: float = 1.0
    bookmark_before_timeout: bool = False
    bookmark_shape: str = "short"
    history_size: int = 10_000
    history_seconds: float = 0.0
    default_watch_timeout: float = 1800.0
    emit_events: bool = True
    max_events: int = 20_000
    metrics_enabled: bool = True
    quota_release_delay: float = 0.0
    quota_conflict_every: int = 0
    server_defaults: bool = False
    reject_unknown_priority_class: bool = False
    overload_concurrency: int = 0
    overload_queue: int = 0
    overload_service_time: float = 0.0
    overload_rate: float = 0.0
    overload_burst: int = 1
    overload_retry_after: int = 1
    overload_verbs: str = "mutating"
    rbac_sync_delay: float = 0.0

    @classmethod
    def strict(cls, **changes: Any) -> ClusterConfig:
        """Every real-server behaviour on, with values seen on real clusters (``changes`` override them):

        * ``deletion_delay=2``: a container that exits promptly on SIGTERM still takes the kubelet a moment.
        * ``bookmark_interval=60``, ``bookmark_before_timeout``, ``bookmark_shape="apiserver"``: the watch cache
          bookmarks roughly once a minute and 2 s before a watch times out, never on a quiet short watch.
        * ``history_seconds=75``: the watch cache's minimum event freshness (``eventFreshDuration``).
        * ``quota_release_delay=2``: the quota controller's replenishment lag under load.
        * ``quota_conflict_every=20``: one create in 20 loses a quota update race.
        * ``server_defaults``, ``reject_unknown_priority_class``.
        * ``rbac_sync_delay=0.6``: the longest RBAC window measured after a kube-apiserver 1.20 restart.
        """
        return cls().with_changes(**{**STRICT_PRESET, **changes})

    def with_strict(self) -> ClusterConfig:
        """This config with the strict preset applied on top."""
        return self.with_changes(**STRICT_PRESET)

    def with_changes(self, **changes: Any) -> ClusterConfig:
        """A copy with ``changes`` applied; unknown names, negative numbers or unknown shapes raise ``ValueError``."""
        names = {f.name: f for f in dataclasses.fields(self)}
        unknown = set(changes) - set(names)
        if unknown:
            raise ValueError(f"unknown config keys: {sorted(unknown)}")
        coerced: dict[str, Any] = {}
        for key, value in changes.items():
            kind = type(getattr(self, key))
            coerced[key] = bool(value) if kind is bool else kind(value)
            if kind in (int, float) and (coerced[key] < 0 or math.isnan(coerced[key])):
                raise ValueError(f"{key} must be >= 0")
        if coerced.get("history_size", self.history_size) < 1:
            raise ValueError("history_size must be >= 1")
        if coerced.get("overload_verbs", self.overload_verbs) not in OVERLOAD_VERBS:
            raise ValueError(f"overload_verbs must be one of {OVERLOAD_VERBS}")
        if coerced.get("bookmark_shape", self.bookmark_shape) not in BOOKMARK_SHAPES:
            raise ValueError(f"bookmark_shape must be one of {BOOKMARK_SHAPES}")
        return dataclasses.replace(self, **coerced)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
