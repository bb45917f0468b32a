"""Pod object helpers: API defaulting, resource requests, QoS class, status conditions, timestamps."""

from __future__ import annotations

import random
import threading
import time
import uuid
from typing import Any

from .quantity import parse_quantity, to_milli

_uid_rng = random.Random()
_uid_lock = threading.Lock()


def new_uid() -> str:
    """A random (version 4) UUID without a getrandom() syscall per call; uniqueness is all the fake needs."""
    with _uid_lock:
        bits = _uid_rng.getrandbits(128)
    return str(uuid.UUID(int=bits, version=4))


SUCCEEDED, FAILED, RUNNING, PENDING = "Succeeded", "Failed", "Running", "Pending"
TERMINAL_PHASES = frozenset({SUCCEEDED, FAILED})
DEFAULT_SCHEDULER = "default-scheduler"


def rfc3339(t: float | None = None) -> str:
    """UTC timestamp with second precision and a ``Z``, as the API server writes them."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if t is None else t))


def new_metadata(meta: dict[str, Any], namespace: str | None) -> dict[str, Any]:
    """Server-owned metadata for a new object: uid, creationTimestamp, generation (resourceVersion: the store)."""
    meta = dict(meta)
    for owned in ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds"):
        meta.pop(owned, None)
    if namespace is not None:
        meta["namespace"] = namespace
    meta["uid"] = new_uid()
    meta["creationTimestamp"] = rfc3339()
    meta["generation"] = 1
    return meta


def _image_pull_policy(image: str) -> str:
    last = image.rsplit("/", 1)[-1].split("@", 1)[0]
    tag = last.split(":", 1)[1] if ":" in last else ""
    return "Always" if tag in ("", "latest") and "@" not in image else "IfNotPresent"


def apply_pod_defaults(pod: dict[str, Any], priorities: dict[str, int]) -> dict[str, Any]:
    """Fill in what API defaulting and the Priority admission plugin would (mutates and returns ``pod``)."""
    pod["kind"], pod["apiVersion"] = "Pod", "v1"
    spec = pod.setdefault("spec", {})
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", DEFAULT_SCHEDULER)
    spec.setdefault("serviceAccountName", spec.get("serviceAccount") or "default")
    spec.setdefault("securityContext", {})
    if "priority" not in spec:
        spec["priority"] = priorities.get(spec.get("priorityClassName", ""), 0)
    for section in ("containers", "initContainers"):
        for container in spec.get(section) or []:
            container.setdefault("imagePullPolicy", _image_pull_policy(str(container.get("image", ""))))
            container.setdefault("terminationMessagePath", "/dev/termination-log")
            container.setdefault("terminationMessagePolicy", "File")
            resources = container.setdefault("resources", {})
            limits = resources.get("limits") or {}
            if limits:  # requests default to limits, as the API server's defaulting does
                requests = resources.setdefault("requests", {})
                for res, qty in limits.items():
                    requests.setdefault(res, qty)
    pod["status"] = {"phase": PENDING, "qosClass": qos_class(pod)}
    return pod


def pod_requests(pod: dict[str, Any]) -> dict[str, int]:
    """Effective scheduling requests in milli-units: max(sum of containers, largest init container) + 1 pod."""
    spec = pod.get("spec") or {}
    total: dict[str, int] = {}
    for container in spec.get("containers") or []:
        for res, qty in ((container.get("resources") or {}).get("requests") or {}).items():
            total[res] = total.get(res, 0) + to_milli(qty)
    for container in spec.get("initContainers") or []:
        for res, qty in ((container.get("resources") or {}).get("requests") or {}).items():
            total[res] = max(total.get(res, 0), to_milli(qty))
    total["pods"] = 1000
    return total


def qos_class(pod: dict[str, Any]) -> str:
    containers = [*(pod["spec"].get("containers") or []), *(pod["spec"].get("initContainers") or [])]
    any_set, guaranteed = False, True
    for container in containers:
        resources = container.get("resources") or {}
        requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
        if any(r in requests or r in limits for r in ("cpu", "memory")):
            any_set = True
        for res in ("cpu", "memory"):
            if res not in limits or parse_quantity(requests.get(res, limits[res])) != parse_quantity(limits[res]):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def set_condition(
    status: dict[str, Any],
    type_: str,
    value: bool,
    *,
    reason: str | None = None,
    message: str | None = None,
    now: str | None = None,
) -> None:
    """Upsert a pod condition; lastTransitionTime changes only when the status flips."""
    conditions = status.setdefault("conditions", [])
    text = "True" if value else "False"
    for cond in conditions:
        if cond["type"] == type_:
            if cond["status"] != text:
                cond["lastTransitionTime"] = now or rfc3339()
            cond["status"] = text
            break
    else:
        cond = {"type": type_, "status": text, "lastProbeTime": None, "lastTransitionTime": now or rfc3339()}
        conditions.append(cond)
    for key, val in (("reason", reason), ("message", message)):
        if val is None:
            cond.pop(key, None)
        else:
            cond[key] = val


def condition(pod: dict[str, Any], type_: str) -> dict[str, Any] | None:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return cond
    return None


def is_terminal(pod: dict[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") in TERMINAL_PHASES


def key_of(obj: dict[str, Any]) -> tuple[str, str]:
    meta = obj["metadata"]
    return meta.get("namespace", ""), meta["name"]


def container_names(pod: dict[str, Any]) -> list[str]:
    return [c.get("name", "") for c in (pod.get("spec") or {}).get("containers") or []]
