"""Monitoring and cleanup of the executor's worker pods: the seed's ``PodMonitor``, done right.

What changed from the seed's sketch, and why:

* **Any cluster, not only in-cluster.**  The seed called ``config.load_incluster_config()`` in
  ``__init__``, so the monitor could never run from a laptop or CI.  Here the caller builds the
  :class:`~airflow_k8s.executor.kube.client.KubeClient` (``KubeClient.from_settings(in_cluster=..., config_file=...,
  context=...)`` for a service account or a kubeconfig, ``KubeClient.for_host(url)`` for
  ``kubectl proxy`` and tests) and hands it in.
* **Timezone-correct cleanup.**  The seed compared ``datetime.now()`` (naive *local* time) with
  the API's UTC timestamps stripped of their zone, so on a UTC-8 host pods were deleted eight
  hours early.  Every timestamp here is an aware UTC ``datetime``; a naive ``now`` is refused.
* **Age means time since the pod finished**, not since it started: a 30-hour task that ended a
  minute ago is not "old".  The finish time is the latest ``terminated.finishedAt`` of the pod's
  containers, falling back to ``status.startTime`` and then ``metadata.creationTimestamp``.
* **Every phase is counted**, ``Unknown`` (node lost) included, so ``total`` always equals the
  sum of the per-phase counts; the seed silently dropped pods in phases it did not list.
* **Cleanup failures are reported, not swallowed.**  A 404 on delete means somebody else (the
  executor, the garbage collector) got there first; any other API error is logged and returned
  in :attr:`CleanupReport.errors` so one bad pod cannot stop the sweep.

Placeholder ("balloon") pods carry the executor label too; they are excluded unless asked for.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

from airflow_k8s.executor.contract.errors import ExecutorError, KubeApiError
from airflow_k8s.executor.kube.client import KubeClient
from airflow_k8s.executor.pods.podstate import TERMINAL_PHASES, parse_time, pod_status
from airflow_k8s.executor.tasks import identity

log = logging.getLogger(__name__)

DEFAULT_SELECTOR = f"{identity.LABEL_EXECUTOR}=True"
#: The pod phases of the Kubernetes API; anything else (or a missing phase) is counted as Unknown.
PHASES = ("Pending", "Running", "Succeeded", "Failed", "Unknown")


class MonitorError(ExecutorError, ValueError):
    """A monitor call was given an invalid argument (a naive ``now``, a non-positive age...)."""


def require_aware(value: datetime, *, what: str = "now") -> datetime:
    """``value`` converted to UTC; a naive datetime is refused (its timezone would be a guess)."""
    if not isinstance(value, datetime):
        raise MonitorError(f"{what} must be a datetime, got {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise MonitorError(
            f"{what} = {value.isoformat()} has no timezone; pass an aware datetime such as datetime.now(UTC) "
            "(Kubernetes timestamps are UTC, and a naive local time would shift the cutoff by the UTC offset)"
        )
    return value.astimezone(UTC)


def is_placeholder(pod: Mapping[str, Any]) -> bool:
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return labels.get(identity.LABEL_PLACEHOLDER) == "True"


def phase_of(pod: Mapping[str, Any]) -> str:
    """The pod's phase, ``Unknown`` when missing or not one of :data:`PHASES`."""
    phase = (pod.get("status") or {}).get("phase")
    return phase if phase in PHASES else "Unknown"


def finished_at(pod: Mapping[str, Any]) -> datetime | None:
    """When a terminal pod finished (aware UTC), for age-based cleanup.

    The latest ``state.terminated.finishedAt`` over all (init and app) containers; without any,
    ``status.startTime``, then ``metadata.creationTimestamp`` (both earlier than the real finish,
    so the fallback can only make a pod look older, never younger, than a pod that has them).
    """
    status = pod.get("status") or {}
    finishes = []
    for item in [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]:
        terminated = (item.get("state") or {}).get("terminated") or {}
        stamp = parse_time(terminated.get("finishedAt"))
        if stamp is not None:
            finishes.append(stamp)
    if finishes:
        return max(finishes)
    return parse_time(status.get("startTime")) or parse_time((pod.get("metadata") or {}).get("creationTimestamp"))


@dataclass(frozen=True)
class PodSummary:
    """One worker pod at a glance (all datetimes timezone-aware UTC)."""

    name: str
    phase: str
    start_time: datetime | None
    finished_at: datetime | None
    node_name: str | None
    tier: str | None
    task_key: str | None  # str(TaskKey) from the pod's annotations; None for foreign/placeholder pods
    reason: str | None = None
    exit_code: int | None = None
    message: str | None = None
    deleting: bool = False
    placeholder: bool = False


def summarize(pod: Mapping[str, Any]) -> PodSummary:
    """A :class:`PodSummary` of a pod dict as the API returns it (pure)."""
    metadata = pod.get("metadata") or {}
    labels = metadata.get("labels") or {}
    status = pod_status(dict(pod))
    key = identity.key_from_annotations(metadata.get("annotations"))
    phase = phase_of(pod)
    return PodSummary(
        name=str(metadata.get("name", "")),
        phase=phase,
        start_time=parse_time((pod.get("status") or {}).get("startTime")) or status.started_at,
        finished_at=finished_at(pod) if phase in TERMINAL_PHASES else None,
        node_name=status.node_name,
        tier=labels.get(identity.LABEL_TIER),
        task_key=str(key) if key is not None else None,
        reason=status.reason or status.waiting_reason,
        exit_code=status.exit_code,
        message=status.message,
        deleting=status.deleting,
        placeholder=is_placeholder(pod),
    )


