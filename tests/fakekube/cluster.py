"""The simulated cluster: store + scheduler/kubelet + nodes + admission + faults + stats, without HTTP.

``FakeKubeServer.cluster`` is one of these; tests use it to shape the cluster and to look inside it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from .admission import Admission
from .behavior import BehaviorPolicy
from .config import ClusterConfig
from .faults import Faults
from .kubelet import Kubelet
from .nodes import DEFAULT_NODE, NodeSpec, Taint
from .patch import merge_patch
from .pods import new_metadata
from .processes import ProcessMode
from .quotas import QuotaController
from .stats import Stats
from .store import Store

T = TypeVar("T")


WAIT_TIMEOUT = 60.0
"""Default deadline of the wait helpers: generous, so a loaded 2-core machine never fails a test that
would pass (a condition met sooner returns at once)."""


def wait_for(
    predicate: Callable[[], T], timeout: float = WAIT_TIMEOUT, interval: float = 0.005, message: str = ""
) -> T:
    """Poll ``predicate`` until it returns something truthy (returned); ``TimeoutError`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(message or f"condition not met within {timeout}s: {predicate!r}")
        time.sleep(interval)


class Cluster:
    def __init__(
        self,
        nodes: Iterable[NodeSpec] = (),
        *,
        config: ClusterConfig | None = None,
        behavior: BehaviorPolicy | None = None,
        priorities: dict[str, int] | None = None,
        seed: int = 0,
        process_mode: ProcessMode | None = None,
    ) -> None:
        self.config = config or ClusterConfig()
        self.store = Store(history_size=self.config.history_size, history_seconds=self.config.history_seconds)
        self.stats = Stats()
        self.store.observers.append(self.stats.observe)
        self.admission = Admission(self.store, lambda: self.config)
        self.faults = Faults(self.store, seed)
        self.priorities: dict[str, int] = dict(priorities or {})
        self.preemption_policies: dict[str, str] = {}
        self.kubelet = Kubelet(self.store, lambda: self.config, process_mode)
        self.quota_controller = QuotaController(self.admission.quotas, lambda: self.config, self.kubelet.call_later)
        self.kubelet.pod_hooks.append(self.quota_controller.observe)
        if behavior is not None:
            self.kubelet.behavior = behavior
        self._config_lock = threading.Lock()
        self._node_index = 0
        self.set_nodes(nodes)

    def start(self) -> None:
        self.kubelet.start()

    def stop(self) -> None:
        self.kubelet.stop()

    # -------------------------------------------------------------- config
    def configure(self, **changes: Any) -> ClusterConfig:
        """Change :class:`ClusterConfig` fields at runtime (e.g. ``configure(run_seconds=0.5)``)."""
        with self._config_lock:
            new = self.config.with_changes(**changes)
            if new.history_size != self.config.history_size:
                self.store.set_history_size(new.history_size)
            self.store.history_seconds = new.history_seconds
            self.config = new
            return new

    @property
    def behavior(self) -> BehaviorPolicy:
        return self.kubelet.behavior

    @behavior.setter
    def behavior(self, policy: BehaviorPolicy) -> None:
        """Applies to pods created from now on."""
        self.kubelet.behavior = policy

    def set_priorities(self, priorities: dict[str, int], preemption_policies: dict[str, str] | None = None) -> None:
        """The PriorityClasses the fake knows: name -> value (and -> preemptionPolicy, default
        PreemptLowerPriority), resolved at pod creation (unknown names get 0, or 403 with
        ``reject_unknown_priority_class``)."""
        self.priorities = dict(priorities)
        self.preemption_policies = dict(preemption_policies or {})

    # --------------------------------------------------------------- quota
    def resync_quotas(self, namespace: str | None = None) -> int:
        """Recalculate ResourceQuota usage now (what the quota controller does after ``quota_release_delay``);
        returns how many quotas changed."""
        return self.admission.quotas.resync(namespace)

    # --------------------------------------------------------------- nodes
    def set_nodes(self, specs: Iterable[NodeSpec]) -> None:
        """Make the node set exactly ``specs`` (empty: one effectively unlimited default node)."""
        specs = list(specs) or [DEFAULT_NODE]
        wanted = {spec.name for spec in specs}
        for stored in self.store.items("nodes"):
            if stored.obj["metadata"]["name"] not in wanted:
                self.store.delete("nodes", "", stored.obj["metadata"]["name"])
        for spec in specs:
            self.add_node(spec)

    def add_node(self, spec: NodeSpec) -> dict[str, Any]:
        """Create the node, or replace an existing one's labels, taints and capacity."""
        self._node_index += 1
        obj = spec.to_object(self._node_index)
        if self.store.get("nodes", "", spec.name) is None:
            obj["metadata"] = new_metadata(obj["metadata"], None)
            return self.store.create("nodes", obj).obj

        def replace(node: dict[str, Any]) -> dict[str, Any]:
            node["metadata"]["labels"] = obj["metadata"]["labels"]
            node["spec"], node["status"] = obj["spec"], obj["status"]
            return node

        return self.store.update("nodes", "", spec.name, replace).obj

    def remove_node(self, name: str) -> None:
        self.store.delete("nodes", "", name)

    def patch_node(
        self,
        name: str,
        *,
        labels: dict[str, str | None] | None = None,
        taints: list[Taint] | None = None,
        unschedulable: bool | None = None,
    ) -> dict[str, Any]:
        """Change a node like ``kubectl label/taint/cordon`` would (``None`` label values remove the label)."""
        patch: dict[str, Any] = {}
        if labels is not None:
            patch["metadata"] = {"labels": labels}
        spec: dict[str, Any] = {}
        if taints is not None:
            spec["taints"] = [t.to_dict() for t in taints]
        if unschedulable is not None:
            spec["unschedulable"] = unschedulable
        if spec:
            patch["spec"] = spec
        return self.store.update("nodes", "", name, lambda node: merge_patch(node, patch)).obj

    def nodes(self) -> list[dict[str, Any]]:
        return [s.obj for s in self.store.items("nodes")]

    # ----------------------------------------------------------- simulation
    def pause(self) -> None:
        self.kubelet.pause()

    def resume(self) -> None:
        self.kubelet.resume()

    def step(self, namespace: str, name: str) -> str:
        return self.kubelet.step(namespace, name)

    def complete(self, namespace: str, name: str, outcome: str = "succeed", exit_code: int | None = None) -> None:
        self.kubelet.complete(namespace, name, outcome, exit_code)

    def flush(self) -> int:
        return self.kubelet.flush()

    # ------------------------------------------------------------ inspection
    def pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        stored = self.store.get("pods", namespace, name)
        return None if stored is None else stored.copy()

    def pods(self, namespace: str | None = None) -> list[dict[str, Any]]:
        return [s.copy() for s in self.store.items("pods", namespace)]

    def phase(self, namespace: str, name: str) -> str | None:
        stored = self.store.get("pods", namespace, name)
        return None if stored is None else stored.obj["status"].get("phase")

    def events(self, namespace: str | None = None) -> list[dict[str, Any]]:
        return [s.copy() for s in self.store.items("events", namespace)]

    def logs(self, namespace: str, name: str) -> list[str] | None:
        return self.kubelet.logs(namespace, name)

    def process_pid(self, namespace: str, name: str) -> int | None:
        """The pid of the pod's process in process mode (None: no process started)."""
        stored = self.store.get("pods", namespace, name)
        return None if stored is None else self.kubelet.process_pid(stored.uid)

    def wait_for(self, predicate: Callable[[], T], timeout: float = WAIT_TIMEOUT, message: str = "") -> T:
        return wait_for(predicate, timeout, message=message)

    def wait_for_phase(self, namespace: str, name: str, *phases: str, timeout: float = WAIT_TIMEOUT) -> str:
        """Wait until the pod's phase is one of ``phases``; returns it."""
        reached = wait_for(
            lambda: phase if (phase := self.phase(namespace, name)) in phases else None,
            timeout,
            message=f"pod {namespace}/{name} never reached {phases}",
        )
        return str(reached)
