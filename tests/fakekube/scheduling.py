"""The scheduler half of the simulation (mixed into :class:`~.kubelet.Kubelet`, sharing its state and lock).

A new pod gets one scheduling attempt ``schedule_delay`` after creation.  If it does not fit it is marked
Unschedulable (PodScheduled=False, a FailedScheduling event, possibly preemption of lower-priority pods) and joins
the unschedulable set, which is retried -- highest priority first, then oldest -- whenever capacity frees (a pod
terminates or is deleted) or a node changes.  Within one retry pass, pods with identical scheduling needs are not
tried again once one of them failed, which keeps passes cheap with thousands of pending pods.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import lifecycle
from .config import ClusterConfig
from .pods import DEFAULT_SCHEDULER
from .scheduler import NodeState, PodState, choose_node, plan_preemption


class SchedulingMixin:
    _config: Callable[[], ClusterConfig]
    _nodes: dict[str, NodeState]
    _unschedulable: dict[str, PodState]
    _retry_pending: bool

    # provided by Kubelet
    def _push(self, delay: float, action: str, state: PodState | None = None) -> None: ...
    def _write(self, state: PodState, mutate: lifecycle.Mutation) -> dict[str, Any] | None: ...
    def _emit(
        self, state: PodState, reason: str, message: str, *, warning: bool = False, component: str = ""
    ) -> None: ...
    def _delete(self, state: PodState, *, graceful: bool) -> None: ...

    def _release(self, state: PodState) -> None:
        if state.holds and state.node in self._nodes:
            self._nodes[state.node].remove(state)
        state.holds = False
        self._request_retry()

    def _request_retry(self) -> None:
        if not self._retry_pending and self._unschedulable:
            self._retry_pending = True
            self._push(self._config().schedule_delay, "retry")

    def _try_schedule(self, state: PodState, failed: set[str] | None = None) -> bool:
        if state.stage not in ("pending", "unschedulable"):
            return False
        preset = state.spec.get("nodeName")
        if preset:
            node = self._nodes.get(preset)
            if node is None:
                return False  # no kubelet on that node: stays Pending, as in a real cluster
            short = node.insufficient(state.requests)
            if short:
                res = short[0].removeprefix("Insufficient ")
                self._write(state, lifecycle.rejected_mutation(f"OutOf{res}", f"Pod was rejected: {short[0]}"))
                state.stage = "terminated"
                return False
            self._bind(state, node)
            return True
        if failed is not None and state.signature in failed:
            return False  # an identical pod just failed in this pass
        node, message = choose_node(state, self._nodes)
        if node is not None:
            self._bind(state, node)
            return True
        if failed is not None:
            failed.add(state.signature)
        nominated = None
        if not state.victims and state.spec.get("preemptionPolicy") != "Never":
            plan = plan_preemption(state, self._nodes)
            if plan is not None:
                nominated = self._preempt(state, *plan)
        state.stage = "unschedulable"
        self._unschedulable[state.uid] = state
        if message != state.message or nominated:
            state.message = message
            self._write(state, lifecycle.unschedulable_mutation(message, nominated))
            self._emit(state, "FailedScheduling", message, warning=True, component=DEFAULT_SCHEDULER)
        return False

    def _retry_unschedulable(self) -> None:
        """Highest priority first, then in the order they became unschedulable (no full sort: O(pods))."""
        by_priority: dict[int, list[PodState]] = {}
        for state in self._unschedulable.values():
            by_priority.setdefault(state.priority, []).append(state)
        failed: set[str] = set()
        for priority in sorted(by_priority, reverse=True):
            for state in by_priority[priority]:
                self._try_schedule(state, failed)

    def _bind(self, state: PodState, node: NodeState) -> None:
        state.stage, state.node, state.holds = "bound", node.view.name, True
        node.add(state)
        self._unschedulable.pop(state.uid, None)
        if self._write(state, lifecycle.bind_mutation(node.view.name, node.view.host_ip)) is None:
            return
        message = f"Successfully assigned {state.namespace}/{state.name} to {node.view.name}"
        self._emit(state, "Scheduled", message, component=DEFAULT_SCHEDULER)
        self._push(self._config().start_delay, "start", state)

    def _preempt(self, state: PodState, node: NodeState, victims: list[PodState]) -> str:
        for victim in victims:
            why = f"{DEFAULT_SCHEDULER}: preempting to accommodate a higher priority pod"
            self._write(victim, lifecycle.disruption_mutation("PreemptionByScheduler", why))
            self._emit(
                victim,
                "Preempted",
                f"Preempted by pod {state.uid} on node {node.view.name}",
                component=DEFAULT_SCHEDULER,
            )
            state.victims.add(victim.key)
            self._delete(victim, graceful=True)
        return node.view.name
