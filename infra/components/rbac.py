"""Service accounts and RBAC: least privilege, every grant named and justified.

* ``<name>-scheduler`` ServiceAccount (token mounted: the scheduler talks to the API) bound to
  the Role ``<name>-scheduler`` in the platform namespace only, with exactly:

  - ``pods``: create, get, list, watch, patch, delete - one pod per task, watched to completion,
    labelled done (patch) and cleaned up;
  - ``pods/log``: get - the failure reason of a task pod;
  - ``events``: list - why a pod is Pending (FailedScheduling, image pull errors).

* ``<name>-worker`` ServiceAccount for task pods: ``automountServiceAccountToken: false`` and no
  Role at all - task code never gets an API credential.

Two optional grants, each its own object so it can be reviewed and revoked on its own:

* ``capacityAwareTiers`` (default on): ClusterRole + ClusterRoleBinding ``<name>-node-reader``,
  ``nodes`` get/list.  Nodes are cluster-scoped, so no namespaced Role can grant this; it lets
  ``tier: auto`` read allocatable capacity.  Off: auto tiers fall back to the default tier.
* ``utilizationMetrics`` (default on): Role + RoleBinding ``<name>-pod-metrics-reader``,
  ``metrics.k8s.io`` ``pods`` get/list in the namespace, for the utilization report.

No secrets, no configmaps, no wildcards, no ``escalate``/``bind``/``impersonate``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from airflow_k8s.infra.components.k8s import TOKEN_PREFIX, child, metadata, name_of, raw
from airflow_k8s.infra.components.names import PlatformNames
from airflow_k8s.infra.config.args import RbacSpec

RBAC_GROUP = "rbac.authorization.k8s.io"

SCHEDULER_RULES: tuple[dict[str, Any], ...] = (
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["create", "get", "list", "watch", "patch", "delete"]},
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["list"]},
)
NODE_READER_RULES: tuple[dict[str, Any], ...] = ({"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list"]},)
POD_METRICS_RULES: tuple[dict[str, Any], ...] = (
    {"apiGroups": ["metrics.k8s.io"], "resources": ["pods"], "verbs": ["get", "list"]},
)


@dataclass(frozen=True)
class RbacArgs:
    namespace: pulumi.Input[str]
    names: PlatformNames
    spec: RbacSpec


class ExecutorRbac(pulumi.ComponentResource):
    """Scheduler and worker service accounts plus the scheduler's grants (module docstring)."""

    scheduler_service_account: pulumi.Output[str]
    worker_service_account: pulumi.Output[str]

    def __init__(self, name: str, args: RbacArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TOKEN_PREFIX}ExecutorRbac", name, None, opts)
        n, ns = args.names, args.namespace
        labels = n.common_labels("rbac")
        scheduler_sa = k8s.core.v1.ServiceAccount(
            f"{name}-scheduler",
            metadata=raw(metadata(n.scheduler_service_account, ns, labels)),
            automount_service_account_token=True,
            opts=child(self),
        )
        worker_sa = k8s.core.v1.ServiceAccount(
            f"{name}-worker",
            metadata=raw(metadata(n.worker_service_account, ns, labels)),
            automount_service_account_token=False,
            opts=child(self),
        )
        self.scheduler_service_account = name_of(scheduler_sa)
        self.worker_service_account = name_of(worker_sa)
        subject = {"kind": "ServiceAccount", "name": self.scheduler_service_account, "namespace": ns}

        self._role(name, "scheduler", n.scheduler_role, ns, labels, SCHEDULER_RULES, subject)
        if args.spec.utilization_metrics:
            self._role(name, "pod-metrics", n.pod_metrics_reader, ns, labels, POD_METRICS_RULES, subject)
        if args.spec.capacity_aware_tiers:
            cluster_role = k8s.rbac.v1.ClusterRole(
                f"{name}-node-reader",
                metadata=raw(metadata(n.node_reader, None, labels)),
                rules=raw(list(NODE_READER_RULES)),
                opts=child(self),
            )
            k8s.rbac.v1.ClusterRoleBinding(
                f"{name}-node-reader",
                metadata=raw(metadata(n.node_reader, None, labels)),
                role_ref=raw({"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": name_of(cluster_role)}),
                subjects=raw([subject]),
                opts=child(self),
            )
        self.register_outputs(
            {
                "schedulerServiceAccount": self.scheduler_service_account,
                "workerServiceAccount": self.worker_service_account,
            }
        )

    def _role(
        self,
        name: str,
        suffix: str,
        object_name: str,
        namespace: pulumi.Input[str],
        labels: dict[str, str],
        rules: tuple[dict[str, Any], ...],
        subject: dict[str, Any],
    ) -> None:
        role = k8s.rbac.v1.Role(
            f"{name}-{suffix}",
            metadata=raw(metadata(object_name, namespace, labels)),
            rules=raw(list(rules)),
            opts=child(self),
        )
        k8s.rbac.v1.RoleBinding(
            f"{name}-{suffix}",
            metadata=raw(metadata(object_name, namespace, labels)),
            role_ref=raw({"apiGroup": RBAC_GROUP, "kind": "Role", "name": name_of(role)}),
            subjects=raw([subject]),
            opts=child(self),
        )
