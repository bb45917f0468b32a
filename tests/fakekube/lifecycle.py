"""Pod status transitions as pure mutations (what the scheduler and kubelet write), and Event objects.

Each ``*_mutation`` returns a function suitable for :meth:`Store.update`: it receives a private copy of the pod and
returns it changed.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any

from .pods import FAILED, PENDING, RUNNING, SUCCEEDED, new_uid, rfc3339, set_condition

Mutation = Callable[[dict[str, Any]], dict[str, Any] | None]
_ips = itertools.count(1)
_event_ids = itertools.count(1)


def _container_id() -> str:
    return "containerd://" + new_uid().replace("-", "")


def _not_ready(status: dict[str, Any], names: list[str], now: str, reason: str = "ContainersNotReady") -> None:
    message = f"containers with unready status: [{' '.join(names)}]" if reason == "ContainersNotReady" else None
    set_condition(status, "Ready", False, reason=reason, message=message, now=now)
    set_condition(status, "ContainersReady", False, reason=reason, message=message, now=now)


def _names(pod: dict[str, Any]) -> list[str]:
    return [c["name"] for c in pod["spec"].get("containers") or []]


def _base_status(container: dict[str, Any], state: dict[str, Any], *, ready: bool, restarts: int = 0) -> dict:
    return {
        "name": container["name"],
        "image": container.get("image", ""),
        "imageID": "",
        "ready": ready,
        "started": "running" in state,
        "restartCount": restarts,
        "state": state,
    }


def bind_mutation(node: str, host_ip: str) -> Mutation:
    """Scheduler binding + kubelet's first status: PodScheduled, startTime, containers ContainerCreating."""

    def mutate(pod: dict[str, Any]) -> dict[str, Any]:
        now = rfc3339()
        pod["spec"]["nodeName"] = node
        status = pod["status"]
        status.pop("nominatedNodeName", None)
        set_condition(status, "PodScheduled", True, now=now)
        set_condition(status, "Initialized", True, now=now)
        _not_ready(status, _names(pod), now)
        status.update(hostIP=host_ip, hostIPs=[{"ip": host_ip}], startTime=now)
        waiting = {"waiting": {"reason": "ContainerCreating"}}
        status["containerStatuses"] = [_base_status(c, waiting, ready=False) for c in pod["spec"]["containers"]]
        return pod

    return mutate


def unschedulable_mutation(message: str, nominated: str | None) -> Mutation:
    def mutate(pod: dict[str, Any]) -> dict[str, Any]:
        status = pod["status"]
        set_condition(status, "PodScheduled", False, reason="Unschedulable", message=message)
        if nominated:
            status["nominatedNodeName"] = nominated
        return pod

    return mutate


def waiting_mutation(reason: str, message: str) -> Mutation:
    """Image pull / config error: the pod stays Pending with containers waiting."""

    def mutate(pod: dict[str, Any]) -> dict[str, Any]:
        state = {"waiting": {"reason": reason, "message": message}}
        pod["status"]["containerStatuses"] = [_base_status(c, state, ready=False) for c in pod["spec"]["containers"]]
        pod["status"]["phase"] = PENDING
        return pod

    return mutate


