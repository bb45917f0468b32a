"""Scheduling decisions (pure functions over :class:`NodeState`/:class:`PodState`; no I/O, no locking).

Per node, the filters run in the default scheduler's order and stop at the first failure: cordoned node, an
untolerated NoSchedule/NoExecute taint, nodeSelector / required node affinity, then resource fit (every short
resource is reported).  The failure message is the scheduler's histogram, e.g.::

    0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 2 Insufficient cpu.
    preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims
    found for incoming pod.

Among feasible nodes the one with the fewest pods wins (ties: name), spreading load.  Preemption picks, among nodes
that only fail on resources, the one needing the fewest and lowest-priority victims (strictly lower priority than
the incoming pod; lowest priority, then youngest, evicted first).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .behavior import Behavior
from .nodes import NodeView, selector_mismatch, untolerated_taint


@dataclass(slots=True)
class PodState:
    """The simulation's private record of one pod (one uid)."""

    namespace: str
    name: str
    uid: str
    created: float  # monotonic
    priority: int
    requests: dict[str, int]
    spec: dict[str, Any]
    behavior: Behavior
    stage: str = "pending"  # pending | unschedulable | bound | waiting | running | terminated | terminating
    node: str | None = None
    epoch: int = 0  # bumped on every transition; queued actions from older epochs are stale
    holds: bool = False  # counted in its node's usage
    restarts: int = 0
    started_at: float | None = None  # wall clock, when Running
    message: str | None = None  # last unschedulable message
    victims: set[tuple[str, str]] = field(default_factory=set)
    signature: str = ""  # identical scheduling needs -> identical outcome within one scheduling pass

    def __post_init__(self) -> None:
        spec = self.spec
        needs = (
            sorted(self.requests.items()),
            self.priority,
            spec.get("nodeSelector"),
            spec.get("affinity"),
            spec.get("tolerations"),
        )
        self.signature = repr(needs)

    @property
    def key(self) -> tuple[str, str]:
        return self.namespace, self.name


@dataclass(slots=True)
class NodeState:
    view: NodeView
    used: dict[str, int] = field(default_factory=dict)
    pods: dict[tuple[str, str], PodState] = field(default_factory=dict)

    def insufficient(self, requests: dict[str, int], freed: dict[str, int] | None = None) -> list[str]:
        short = []
        for res, amount in requests.items():
            if amount <= 0:
                continue
            free = self.view.allocatable.get(res, 0) - self.used.get(res, 0) + (freed or {}).get(res, 0)
            if amount > free:
                short.append("Too many pods" if res == "pods" else f"Insufficient {res}")
        return short

    def add(self, pod: PodState) -> None:
        for res, amount in pod.requests.items():
            self.used[res] = self.used.get(res, 0) + amount
        self.pods[pod.key] = pod

    def remove(self, pod: PodState) -> None:
        if self.pods.pop(pod.key, None) is not None:
            for res, amount in pod.requests.items():
                self.used[res] = self.used.get(res, 0) - amount


def filter_reason(pod: PodState, node: NodeView) -> str | None:
    """Why a node is infeasible for reasons other than resources (None: it passes)."""
    if node.unschedulable:
        return "node(s) were unschedulable"
    taint = untolerated_taint(pod.spec, node)
    if taint is not None:
        return f"node(s) had untolerated taint {{{taint.key}: {taint.value}}}"
    if selector_mismatch(pod.spec, node):
        return "node(s) didn't match Pod's node affinity/selector"
    return None


def _histogram(reasons: Counter[str]) -> str:
    return ", ".join(sorted(f"{count} {reason}" for reason, count in reasons.items()))


def choose_node(pod: PodState, nodes: dict[str, NodeState]) -> tuple[NodeState | None, str]:
    """The node to bind to, or (None, the FailedScheduling message)."""
    if not nodes:
        return None, "no nodes available to schedule pods"
    reasons: Counter[str] = Counter()
    preemption: Counter[str] = Counter()
    best: NodeState | None = None
    for state in nodes.values():
        reason = filter_reason(pod, state.view)
        if reason is not None:
            reasons[reason] += 1
            preemption["Preemption is not helpful for scheduling"] += 1
            continue
        short = state.insufficient(pod.requests)
        if short:
            reasons.update(short)
            preemption["No preemption victims found for incoming pod"] += 1
            continue
        if best is None or (len(state.pods), state.view.name) < (len(best.pods), best.view.name):
            best = state
    if best is not None:
        return best, ""
    n = len(nodes)
    return None, (
        f"0/{n} nodes are available: {_histogram(reasons)}. preemption: 0/{n} nodes are available: "
        f"{_histogram(preemption)}."
    )


def plan_preemption(pod: PodState, nodes: dict[str, NodeState]) -> tuple[NodeState, list[PodState]] | None:
    """Victims whose eviction lets ``pod`` fit, or None if no node works."""
    best: tuple[tuple[int, int, str], NodeState, list[PodState]] | None = None
    for state in nodes.values():
        if filter_reason(pod, state.view) is not None:
            continue
        candidates = sorted(
            (p for p in state.pods.values() if p.holds and p.priority < pod.priority),
            key=lambda p: (p.priority, -p.created),
        )
        freed: dict[str, int] = {}
        victims: list[PodState] = []
        for victim in candidates:
            if not state.insufficient(pod.requests, freed):
                break
            victims.append(victim)
            for res, amount in victim.requests.items():
                freed[res] = freed.get(res, 0) + amount
        if not victims or state.insufficient(pod.requests, freed):
            continue
        score = (max(v.priority for v in victims), len(victims), state.view.name)
        if best is None or score < best[0]:
            best = (score, state, victims)
    return None if best is None else (best[1], best[2])
