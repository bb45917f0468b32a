"""Which node pool a pod template lands on, decided the way the Kubernetes scheduler decides.

A pod fits a pool when (1) its ``nodeSelector`` is a subset of the pool's node labels and (2)
every taint of the pool with effect ``NoSchedule`` or ``NoExecute`` is tolerated by one of its
tolerations (``PreferNoSchedule`` only repels, it never blocks).  Toleration matching follows
the API: an empty key with ``Exists`` tolerates everything; ``Exists`` ignores the value;
``Equal`` (the default operator) needs the same value; an empty effect matches every effect.

The platform refuses to deploy a template that fits no pool (its pods would stay Pending until
``max_pod_pending_timeout``), so this check runs at program time, not at task time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from airflow_k8s.executor.pods import capacity
from airflow_k8s.infra.config.args import NodePoolSpec, Taint

BLOCKING_EFFECTS = ("NoSchedule", "NoExecute")


def tolerates(toleration: Mapping[str, Any], taint: Taint) -> bool:
    """True when ``toleration`` (a pod spec toleration dict) tolerates ``taint``.

    The executor's matcher (:func:`airflow_k8s.executor.pods.capacity.tolerates`) decides, so the platform's
    template-to-pool check and the scheduler's tier choice can never disagree.
    """
    return capacity.tolerates([toleration], taint.to_k8s())


def fits(pod_spec: Mapping[str, Any], pool: NodePoolSpec) -> list[str]:
    """Reasons the pod cannot run on ``pool`` (empty when it can)."""
    reasons = []
    labels = pool.label_dict()
    for key, value in (pod_spec.get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            reasons.append(f"nodeSelector {key}={value} does not match the pool's labels {labels}")
    tolerations = [t for t in pod_spec.get("tolerations") or [] if isinstance(t, Mapping)]
    for taint in pool.taints:
        if taint.effect in BLOCKING_EFFECTS and not any(tolerates(t, taint) for t in tolerations):
            shown = f"{taint.key}={taint.value}" if taint.value else taint.key
            reasons.append(f"taint {shown}:{taint.effect} is not tolerated")
    return reasons


def pools_for(template: Mapping[str, Any], pools: Iterable[NodePoolSpec]) -> list[str]:
    """Names of the pools the template's pods can be scheduled on."""
    spec = template.get("spec") or {}
    return [pool.name for pool in pools if not fits(spec, pool)]


def unplaceable(templates: Mapping[str, Mapping[str, Any]], pools: Iterable[NodePoolSpec]) -> list[str]:
    """One message per template that fits none of ``pools`` (with each pool's reasons)."""
    pools = list(pools)
    out = []
    for name, template in sorted(templates.items()):
        spec = template.get("spec") or {}
        if any(not fits(spec, pool) for pool in pools):
            continue
        why = "; ".join(f"{pool.name}: {', '.join(fits(spec, pool))}" for pool in pools) or "no pools are declared"
        out.append(f"pod template {name} fits no node pool ({why})")
    return out