def running_mutation(started: float) -> Mutation:
    def mutate(pod: dict[str, Any]) -> dict[str, Any]:
        now = rfc3339(started)
        n = next(_ips)
        ip = f"10.244.{(n // 250) % 250}.{n % 250 + 1}"
        status = pod["status"]
        status.update(phase=RUNNING, podIP=ip, podIPs=[{"ip": ip}])
        for cond in ("PodReadyToStartContainers", "Initialized", "ContainersReady", "Ready"):
            set_condition(status, cond, True, now=now)
        state = {"running": {"startedAt": now}}
        status["containerStatuses"] = [
            {**_base_status(c, state, ready=True), "containerID": _container_id()} for c in pod["spec"]["containers"]
        ]
        done = {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": now, "finishedAt": now}}
        if pod["spec"].get("initContainers"):
            status["initContainerStatuses"] = [_base_status(c, done, ready=True) for c in pod["spec"]["initContainers"]]
        return pod

    return mutate


def restart_mutation(exit_code: int, reason: str, restarts: int) -> Mutation:
    """restartPolicy Always/OnFailure: the container ran to completion and was started again."""

    def mutate(pod: dict[str, Any]) -> dict[str, Any]:
        now = rfc3339()
        for cs in pod["status"].get("containerStatuses") or []:
            started = (cs["state"].get("running") or {}).get("startedAt", now)
            cs["lastState"] = {
                "terminated": {"exitCode": exit_code, "reason": reason, "startedAt": started, "finishedAt": now}
            }
            cs["state"] = {"running": {"startedAt": now}}
            cs["restartCount"] = restarts
        return pod

    return mutate


def terminated_mutation(exit_code: int, reason: str, message: str | None = None) -> Mutation:
    """Every container exited; restartPolicy says stay down: Succeeded (all exit 0) or Failed.  ``message`` is the
    termination message (the log tail, for ``terminationMessagePolicy: FallbackToLogsOnError``)."""

    def mutate(pod: dict[str, Any]) -> dict[str, Any]:
        now = rfc3339()
        status = pod["status"]
        status["phase"] = SUCCEEDED if exit_code == 0 else FAILED
        _not_ready(status, _names(pod), now, reason="PodCompleted" if exit_code == 0 else "PodFailed")
        for cs in status.get("containerStatuses") or []:
            started = (cs["state"].get("running") or {}).get("startedAt", now)
            terminated = {"exitCode": exit_code, "reason": reason, "startedAt": started, "finishedAt": now}
            if message:
                terminated["message"] = message
            if "containerID" in cs:
                terminated["containerID"] = cs["containerID"]
            cs.update(state={"terminated": terminated}, ready=False, started=False)
        return pod

    return mutate


def back_off_mutation(exit_code: int, reason: str, restarts: int, seconds: float, pod_name: str) -> Mutation:
    """restartPolicy Always/OnFailure in process mode: the process exited and waits ``seconds`` to be started again
    (``CrashLoopBackOff``, the previous run in ``lastState``)."""

    def mutate(pod: dict[str, Any]) -> dict[str, Any]:
        now = rfc3339()
        _not_ready(pod["status"], _names(pod), now)
        for cs in pod["status"].get("containerStatuses") or []:
            started = (cs["state"].get("running") or {}).get("startedAt", now)
            cs["lastState"] = {
                "terminated": {"exitCode": exit_code, "reason": reason, "startedAt": started, "finishedAt": now}
            }
            message = f"back-off {seconds:g}s restarting failed container={cs['name']} pod={pod_name}"
            cs.update(state={"waiting": {"reason": "CrashLoopBackOff", "message": message}}, ready=False)
            cs.update(started=False, restartCount=restarts)
        return pod

    return mutate


def restarted_mutation(started: float) -> Mutation:
    """The container runs again after a back-off (restart count and lastState kept)."""

    def mutate(pod: dict[str, Any]) -> dict[str, Any]:
        now = rfc3339(started)
        for cond in ("ContainersReady", "Ready"):
            set_condition(pod["status"], cond, True, now=now)
        for cs in pod["status"].get("containerStatuses") or []:
            cs.update(state={"running": {"startedAt": now}}, ready=True, started=True, containerID=_container_id())
        return pod

    return mutate


def rejected_mutation(reason: str, message: str) -> Mutation:
    """Kubelet admission rejected a pod bound directly via spec.nodeName (e.g. OutOfcpu)."""

    def mutate(pod: dict[str, Any]) -> dict[str, Any]:
        pod["status"].update(phase=FAILED, reason=reason, message=message)
        return pod

    return mutate


def disruption_mutation(reason: str, message: str) -> Mutation:
    def mutate(pod: dict[str, Any]) -> dict[str, Any]:
        set_condition(pod["status"], "DisruptionTarget", True, reason=reason, message=message)
        return pod

    return mutate


def event_object(
    involved: dict[str, Any], reason: str, message: str, *, warning: bool = False, component: str = "kubelet"
) -> dict[str, Any]:
    """A core/v1 Event about ``involved`` (a pod), named ``<pod>.<hex>`` like the real ones."""
    meta = involved["metadata"]
    now = rfc3339()
    source: dict[str, str] = {"component": component}
    node = (involved.get("spec") or {}).get("nodeName")
    if component == "kubelet" and node:
        source["host"] = node
    return {
        "kind": "Event",
        "apiVersion": "v1",
        "metadata": {
            "name": f"{meta['name']}.{time.time_ns():x}{next(_event_ids):04x}",
            "namespace": meta.get("namespace", "default"),
            "uid": new_uid(),
            "creationTimestamp": now,
        },
        "involvedObject": {
            "kind": involved.get("kind", "Pod"),
            "namespace": meta.get("namespace", "default"),
            "name": meta["name"],
            "uid": meta.get("uid", ""),
            "apiVersion": "v1",
        },
        "reason": reason,
        "message": message,
        "source": source,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
        "type": "Warning" if warning else "Normal",
        "reportingComponent": component,
        "reportingInstance": source.get("host", component),
    }
