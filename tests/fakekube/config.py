"""Tunable knobs of the fake cluster (one immutable value, replaced atomically on change)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ClusterConfig:
    """Timing and sizing.  All durations are seconds.

    ``schedule_delay``: pod created -> bound to a node (also the retry cadence for unschedulable pods).
    ``start_delay``: bound -> Running (or stuck waiting on an image error).
    ``run_seconds``: Running -> Succeeded/Failed, unless the pod's Behavior says otherwise.
    ``deletion_delay``: graceful deletion of a bound, non-terminal pod: DELETE sets deletionTimestamp (MODIFIED) and
    the object disappears (DELETED) after min(deletion_delay, gracePeriodSeconds).  0 = immediate removal.
    ``bookmark_interval``: BOOKMARK cadence on watches with allowWatchBookmarks=true.
    ``history_size``: watch events retained per resource kind; older resourceVersions get 410 Expired.
    ``default_watch_timeout``: server-side cap for watches without timeoutSeconds.
    ``emit_events``/``max_events``: whether the simulation writes Event objects, and how many are kept.
    ``metrics_enabled``: serve metrics.k8s.io (False: every metrics URL is a 404, as if metrics-server is absent).
    """

    schedule_delay: float = 0.01
    start_delay: float = 0.02
    run_seconds: float = 0.05
    deletion_delay: float = 0.0
    bookmark_interval: float = 1.0
    history_size: int = 10_000
    default_watch_timeout: float = 1800.0
    emit_events: bool = True
    max_events: int = 20_000
    metrics_enabled: bool = True

    def with_changes(self, **changes: Any) -> ClusterConfig:
        """A copy with ``changes`` applied; unknown names or negative numbers raise ``ValueError``."""
        names = {f.name: f for f in dataclasses.fields(self)}
        unknown = set(changes) - set(names)
        if unknown:
            raise ValueError(f"unknown config keys: {sorted(unknown)}")
        coerced: dict[str, Any] = {}
        for key, value in changes.items():
            kind = type(getattr(self, key))
            coerced[key] = bool(value) if kind is bool else kind(value)
            if kind is not bool and coerced[key] < 0:
                raise ValueError(f"{key} must be >= 0")
        if coerced.get("history_size", self.history_size) < 1:
            raise ValueError("history_size must be >= 1")
        return dataclasses.replace(self, **coerced)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
