"""metrics.k8s.io/v1beta1 as metrics-server serves it, computed from the simulation.

A Running pod's container uses ``request * behavior.cpu_usage`` CPU (reported as integer nanocores, ``"250000000n"``)
and ``request * behavior.memory_usage`` memory (``"65536Ki"``).  Containers without a request report a small
baseline.  Node usage is the sum over its running pods plus a fixed system overhead.  Only Running pods appear,
like metrics-server (which needs a scrape of a live container).
"""

from __future__ import annotations

from typing import Any

from .kubelet import Kubelet
from .pods import rfc3339
from .quantity import format_kibibytes, format_nanocores, to_milli
from .selectors import ObjectFilter
from .store import Store

GROUP_VERSION = "metrics.k8s.io/v1beta1"
_BASE_CPU_MILLI = 1.0  # 1m for containers without a cpu request
_BASE_MEMORY_MILLI = 8 * 1024 * 1024 * 1000  # 8Mi, in milli-bytes
_NODE_SYSTEM = (100.0, 512 * 1024 * 1024 * 1000)  # 100m CPU, 512Mi


def _container_usage(container: dict[str, Any], cpu_ratio: float, memory_ratio: float) -> tuple[float, float]:
    requests = (container.get("resources") or {}).get("requests") or {}
    cpu = to_milli(requests["cpu"]) * cpu_ratio if "cpu" in requests else _BASE_CPU_MILLI
    memory = to_milli(requests["memory"]) * memory_ratio if "memory" in requests else _BASE_MEMORY_MILLI
    return cpu, memory


def pod_metrics(store: Store, kubelet: Kubelet, selector: ObjectFilter) -> list[dict[str, Any]]:
    items = []
    now = rfc3339()
    for state in sorted(kubelet.running(), key=lambda s: s.key):
        stored = store.get("pods", state.namespace, state.name)
        if stored is None or stored.uid != state.uid or not selector.matches(stored.obj):
            continue
        meta = stored.obj["metadata"]
        containers = []
        for container in stored.obj["spec"].get("containers") or []:
            cpu, memory = _container_usage(container, state.behavior.cpu_usage, state.behavior.memory_usage)
            containers.append(
                {"name": container["name"], "usage": {"cpu": format_nanocores(cpu), "memory": format_kibibytes(memory)}}
            )
        items.append(
            {
                "metadata": {
                    "name": meta["name"],
                    "namespace": meta["namespace"],
                    "creationTimestamp": now,
                    "labels": meta.get("labels") or {},
                },
                "timestamp": now,
                "window": "15s",
                "containers": containers,
            }
        )
    return items


def node_metrics(store: Store, kubelet: Kubelet) -> list[dict[str, Any]]:
    usage: dict[str, list[float]] = {}
    for state in kubelet.running():
        stored = store.get("pods", state.namespace, state.name)
        if stored is None or state.node is None:
            continue
        total = usage.setdefault(state.node, [0.0, 0.0])
        for container in stored.obj["spec"].get("containers") or []:
            cpu, memory = _container_usage(container, state.behavior.cpu_usage, state.behavior.memory_usage)
            total[0] += cpu
            total[1] += memory
    now = rfc3339()
    items = []
    for node in store.items("nodes"):
        name = node.obj["metadata"]["name"]
        cpu, memory = usage.get(name, [0.0, 0.0])
        items.append(
            {
                "metadata": {"name": name, "creationTimestamp": now, "labels": node.obj["metadata"].get("labels", {})},
                "timestamp": now,
                "window": "20s",
                "usage": {
                    "cpu": format_nanocores(cpu + _NODE_SYSTEM[0]),
                    "memory": format_kibibytes(memory + _NODE_SYSTEM[1]),
                },
            }
        )
    return items


def metrics_list(kind: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"kind": kind, "apiVersion": GROUP_VERSION, "metadata": {}, "items": items}
