"""The platform namespace: Pod Security "restricted", a ResourceQuota and a LimitRange.

The Pod Security admission labels enforce, audit and warn at ``restricted``, each pinned to the
version the project validates against (:data:`airflow_k8s.executor.pods.security.PSS_VERSION`): an unpinned
``latest`` would let a cluster upgrade tighten the rules under running workloads, while the
offline checks keep testing the old ones.

The ResourceQuota caps the namespace's total requests/limits, pods and GPUs - the hard ceiling
on cost, whatever N_max says.  A quota on cpu/memory makes the API server refuse pods without
requests/limits, so the LimitRange supplies per-container defaults and a per-container maximum.

The namespace holds everything, so deleting it deletes everything: with ``protectNamespace`` (the
default) it gets Pulumi ``protect`` - ``pulumi destroy`` and any change that would replace it fail
instead - and ``retain_on_delete``, so even an unprotected delete (a renamed resource, a removed
stack) leaves the Kubernetes object alone.  Throwaway stacks turn it off.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from airflow_k8s.executor.pods.security import PSS_VERSION
from airflow_k8s.infra.components.k8s import TOKEN_PREFIX, child, metadata, name_of, raw
from airflow_k8s.infra.config.args import LimitRangeSpec, QuotaSpec

PSS_LEVEL = "restricted"
PSS_MODES = ("enforce", "audit", "warn")


def pss_labels() -> dict[str, str]:
    labels = {}
    for mode in PSS_MODES:
        labels[f"pod-security.kubernetes.io/{mode}"] = PSS_LEVEL
        labels[f"pod-security.kubernetes.io/{mode}-version"] = PSS_VERSION
    return labels


def limit_range_spec(spec: LimitRangeSpec) -> dict[str, Any]:
    return {
        "limits": [
            {
                "type": "Container",
                "default": {"cpu": spec.default_cpu, "memory": spec.default_memory},
                "defaultRequest": {"cpu": spec.default_request_cpu, "memory": spec.default_request_memory},
                "max": {"cpu": spec.max_cpu, "memory": spec.max_memory},
            }
        ]
    }


@dataclass(frozen=True)
class NamespaceArgs:
    name: str
    quota: QuotaSpec
    limit_range: LimitRangeSpec
    quota_name: str
    limit_range_name: str
    labels: Mapping[str, str]
    protect: bool = True


class PlatformNamespace(pulumi.ComponentResource):
    """Namespace + ResourceQuota + LimitRange.  ``namespace`` is the created namespace's name."""

    namespace: pulumi.Output[str]

    def __init__(self, name: str, args: NamespaceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TOKEN_PREFIX}PlatformNamespace", name, None, opts)
        labels = dict(args.labels)
        ns = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=raw(metadata(args.name, None, {**labels, **pss_labels()})),
            opts=child(self, protect=args.protect, retain_on_delete=args.protect),
        )
        self.namespace = name_of(ns)
        self.quota = k8s.core.v1.ResourceQuota(
            f"{name}-quota",
            metadata=raw(metadata(args.quota_name, self.namespace, labels)),
            spec=raw({"hard": args.quota.hard()}),
            opts=child(self),
        )
        self.limit_range = k8s.core.v1.LimitRange(
            f"{name}-limits",
            metadata=raw(metadata(args.limit_range_name, self.namespace, labels)),
            spec=raw(limit_range_spec(args.limit_range)),
            opts=child(self),
        )
        self.register_outputs({"namespace": self.namespace})
