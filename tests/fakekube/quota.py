"""ResourceQuota arithmetic for pods, as kube-apiserver's pod evaluator and quota admission plugin do it.

Pure functions over pod dicts and resource lists; :mod:`.quotas` applies them to the stored objects.

* **Usage of one pod** (``PodUsageFunc``): ``count/pods=1`` always; while the pod still counts, also ``pods=1``
  and, from the container requests/limits summed over containers and max'ed with each init container,
  ``requests.cpu`` (alias ``cpu``), ``limits.cpu``, the same for ``memory`` and ``ephemeral-storage``,
  ``requests.<extended>`` for extended resources (``requests.nvidia.com/gpu``) and ``hugepages-*``.
* **A pod counts** unless it is terminal (Succeeded/Failed) or past ``deletionTimestamp + grace``.
* **Constraints**: a quota on cpu or memory (``requests.*``, ``limits.*`` or the bare aliases) makes every
  container, init containers included, name that resource: ``must specify limits.cpu,requests.cpu``.
* **Messages** list only the exceeded resources, sorted, with canonical quantities::

    exceeded quota: compute, requested: limits.cpu=4,requests.cpu=2, used: limits.cpu=30,requests.cpu=15,
    limited: limits.cpu=32,requests.cpu=16
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .quantity import format_quantity, is_binary, parse_quantity

#: Resources only the pod evaluator tracks (MatchingResources), besides the prefixed ones below.
POD_RESOURCES = frozenset(
    {
        "pods",
        "count/pods",
        "cpu",
        "memory",
        "ephemeral-storage",
        "requests.cpu",
        "requests.memory",
        "requests.ephemeral-storage",
        "limits.cpu",
        "limits.memory",
        "limits.ephemeral-storage",
    }
)
#: The resources a quota makes mandatory in every container (the "backward compatibility requirement").
VALIDATION_SET = frozenset({"cpu", "memory", "requests.cpu", "requests.memory", "limits.cpu", "limits.memory"})
_STANDARD = ("cpu", "memory", "ephemeral-storage")


@dataclass(frozen=True, slots=True)
class Qty:
    """A quantity that remembers whether it prints in binary SI (Go keeps the first operand's format in sums)."""

    value: Decimal
    binary: bool = False

    @classmethod
    def parse(cls, raw: str | int | float) -> Qty:
        return cls(parse_quantity(raw), is_binary(raw))

    def __add__(self, other: Qty) -> Qty:
        return Qty(self.value + other.value, self.binary if self.value else other.binary)

    def __str__(self) -> str:
        return format_quantity(self.value, self.binary)


ResourceList = dict[str, Qty]


def parse_list(raw: Mapping[str, Any] | None) -> ResourceList:
    return {name: Qty.parse(value) for name, value in (raw or {}).items()}


def render_list(resources: Mapping[str, Qty]) -> dict[str, str]:
    return {name: str(resources[name]) for name in sorted(resources)}


def pretty(resources: Mapping[str, Qty]) -> str:
    """``prettyPrint``: ``a=1,b=2Gi`` in name order."""
    return ",".join(f"{name}={resources[name]}" for name in sorted(resources))


def add(a: Mapping[str, Qty], b: Mapping[str, Qty]) -> ResourceList:
    out = dict(a)
    for name, qty in b.items():
        out[name] = out[name] + qty if name in out else qty
    return out


def _max(a: Mapping[str, Qty], b: Mapping[str, Qty]) -> ResourceList:
    out = dict(a)
    for name, qty in b.items():
        if name not in out or qty.value > out[name].value:
            out[name] = qty
    return out


def mask(resources: Mapping[str, Qty], names: Iterable[str]) -> ResourceList:
    keep = set(names)
    return {name: qty for name, qty in resources.items() if name in keep}


def is_extended(name: str) -> bool:
    """An extended resource (``vendor.example/thing``), as opposed to the built-in ones."""
    return "/" in name and "kubernetes.io/" not in name and not name.startswith("requests.")


def tracked(hard_names: Iterable[str]) -> list[str]:
    """The quota's resources the pod evaluator measures (sorted)."""
    out = []
    for name in hard_names:
        extended = name.startswith("requests.") and is_extended(name.removeprefix("requests."))
        if extended or name in POD_RESOURCES or name.startswith(("hugepages-", "requests.hugepages-")):
            out.append(name)
    return sorted(out)


def compute_usage(requests: Mapping[str, Qty], limits: Mapping[str, Qty]) -> ResourceList:
    """``podComputeUsageHelper`` for one container's (or the whole pod's) requests and limits."""
    out: ResourceList = {"pods": Qty(Decimal(1))}
    for res in _STANDARD:
        if res in requests:
            out[res] = out[f"requests.{res}"] = requests[res]
        if res in limits:
            out[f"limits.{res}"] = limits[res]
    for res, qty in requests.items():
        if res.startswith("hugepages-"):
            out[res] = out[f"requests.{res}"] = qty
        elif is_extended(res):
            out[f"requests.{res}"] = qty
    return out


def _resources(container: Mapping[str, Any]) -> tuple[ResourceList, ResourceList]:
    resources = container.get("resources") or {}
    return parse_list(resources.get("requests")), parse_list(resources.get("limits"))


def pod_requests_limits(pod: Mapping[str, Any]) -> tuple[ResourceList, ResourceList]:
    """Containers summed, then max'ed with each init container (they run one at a time, before the others)."""
    spec = pod.get("spec") or {}
    requests: ResourceList = {}
    limits: ResourceList = {}
    for container in spec.get("containers") or []:
        reqs, lims = _resources(container)
        requests, limits = add(requests, reqs), add(limits, lims)
    for container in spec.get("initContainers") or []:
        reqs, lims = _resources(container)
        requests, limits = _max(requests, reqs), _max(limits, lims)
    return requests, limits


def _epoch(timestamp: str) -> float:
    return float(calendar.timegm(time.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ")))


def pod_counts(pod: Mapping[str, Any], now: float | None = None) -> bool:
    """``QuotaV1Pod``: terminal pods, and pods past their deletion deadline, no longer use compute quota."""
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return False
    meta = pod.get("metadata") or {}
    deletion, grace = meta.get("deletionTimestamp"), meta.get("deletionGracePeriodSeconds")
    if deletion and grace is not None:
        return (time.time() if now is None else now) <= _epoch(deletion) + float(grace)
    return True


def pod_usage(pod: Mapping[str, Any], now: float | None = None) -> ResourceList:
    usage: ResourceList = {"count/pods": Qty(Decimal(1))}
    if pod_counts(pod, now):
        usage.update(compute_usage(*pod_requests_limits(pod)))
    return usage


def missing_resources(required: Iterable[str], pod: Mapping[str, Any]) -> list[str]:
    """The quota'd cpu/memory resources some container does not request (``Constraints``), sorted."""
    needed = set(required) & VALIDATION_SET
    missing: set[str] = set()
    spec = pod.get("spec") or {}
    for container in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]:
        missing |= needed - set(compute_usage(*_resources(container)))
    return sorted(missing)


def exceeded_message(name: str, hard: ResourceList, used: ResourceList, requested: ResourceList) -> str | None:
    """The admission refusal for adding ``requested`` to ``used`` under ``hard`` (None: it fits)."""
    new_usage = add(used, requested)
    over = [res for res in requested if res in hard and new_usage[res].value > hard[res].value]
    if not over:
        return None
    return (
        f"exceeded quota: {name}, requested: {pretty(mask(requested, over))}, used: {pretty(mask(used, over))}, "
        f"limited: {pretty(mask(hard, over))}"
    )
