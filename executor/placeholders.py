"""Placeholder ("balloon") pods: warm capacity for N_min.

Scaling rule: N(t) = min(max(P(t), N_min), N_max) pods, P(t) = tasks that want a pod (queued
or active).  Task pods take min(P, N_max) of those slots; the rest,
``max(0, min(N_min, N_max) - P)``, are placeholders.  They request the default tier's
resources on the default template's node pool, run a pause image at a PriorityClass below the
task pods' (so the Kubernetes scheduler preempts them the moment a task pod needs the room, and
a cluster autoscaler keeps nodes for them), and the executor deletes them as tasks arrive.

Placeholders have deterministic names ``<instance>-placeholder-<i>``, so creating one twice is
a 409, and reconciling after a restart is a matter of comparing indices.
"""

from __future__ import annotations

import re
from typing import Any

from executor import identity
from executor.config import ExecutorConfig
from executor.templates import TemplateStore

PAUSE_USER = 65535  # the pause image's non-root user


def desired_placeholders(n_min: int, n_max: int, wanted: int) -> int:
    return max(0, min(n_min, n_max) - wanted)


def placeholder_name(instance_id: str, index: int) -> str:
    stem = re.sub(r"[^a-z0-9-]+", "-", instance_id.lower()).strip("-")[:40].rstrip("-") or "executor"
    return f"{stem}-placeholder-{index}"


def placeholder_index(name: str) -> int | None:
    head, _, tail = name.rpartition("-placeholder-")
    return int(tail) if head and tail.isdigit() else None


def build_placeholder(config: ExecutorConfig, templates: TemplateStore, index: int) -> dict[str, Any]:
    """A pause pod reserving one default-tier task's worth of room in the default pool."""
    tier = config.tier(config.default_tier)
    template = templates.load(tier.pod_template or config.pod_template_file)
    spec = template.get("spec") or {}
    requests = tier.requests()
    pod_spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 0,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": PAUSE_USER,
            "runAsGroup": PAUSE_USER,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [
            {
                "name": "pause",
                "image": config.placeholder_image,
                "imagePullPolicy": "IfNotPresent",
                "resources": {"requests": dict(requests), "limits": dict(requests)},
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "runAsNonRoot": True,
                    "capabilities": {"drop": ["ALL"]},
                },
            }
        ],
    }
    for key in ("nodeSelector", "tolerations", "affinity"):
        if spec.get(key):
            pod_spec[key] = spec[key]
    selector = dict(pod_spec.get("nodeSelector") or {})
    for key, value in config.worker_node_selector:
        selector.setdefault(key, value)
    if selector:
        pod_spec["nodeSelector"] = selector
    if config.placeholder_priority_class:
        pod_spec["priorityClassName"] = config.placeholder_priority_class
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": placeholder_name(config.scheduler_instance_id, index),
            "namespace": config.namespace,
            "labels": {**identity.placeholder_labels(config.scheduler_instance_id), identity.LABEL_TIER: tier.name},
        },
        "spec": pod_spec,
    }
