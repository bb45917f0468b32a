"""Placeholder ("balloon") pods: warm capacity for N_min.

Scaling rule: N(t) = min(max(P(t), N_min), N_max) pods, P(t) = tasks that want a pod (queued
or active).  Task pods take min(P, N_max) of those slots; the rest,
``max(0, min(N_min, N_max) - P)``, are placeholders.  They request the default tier's
resources on the default template's node pool, run a pause image at a PriorityClass below the
task pods' (so the Kubernetes scheduler preempts them the moment a task pod needs the room, and
a cluster autoscaler keeps nodes for them), and the executor deletes them as tasks arrive.

Placeholders have deterministic names ``<instance>-placeholder-<i>``, so creating one twice is
a 409, and reconciling after a restart is a matter of comparing indices.

Several schedulers in one namespace (Airflow 3 runs them active-active) keep N_min once, not
once each: a :class:`WarmShare` says whether this scheduler is the one that keeps the
namespace's placeholders, and how many tasks the others want, so P(t) is the namespace's.
Alone (the default share), a scheduler keeps them against its own P(t).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from airflow_k8s.executor.contract.config import ExecutorConfig
from airflow_k8s.executor.pods.capacity import placement_with_defaults
from airflow_k8s.executor.pods.templates import TemplateStore
from airflow_k8s.executor.tasks import identity

PAUSE_USER = 65535  # the pause image's non-root user


@dataclass(frozen=True)
class WarmShare:
    """This scheduler's part in keeping N_min warm.

    ``keeper``: it keeps the namespace's placeholders (one scheduler does; the others keep none).
    ``wanted_elsewhere``: P(t) of the other schedulers, added to this one's.
    """

    keeper: bool = True
    wanted_elsewhere: int = 0


ALONE = WarmShare()


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
    placement = placement_with_defaults(config, spec)  # exactly where the default tier's task pods go
    if placement.node_selector:
        pod_spec["nodeSelector"] = dict(placement.node_selector)
    if placement.tolerations:
        pod_spec["tolerations"] = [dict(t) for t in placement.tolerations]
    if spec.get("affinity"):
        pod_spec["affinity"] = spec["affinity"]
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


class PlaceholderPool:
    """Which placeholder pods exist or are being created, and what to change to reach the target.

    Owned by the engine's loop thread.  ``plan`` returns the creations and deletions needed for
    the current P(t); the engine carries them out and reports back through the other methods.
    """

    def __init__(self, config: ExecutorConfig, templates: TemplateStore, *, backoff: float = 30.0) -> None:
        self.config = config
        self.templates = templates
        self.backoff = backoff
        self.pods: dict[str, bool] = {}  # name -> seen in the cluster (False: create in flight)
        self.share = ALONE
        self._deleting: set[str] = set()
        self._pause_until = 0.0

    def __len__(self) -> int:
        return len(self.pods)

    def __contains__(self, name: object) -> bool:
        return name in self.pods

    def observe(self, name: str, pod: dict[str, Any], deleted: bool) -> None:
        if deleted or (pod.get("metadata") or {}).get("deletionTimestamp"):
            self.pods.pop(name, None)
            if deleted:
                self._deleting.discard(name)
        elif name not in self._deleting and placeholder_index(name) is not None:
            self.pods[name] = True

    def relisted(self, seen: set[str]) -> None:
        for name, was_seen in list(self.pods.items()):
            if was_seen and name not in seen:
                del self.pods[name]

    def create_failed(self, name: str, now: float) -> None:
        """A create failed: forget it and pause creations (a quota or policy error would repeat)."""
        self.pods.pop(name, None)
        self._pause_until = now + self.backoff

    def delete_done(self, name: str) -> None:
        self._deleting.discard(name)

    def plan(self, now: float, wanted: int) -> tuple[list[tuple[str, Callable[[], dict[str, Any]]]], list[str]]:
        """(creations as (name, build), deletions) bringing the pool to N_min - P(t), capped by N_max.

        P(t) is ``wanted`` plus what the other schedulers want; a scheduler that is not the keeper
        brings its pool to zero.
        """
        wanted += self.share.wanted_elsewhere
        desired = desired_placeholders(self.config.worker_pods_min, self.config.worker_pods_max, wanted)
        if not self.share.keeper:
            desired = 0
        indexed = {placeholder_index(n): n for n in self.pods}
        deletions = []
        for index in sorted((i for i in indexed if i is not None and i >= desired), reverse=True):
            name = indexed[index]
            self.pods.pop(name)
            self._deleting.add(name)
            deletions.append(name)
        creations: list[tuple[str, Callable[[], dict[str, Any]]]] = []
        if now >= self._pause_until:
            for index in range(desired):
                if index in indexed:
                    continue
                name = placeholder_name(self.config.scheduler_instance_id, index)
                self.pods[name] = False
                creations.append((name, functools.partial(build_placeholder, self.config, self.templates, index)))
        return creations, deletions