def count_phases(pods: list[dict[str, Any]]) -> dict[str, int]:
    """``{"total": n, "pending": .., "running": .., "succeeded": .., "failed": .., "unknown": ..}`` (pure)."""
    counts = {"total": len(pods), **{phase.lower(): 0 for phase in PHASES}}
    for pod in pods:
        counts[phase_of(pod).lower()] += 1
    return counts


@dataclass(frozen=True)
class CleanupReport:
    """What :meth:`PodMonitor.cleanup_old_pods` did.

    ``deleted``: pods deleted (in a dry run: pods that *would* be deleted).  ``already_gone``: old
    terminal pods that answered 404 to the delete (removed by someone else meanwhile).
    ``kept``: every other listed pod (not terminal, or not old enough, or without any timestamp).
    ``errors``: pod name -> error message for deletes that failed otherwise.
    """

    cutoff: datetime
    dry_run: bool
    deleted: tuple[str, ...] = ()
    already_gone: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()
    errors: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def ok(self) -> bool:
        return not self.errors


class PodMonitor:
    """Lists, inspects, counts and cleans up the executor's worker pods in one namespace.

    ``kube`` is built by the caller (``KubeClient.from_settings`` for in-cluster or kubeconfig
    credentials), which fixes the seed's in-cluster-only constructor.  ``label_selector`` picks the
    executor's pods (default: every Kubernetes-executor pod; use
    :func:`airflow_k8s.executor.tasks.identity.instance_selector` to restrict to one scheduler instance).
    """

    def __init__(
        self,
        kube: KubeClient,
        namespace: str,
        *,
        label_selector: str = DEFAULT_SELECTOR,
        page_size: int = 500,
    ) -> None:
        if not namespace:
            raise MonitorError("namespace must be a non-empty string")
        self.kube = kube
        self.namespace = namespace
        self.label_selector = label_selector
        self.page_size = page_size

    summarize = staticmethod(summarize)

    def list_worker_pods(self, *, include_placeholders: bool = False) -> list[dict[str, Any]]:
        """Every matching pod (all pages of the list), placeholders only when asked for."""
        pods = self.kube.list_pods(self.namespace, label_selector=self.label_selector, page_size=self.page_size).items
        if include_placeholders:
            return pods
        return [pod for pod in pods if not is_placeholder(pod)]

    def get_pod_status(self, name: str) -> PodSummary:
        """The summary of pod ``name`` (``KubeApiError`` 404 if it does not exist)."""
        return summarize(self.kube.get_pod(self.namespace, name))

    def get_pod_metrics(self, *, include_placeholders: bool = False) -> dict[str, int]:
        """Pod counts: ``total`` plus one key per phase (lower case), ``unknown`` included."""
        return count_phases(self.list_worker_pods(include_placeholders=include_placeholders))

    def cleanup_old_pods(
        self, max_age_hours: float, *, now: datetime | None = None, dry_run: bool = False
    ) -> CleanupReport:
        """Delete terminal (Succeeded/Failed) pods that finished more than ``max_age_hours`` ago (0: all of them).

        ``now`` defaults to the current time and must be timezone-aware.  Pods that are still
        pending or running are never deleted, whatever their age.  Listing errors raise
        :class:`~airflow_k8s.executor.contract.errors.KubeApiError`; delete errors are collected in the report.
        """
        if isinstance(max_age_hours, bool) or not isinstance(max_age_hours, int | float):
            raise MonitorError(f"max_age_hours must be a number of hours, got {max_age_hours!r}")
        if not math.isfinite(max_age_hours) or max_age_hours < 0:
            raise MonitorError(
                f"max_age_hours must be a finite number >= 0 (0: every finished pod), got {max_age_hours!r}"
            )
        current = datetime.now(UTC) if now is None else require_aware(now)
        cutoff = current - timedelta(hours=max_age_hours)
        deleted: list[str] = []
        gone: list[str] = []
        kept: list[str] = []
        errors: dict[str, str] = {}
        for pod in self.list_worker_pods():
            name = str((pod.get("metadata") or {}).get("name", ""))
            if phase_of(pod) not in TERMINAL_PHASES:
                kept.append(name)
                continue
            finish = finished_at(pod)
            if finish is None:
                log.warning("pod %s has no finish, start or creation time; keeping it", name)
                kept.append(name)
                continue
            if finish >= cutoff:
                kept.append(name)
                continue
            if dry_run:
                log.info("dry run: would delete pod %s (finished %s)", name, finish.isoformat())
                deleted.append(name)
                continue
            try:
                self.kube.delete_pod(self.namespace, name)
            except KubeApiError as exc:
                if exc.status == 404:
                    log.info("pod %s was already gone", name)
                    gone.append(name)
                else:
                    log.error("failed to delete pod %s: %s", name, exc)
                    errors[name] = str(exc)
                continue
            log.info("deleted pod %s (finished %s)", name, finish.isoformat(), extra={"event": "pod_cleaned"})
            deleted.append(name)
        return CleanupReport(
            cutoff=cutoff,
            dry_run=dry_run,
            deleted=tuple(deleted),
            already_gone=tuple(gone),
            kept=tuple(kept),
            errors=MappingProxyType(errors),
        )
