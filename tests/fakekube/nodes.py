"""Simulated nodes: the configuration value (:class:`NodeSpec`), the Node object built from it, and the parsed view
the scheduler uses (:class:`NodeView`), plus the node-level predicates (nodeSelector, required node affinity,
taints/tolerations, cordon).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .quantity import to_milli

GPU = "nvidia.com/gpu"


@dataclass(frozen=True)
class Taint:
    key: str
    value: str = ""
    effect: str = "NoSchedule"  # NoSchedule | PreferNoSchedule | NoExecute

    def to_dict(self) -> dict[str, str]:
        out = {"key": self.key, "effect": self.effect}
        if self.value:
            out["value"] = self.value
        return out


@dataclass(frozen=True)
class NodeSpec:
    """A node to simulate.  Quantities use Kubernetes syntax; ``extra`` adds further allocatable resources."""

    name: str
    cpu: str = "8"
    memory: str = "32Gi"
    pods: int = 110
    gpus: int = 0
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: tuple[Taint, ...] = ()
    unschedulable: bool = False
    extra: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NodeSpec:
        """From JSON (control API / CLI): ``{"name":..., "cpu": "4", "taints": [{"key":..., "effect":...}]}``."""
        taints = tuple(Taint(**t) for t in data.get("taints") or ())
        known = {"name", "cpu", "memory", "pods", "gpus", "labels", "unschedulable", "extra"}
        unknown = set(data) - known - {"taints"}
        if unknown:
            raise ValueError(f"unknown node fields: {sorted(unknown)}")
        kwargs = {k: v for k, v in data.items() if k in known}
        return cls(taints=taints, **kwargs)

    def allocatable(self) -> dict[str, str]:
        out = {"cpu": str(self.cpu), "memory": str(self.memory), "pods": str(self.pods), "ephemeral-storage": "100Gi"}
        if self.gpus:
            out[GPU] = str(self.gpus)
        out.update({k: str(v) for k, v in self.extra.items()})
        return out

    def to_object(self, index: int) -> dict[str, Any]:
        labels = {
            "kubernetes.io/hostname": self.name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            **self.labels,
        }
        spec: dict[str, Any] = {"podCIDR": f"10.244.{index}.0/24"}
        if self.taints:
            spec["taints"] = [t.to_dict() for t in self.taints]
        if self.unschedulable:
            spec["unschedulable"] = True
        return {
            "kind": "Node",
            "apiVersion": "v1",
            "metadata": {"name": self.name, "labels": labels},
            "spec": spec,
            "status": {
                "capacity": self.allocatable(),
                "allocatable": self.allocatable(),
                "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
                "addresses": [
                    {"type": "InternalIP", "address": f"10.0.{index // 250}.{index % 250 + 1}"},
                    {"type": "Hostname", "address": self.name},
                ],
                "nodeInfo": {
                    "architecture": "amd64",
                    "bootID": f"boot-{self.name}",
                    "containerRuntimeVersion": "containerd://1.7.20",
                    "kernelVersion": "6.1.0-fakekube",
                    "kubeProxyVersion": "v1.31.0",
                    "kubeletVersion": "v1.31.0-fakekube",
                    "machineID": f"machine-{self.name}",
                    "operatingSystem": "linux",
                    "osImage": "fakekube",
                    "systemUUID": f"uuid-{self.name}",
                },
            },
        }


#: Used when no nodes are configured: effectively unlimited capacity.
DEFAULT_NODE = NodeSpec(name="fakekube-node", cpu="100000", memory="1Pi", pods=1_000_000, gpus=100_000)


@dataclass(frozen=True)
class NodeView:
    """What the scheduler needs from a Node object, parsed once per node change."""

    name: str
    labels: Mapping[str, str]
    taints: tuple[Taint, ...]
    allocatable: Mapping[str, int]  # milli-units
    unschedulable: bool
    host_ip: str

    @classmethod
    def from_object(cls, node: Mapping[str, Any]) -> NodeView:
        spec, status = node.get("spec") or {}, node.get("status") or {}
        taints = tuple(
            Taint(t.get("key", ""), t.get("value", ""), t.get("effect", "NoSchedule")) for t in spec.get("taints") or ()
        )
        allocatable = {k: to_milli(v) for k, v in (status.get("allocatable") or {}).items()}
        ips = [a["address"] for a in status.get("addresses") or () if a.get("type") == "InternalIP"]
        return cls(
            name=node["metadata"]["name"],
            labels=dict(node["metadata"].get("labels") or {}),
            taints=taints,
            allocatable=allocatable,
            unschedulable=bool(spec.get("unschedulable")),
            host_ip=ips[0] if ips else "10.0.0.1",
        )


def tolerates(tolerations: list[dict[str, Any]], taint: Taint) -> bool:
    for tol in tolerations:
        if tol.get("effect") and tol["effect"] != taint.effect:
            continue
        operator = tol.get("operator", "Equal")
        if operator == "Exists" and not tol.get("key"):
            return True
        if tol.get("key") != taint.key:
            continue
        if operator == "Exists" or tol.get("value", "") == taint.value:
            return True
    return False


def _expression_matches(expr: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    key, op, values = expr.get("key", ""), expr.get("operator", ""), expr.get("values") or []
    if op == "In":
        return labels.get(key) in values
    if op == "NotIn":
        return labels.get(key) not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    if op in ("Gt", "Lt") and key in labels and values:
        try:
            left, right = int(labels[key]), int(values[0])
        except ValueError:
            return False
        return left > right if op == "Gt" else left < right
    return False


def selector_mismatch(pod_spec: Mapping[str, Any], node: NodeView) -> bool:
    """True if nodeSelector or required node affinity excludes the node."""
    for key, value in (pod_spec.get("nodeSelector") or {}).items():
        if node.labels.get(key) != value:
            return True
    required = ((pod_spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    )
    if required:
        terms = required.get("nodeSelectorTerms") or []
        if not any(all(_expression_matches(e, node.labels) for e in t.get("matchExpressions") or []) for t in terms):
            return True
    return False


def untolerated_taint(pod_spec: Mapping[str, Any], node: NodeView) -> Taint | None:
    tolerations = pod_spec.get("tolerations") or []
    for taint in node.taints:
        if taint.effect in ("NoSchedule", "NoExecute") and not tolerates(tolerations, taint):
            return taint
    return None
