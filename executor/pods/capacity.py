"""Free cluster capacity and the automatic tier choice, with exact quantity math.

The seed's ``check_cluster_resources`` did ``int(allocatable['cpu'])`` (fails on "3920m"),
stripped "Gi" by string replacement (wrong for Ki/Mi/bytes) and subtracted requests from zero
before computing ``total - available`` (inverted).  Here:

    free(node) = allocatable(node) - sum(effective requests of non-terminal pods bound to it)

where a pod's effective request is max(sum over containers, max over init containers), as the
Kubernetes scheduler counts it.  The pods counted are the executor's own and every other bound pod
of its namespaces (:func:`occupying`: the control plane shares a node with task pods on an untainted
cluster - found on a real single-node cluster, where ignoring it picked a tier that preempted the
control plane); placeholders are not counted (any task pod preempts them).  Pods of other
namespaces stay unseen (the scheduler's Role is namespaced), so the estimate is optimistic on
nodes shared with them; on the dedicated, tainted pools the platform provisions it is exact.

``choose_tier`` picks, among the tiers marked ``auto``, the largest whose requests fit on some
node the tier's pods may schedule on (nodeSelector matches, NoSchedule/NoExecute taints
tolerated), after placing the executor's not-yet-bound pods first-fit.  If none fits, the
smallest auto tier is used: it waits for capacity the cheapest way.

``unplaceable`` answers another question: could this pod *ever* run - do its requests fit the
allocatable (not the free) capacity of at least one node it may schedule on?  A pod no node can
hold would stay Pending until ``max_pod_pending_timeout``; the executor refuses it at once,
naming the largest values allowed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from airflow_k8s.executor.contract import quantity
from airflow_k8s.executor.contract.config import ExecutorConfig, Tier
from airflow_k8s.executor.contract.errors import ExecutorError, QuantityError
from airflow_k8s.executor.tasks import identity

Resources = dict[str, Decimal]
_TERMINAL = ("Succeeded", "Failed")


@dataclass(frozen=True)
class Node:
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: tuple[Mapping[str, Any], ...] = ()
    allocatable: Mapping[str, Decimal] = field(default_factory=dict)
    schedulable: bool = True


@dataclass(frozen=True)
class Placement:
    """Where a tier's pods may go: its template's nodeSelector and tolerations."""

    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Mapping[str, Any], ...] = ()


def _parse_resources(values: Mapping[str, Any] | None) -> Resources:
    out: Resources = {}
    for name, text in (values or {}).items():
        try:
            out[name] = quantity.parse(text)
        except QuantityError:
            continue  # a malformed value on a live object must not break the estimate
    return out


def nodes_from_api(items: Iterable[Mapping[str, Any]]) -> list[Node]:
    nodes = []
    for item in items:
        metadata, spec, status = item.get("metadata") or {}, item.get("spec") or {}, item.get("status") or {}
        nodes.append(
            Node(
                name=metadata.get("name", ""),
                labels=dict(metadata.get("labels") or {}),
                taints=tuple(spec.get("taints") or ()),
                allocatable=_parse_resources(status.get("allocatable")),
                schedulable=not spec.get("unschedulable", False),
            )
        )
    return nodes


def pod_requests(pod: Mapping[str, Any]) -> Resources:
    """Effective requests: max(sum of containers, largest init container), per resource."""
    spec = pod.get("spec") or {}
    total: Resources = {}
    for container in spec.get("containers") or []:
        for name, value in _parse_resources((container.get("resources") or {}).get("requests")).items():
            total[name] = total.get(name, Decimal(0)) + value
    for container in spec.get("initContainers") or []:
        for name, value in _parse_resources((container.get("resources") or {}).get("requests")).items():
            total[name] = max(total.get(name, Decimal(0)), value)
    return total


def occupying(pods: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The pods of a listing that hold node capacity a task pod cannot take: bound, not terminal, not a
    placeholder of this executor (those are preempted by any task pod)."""
    out = []
    for pod in pods:
        labels = (pod.get("metadata") or {}).get("labels") or {}
        bound = (pod.get("spec") or {}).get("nodeName")
        ended = (pod.get("status") or {}).get("phase") in _TERMINAL
        if bound and not ended and identity.LABEL_PLACEHOLDER not in labels:
            out.append(dict(pod))
    return out


def free_capacity(nodes: Sequence[Node], pods: Iterable[Mapping[str, Any]]) -> dict[str, Resources]:
    """allocatable minus requests of non-terminal pods, per node."""
    free = {node.name: dict(node.allocatable) for node in nodes}
    for pod in pods:
        node_name = (pod.get("spec") or {}).get("nodeName")
        phase = (pod.get("status") or {}).get("phase")
        if node_name not in free or phase in _TERMINAL:
            continue
        for name, value in pod_requests(pod).items():
            free[node_name][name] = free[node_name].get(name, Decimal(0)) - value
    return free


def tolerates(tolerations: Sequence[Mapping[str, Any]], taint: Mapping[str, Any]) -> bool:
    """True when one of ``tolerations`` tolerates ``taint``, as the API defines it: an empty
    effect matches every effect; ``Exists`` ignores the value and, without a key, matches every
    taint; ``Equal`` (the default) needs the same key and value."""
    for toleration in tolerations:
        effect = toleration.get("effect")
        if effect and effect != taint.get("effect"):
            continue
        key = toleration.get("key")
        if toleration.get("operator", "Equal") == "Exists":
            if key in (None, "", taint.get("key")):
                return True
        elif key == taint.get("key") and (toleration.get("value") or "") == (taint.get("value") or ""):
            return True
    return False


