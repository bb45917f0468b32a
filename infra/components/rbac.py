"""Service accounts and RBAC: least privilege, every grant named and justified.

Four service accounts, one per kind of access:

* ``<name>-scheduler`` (token mounted): ``airflow scheduler`` runs the executor, which is the
  Kubernetes API client of the platform.  Role ``<name>-scheduler`` in the platform namespace only:

  - ``pods``: create, get, list, watch, patch, delete - one pod per task, watched to completion,
    labelled done (patch), adopted after a restart (list) and cleaned up;
  - ``pods/log``: get - the failure reason of a task pod;
  - ``events``: list - why a pod is Pending (FailedScheduling, image pull errors).

* ``<name>-api-server`` (token mounted): Role ``<name>-api-server-logs``, ``pods/log`` get and
  nothing else.  Decision: Airflow 3's api-server reads the log of a *running* task through the
  executor's ``get_task_log`` (``FileTaskHandler._read`` for a RUNNING task instance), which
  reads the task's pod log by name (pod names are a function of the task key) from the Kubernetes
  API; without this grant the UI shows no log until the task has finished and remote logging has
  it.  Read-only, namespaced, not even ``get`` on pods: a compromised api-server can read task
  output, which it serves to users anyway, and nothing more.  The alternative - Airflow's worker log server on
  8793 in every task pod - would open an ingress port on every task pod instead.
* ``<name>-airflow`` (no token, no Role): dag-processor, triggerer and the migration Job talk to
  the database only.
* ``<name>-worker`` for task pods: ``automountServiceAccountToken: false`` and no Role at all -
  task code never gets an API credential (Airflow 3 workers call the Execution API only).

Two optional grants of the scheduler, each its own object so it can be reviewed and revoked:

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
API_SERVER_RULES: tuple[dict[str, Any], ...] = ({"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},)
NODE_READER_RULES: tuple[dict[str, Any], ...] = ({"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list"]},)
POD_METRICS_RULES: tuple[dict[str, Any], ...] = (
    {"apiGroups": ["metrics.k8s.io"], "resources": ["pods"], "verbs": ["get", "list"]},
)


@dataclass(frozen=True)
class RbacArgs:
    namespace: pulumi.Input[str]
    names: PlatformNames
    spec: RbacSpec
    # on every ServiceAccount: pods (task pods included) pull private images without naming a Secret
    image_pull_secrets: tuple[str, ...] = ()


class ExecutorRbac(pulumi.ComponentResource):
    """Scheduler and worker service accounts plus the scheduler's grants (module docstring)."""

    scheduler_service_account: pulumi.Output[str]
    api_server_service_account: pulumi.Output[str]
    control_plane_service_account: pulumi.Output[str]
    worker_service_account: pulumi.Output[str]

    def __init__(self, name: str, args: RbacArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TOKEN_PREFIX}ExecutorRbac", name, None, opts)
        n, ns = args.names, args.namespace
        labels = n.common_labels("rbac")

        def account(suffix: str, object_name: str, token: bool) -> pulumi.Output[str]:
            pull = [{"name": secret} for secret in args.image_pull_secrets] or None
            sa = k8s.core.v1.ServiceAccount(
                f"{name}-{suffix}",
                metadata=raw(metadata(object_name, ns, labels)),
                automount_service_account_token=token,
                image_pull_secrets=raw(pull),
                opts=child(self),
            )
            return name_of(sa)

        self.scheduler_service_account = account("scheduler", n.scheduler_service_account, True)
        self.api_server_service_account = account("api-server", n.api_server_service_account, True)
        self.control_plane_service_account = account("control-plane", n.control_plane_service_account, False)
        self.worker_service_account = account("worker", n.worker_service_account, False)
        subject = {"kind": "ServiceAccount", "name": self.scheduler_service_account, "namespace": ns}
        api_subject = {"kind": "ServiceAccount", "name": self.api_server_service_account, "namespace": ns}

        self._role(name, "scheduler", n.scheduler_role, ns, labels, SCHEDULER_RULES, subject)
        self._role(name, "api-server-logs", n.api_server_role, ns, labels, API_SERVER_RULES, api_subject)
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
                "apiServerServiceAccount": self.api_server_service_account,
                "controlPlaneServiceAccount": self.control_plane_service_account,
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
