"""Reading a pod's status: phase, fatal waiting reasons, unschedulability, exit details.

Pure functions over the pod dict the API returns, so the engine's state machine and the
monitoring CLI agree on what a pod's state means.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

TERMINAL_PHASES = frozenset({"Succeeded", "Failed"})


@dataclass(frozen=True)
class PodStatus:
    phase: str
    node_name: str | None = None
    waiting: tuple[tuple[str, str], ...] = ()  # (reason, message) of every waiting container, init first
    unschedulable: str | None = None
    waiting_reason: str | None = None
    exit_code: int | None = None
    reason: str | None = None
    message: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    deleting: bool = False

    @property
    def terminal(self) -> bool:
        return self.phase in TERMINAL_PHASES

    def fatal_reason(self, reasons: frozenset[str]) -> tuple[str, str] | None:
        """The first waiting (reason, message) among ``reasons``: ones that never resolve by themselves.

        Airflow's ``worker_pod_pending_fatal_container_state_reasons`` (ErrImagePull,
        InvalidImageName, ...) fail a Pending pod at once instead of after the pending timeout.
        """
        for reason, message in self.waiting:
            if reason in reasons:
                return reason, message
        return None


def parse_time(value: object) -> datetime | None:
    """RFC 3339 timestamps from the API as timezone-aware UTC datetimes."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _base_status(statuses: list[dict[str, Any]], container: str) -> dict[str, Any] | None:
    for status in statuses:
        if status.get("name") == container:
            return status
    return statuses[0] if statuses else None


def pod_status(pod: dict[str, Any], *, container: str = "base") -> PodStatus:
    """Interpret ``pod["status"]`` (the base container's state wins over siblings)."""
    metadata = pod.get("metadata") or {}
    status = pod.get("status") or {}
    phase = status.get("phase") or "Pending"
    node = (pod.get("spec") or {}).get("nodeName")
    unschedulable = None
    for condition in status.get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            unschedulable = condition.get("message") or condition.get("reason") or "Unschedulable"
    statuses = list(status.get("initContainerStatuses") or []) + list(status.get("containerStatuses") or [])
    waiting_states = []
    for item in statuses:
        waiting_state = (item.get("state") or {}).get("waiting") or {}
        reason = waiting_state.get("reason")
        if reason:
            waiting_states.append((str(reason), str(waiting_state.get("message") or "")))
    base = _base_status(list(status.get("containerStatuses") or []), container) or {}
    state = base.get("state") or {}
    terminated = state.get("terminated") or {}
    running = state.get("running") or {}
    exit_code = terminated.get("exitCode")
    reason = terminated.get("reason") or status.get("reason")
    message = terminated.get("message") or status.get("message")
    started = parse_time(terminated.get("startedAt") or running.get("startedAt") or status.get("startTime"))
    return PodStatus(
        phase=phase,
        node_name=node,
        waiting=tuple(waiting_states),
        unschedulable=unschedulable if phase == "Pending" else None,
        waiting_reason=waiting_states[0][0] if waiting_states else None,
        exit_code=int(exit_code) if isinstance(exit_code, int) else None,
        reason=reason,
        message=message,
        started_at=started,
        finished_at=parse_time(terminated.get("finishedAt")),
        deleting=bool(metadata.get("deletionTimestamp")),
    )


# Why a pod was deleted before it finished: the DisruptionTarget condition Kubernetes (1.26+) sets on it.
_DISRUPTIONS = {
    "PreemptionByScheduler": "Preempted",
    "PreemptionByKubeScheduler": "Preempted",
    "DeletionByTaintManager": "TaintEviction",
    "EvictionByEvictionAPI": "Evicted",
    "DeletionByPodGC": "PodGarbageCollected",
    "TerminationByKubelet": "TerminatedByKubelet",
}
# Events that say why a pod went away (the scheduler's "Preempted", the taint manager's eviction).
_DELETION_EVENTS = {"Preempted": "Preempted", "TaintManagerEviction": "TaintEviction", "Evicted": "Evicted"}


def disruption(pod: dict[str, Any]) -> tuple[str, str] | None:
    """(reason, message) from a pod's ``DisruptionTarget`` condition, or None (an older cluster, or by hand)."""
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "DisruptionTarget" and condition.get("status") == "True":
            raw = str(condition.get("reason") or "Disrupted")
            return _DISRUPTIONS.get(raw, raw), str(condition.get("message") or raw)
    return None


def deletion_event(events: list[dict[str, Any]]) -> tuple[str, str] | None:
    """(reason, message) of the newest event that explains a pod's deletion, e.g. the scheduler's
    ``Preempted`` ("Preempted by pod <uid> on node <node>", or ``<namespace>/<name>`` on older releases)."""
    found = [event for event in events if event.get("reason") in _DELETION_EVENTS]
    if not found:
        return None
    newest = max(found, key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))
    return _DELETION_EVENTS[str(newest["reason"])], str(newest.get("message") or newest["reason"])