def eligible(node: Node, placement: Placement) -> bool:
    if not node.schedulable:
        return False
    if any(node.labels.get(k) != v for k, v in placement.node_selector.items()):
        return False
    hard = [t for t in node.taints if t.get("effect") in ("NoSchedule", "NoExecute")]
    return all(tolerates(placement.tolerations, taint) for taint in hard)


def _fits(free: Mapping[str, Decimal], need: Mapping[str, Decimal]) -> bool:
    return all(free.get(name, Decimal(0)) >= amount for name, amount in need.items())


def placement_of(pod: Mapping[str, Any]) -> Placement:
    """Where a pod may schedule, from its own spec."""
    spec = pod.get("spec") or {}
    return Placement(dict(spec.get("nodeSelector") or {}), tuple(spec.get("tolerations") or ()))


def tier_requests(tier: Tier) -> Resources:
    return {name: quantity.parse(value) for name, value in tier.requests().items()}


def choose_tier(
    tiers: Sequence[Tier],
    nodes: Sequence[Node],
    free: Mapping[str, Resources],
    placements: Mapping[str, Placement],
    unbound: Iterable[tuple[Resources, Placement]] = (),
) -> Tier | None:
    """The largest auto tier that fits now; the smallest auto tier if none does; None if no auto tiers.

    ``unbound`` are pods already asked for but not yet on a node (requests, placement): they are
    placed first-fit-decreasing on their eligible nodes before any tier is tried.
    """
    candidates = sorted(
        (t for t in tiers if t.auto),
        key=lambda t: (t.cpu_cores(), t.memory_bytes(), t.gpu),
        reverse=True,
    )
    if not candidates:
        return None
    remaining = {name: dict(values) for name, values in free.items()}
    for need, where in sorted(unbound, key=lambda item: item[0].get("cpu", Decimal(0)), reverse=True):
        for node in nodes:
            if eligible(node, where) and _fits(remaining.get(node.name, {}), need):
                for name, amount in need.items():
                    remaining[node.name][name] = remaining[node.name].get(name, Decimal(0)) - amount
                break
    for tier in candidates:
        placement = placements.get(tier.name, Placement())
        need = tier_requests(tier)
        if any(eligible(node, placement) and _fits(remaining.get(node.name, {}), need) for node in nodes):
            return tier
    return candidates[-1]


def tier_placements(config: ExecutorConfig, load_spec: Any) -> dict[str, Placement]:
    """Each tier's placement: its template's nodeSelector/tolerations plus the config's defaults.

    ``load_spec(ref)`` returns a template's spec; tiers whose template cannot be loaded are left
    out (their pods fail at launch with the template error anyway).
    """
    out = {}
    for tier in config.tiers:
        try:
            spec = load_spec(tier.pod_template or config.pod_template_file)
        except ExecutorError:
            continue
        out[tier.name] = placement_with_defaults(config, spec)
    return out


def placement_with_defaults(config: ExecutorConfig, spec: Mapping[str, Any]) -> Placement:
    """A template's placement after the pod factory's config defaults: the template's nodeSelector
    keys win over ``worker_node_selector``; ``worker_tolerations`` are appended (no duplicates)."""
    selector = {**dict(config.worker_node_selector), **(spec.get("nodeSelector") or {})}
    tolerations = list(spec.get("tolerations") or ())
    for toleration in (t.to_k8s() for t in config.worker_tolerations):
        if toleration not in tolerations:
            tolerations.append(toleration)
    return Placement(selector, tuple(tolerations))


def auto_tier(
    config: ExecutorConfig,
    nodes: Sequence[Node] | None,
    placements: Mapping[str, Placement],
    active_pods: Iterable[Mapping[str, Any]],
    launching_tiers: Iterable[str | None],
) -> str:
    """The tier for a ``tier: auto`` task now; ``default_tier`` when node capacity is unknown."""
    if not nodes:
        return config.default_tier
    pods = list(active_pods)
    free = free_capacity(nodes, pods)
    unbound = [(pod_requests(p), placement_of(p)) for p in pods if not (p.get("spec") or {}).get("nodeName")]
    for name in launching_tiers:
        if name is not None and name in placements:
            unbound.append((tier_requests(config.tier(name)), placements[name]))
    tier = choose_tier(config.tiers, nodes, free, placements, unbound)
    return tier.name if tier is not None else config.default_tier


def unplaceable(pod: Mapping[str, Any], nodes: Sequence[Node]) -> str | None:
    """Why no node can ever hold ``pod`` (its requests exceed the allocatable of every node it may
    schedule on), naming the largest allowed values; None when one can, or when no node matches its
    placement at all (an autoscaled pool may have no node yet: the pending timeout decides then)."""
    placement = placement_of(pod)
    matching = [node for node in nodes if eligible(node, placement)]
    need = pod_requests(pod)
    if not matching or not need or any(_fits(node.allocatable, need) for node in matching):
        return None
    largest = max(matching, key=lambda n: tuple(n.allocatable.get(r, Decimal(0)) for r in sorted(need)))
    asked = ", ".join(f"{name}={quantity.format_for_resource(name, need[name])}" for name in sorted(need))
    allowed = ", ".join(
        f"{name}={quantity.format_for_resource(name, largest.allocatable.get(name, Decimal(0)))}"
        for name in sorted(need)
    )
    where = ",".join(f"{k}={v}" for k, v in sorted(placement.node_selector.items())) or "any node"
    return (
        f"requests {asked} fit no node this pod may run on ({len(matching)} matching {where}); the largest "
        f"allowed is {allowed} (node {largest.name}'s allocatable)"
    )
