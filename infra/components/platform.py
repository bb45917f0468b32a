"""``AirflowK8sPlatform``: the whole Kubernetes executor platform as one component.

Composition (each a component of its own, all children of this one)::

    PlatformNamespace   namespace (PSS restricted, pinned) + ResourceQuota + LimitRange
    NetworkPolicies     default deny + DNS, API, database, metrics and log-port allowances
    ExecutorRbac        scheduler/worker service accounts, scheduler Role (+ optional grants)
    PriorityClasses     task pods / N_min placeholders
    DagsVolume          DAGs PersistentVolumeClaim
    AirflowSecret       database URL (+ Fernet key) Secret
    ExecutorConfigMaps  airflow.cfg + pod templates, wired to the names above
    NodePools           Karpenter NodePools / patched existing nodes / declared only
    SchedulerDeployment Deployment + metrics Service + PodDisruptionBudget + the ReadWriteOnce
                        claim of its task intake spool (``intakeStorage: emptyDir``: none)

Importable from other stacks: build a :class:`PlatformArgs` (config from
:func:`airflow_k8s.infra.config.stack_config.parse_stack_config` or constructed directly, templates as parsed dicts,
secrets as Pulumi secret Outputs) and pass ``opts=pulumi.ResourceOptions(providers=[...])`` to
target a cluster; no provider is created here.

Before any resource is declared, :func:`preflight` checks what would otherwise fail at task
time: every tier's template exists, every template fits a node pool (labels + taints) and stays
within the LimitRange maximum.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi

from airflow_k8s.executor.contract import quantity
from airflow_k8s.executor.contract.config import DEFAULT_TIERS
from airflow_k8s.executor.contract.errors import ExecutorError
from airflow_k8s.infra.components.configmaps import (
    DEFAULT_TEMPLATE,
    ExecutorConfigMaps,
    ExecutorConfigMapsArgs,
    ExecutorWiring,
    build_executor_config,
    render_airflow_cfg,
)
from airflow_k8s.infra.components.k8s import TOKEN_PREFIX, child
from airflow_k8s.infra.components.names import PlatformNames
from airflow_k8s.infra.components.namespace import NamespaceArgs, PlatformNamespace
from airflow_k8s.infra.components.network import NetworkPolicies, NetworkPoliciesArgs
from airflow_k8s.infra.components.nodepools import NodePools, NodePoolsArgs
from airflow_k8s.infra.components.placement import unplaceable
from airflow_k8s.infra.components.podtemplates import TemplateWiring, render_template
from airflow_k8s.infra.components.priority import PriorityArgs, PriorityClasses
from airflow_k8s.infra.components.rbac import ExecutorRbac, RbacArgs
from airflow_k8s.infra.components.scheduler import SchedulerArgs, SchedulerDeployment
from airflow_k8s.infra.components.secrets import FERNET_KEY_KEY, AirflowSecret, AirflowSecretArgs, PlatformSecrets
from airflow_k8s.infra.components.storage import DagsVolume, DagsVolumeArgs
from airflow_k8s.infra.config.args import PlatformConfig


@dataclass(frozen=True)
class PlatformArgs:
    config: PlatformConfig
    templates: Mapping[str, Mapping[str, Any]]
    secrets: PlatformSecrets


class PreflightError(ValueError):
    """The configuration cannot work; raised before any resource is declared."""


def preflight(name: str, args: PlatformArgs) -> None:
    """Raise :class:`PreflightError` listing every problem found (module docstring).

    Also renders airflow.cfg and every template once with the names the platform will create,
    so a bad template or setting fails here, synchronously, with a readable message - not later
    inside an Output callback.
    """
    c, templates = args.config, args.templates
    names = PlatformNames(name)
    problems: list[str] = []
    wiring = TemplateWiring(
        config_map=names.airflow_config_map,
        pvc=names.dags_pvc,
        secret=names.secret,
        service_account=names.worker_service_account,
        secret_keys=args.secrets.keys(),
        fernet_key=FERNET_KEY_KEY if args.secrets.fernet_key is not None else None,
    )
    for template_name, template in sorted(templates.items()):
        try:
            render_template(template_name, template, wiring)
        except ExecutorError as exc:
            problems.append(str(exc))
    executor_wiring = ExecutorWiring(
        c.namespace, names.worker_service_account, names.task_priority_class, names.placeholder_priority_class, name
    )
    try:
        render_airflow_cfg(build_executor_config(c.executor, executor_wiring))
    except ExecutorError as exc:
        problems.append(f"airflow.cfg: {exc}")
    if DEFAULT_TEMPLATE not in templates:
        problems.append(f"the default template {DEFAULT_TEMPLATE} is missing (templates: {sorted(templates)})")
    for tier in DEFAULT_TIERS:
        if tier.pod_template and tier.pod_template not in templates:
            problems.append(f"tier {tier.name!r} uses template {tier.pod_template} which is not published")
    problems.extend(unplaceable(templates, c.node_pools.pools))
    ceilings = {"cpu": (c.limit_range.max_cpu, quantity.cpu), "memory": (c.limit_range.max_memory, quantity.memory)}
    for template_name, template in sorted(templates.items()):
        for container in (template.get("spec") or {}).get("containers") or []:
            limits = (container.get("resources") or {}).get("limits") or {}
            for resource, (ceiling, parse) in ceilings.items():
                if resource in limits and parse(limits[resource]) > parse(ceiling):
                    problems.append(
                        f"pod template {template_name}: container {container.get('name')} limit "
                        f"{resource}={limits[resource]} is above the LimitRange maximum {ceiling} "
                        f"(raise limitMax{resource.capitalize()})"
                    )
    if problems:
        raise PreflightError("platform preflight failed:\n" + "\n".join(f"  - {p}" for p in problems))


class AirflowK8sPlatform(pulumi.ComponentResource):
    """The platform (module docstring).  Outputs are the names other stacks need."""

    namespace: pulumi.Output[str]
    scheduler_service_account: pulumi.Output[str]
    worker_service_account: pulumi.Output[str]
    airflow_config_map: pulumi.Output[str]
    pod_templates_config_map: pulumi.Output[str]
    dags_pvc: pulumi.Output[str]
    intake_pvc: pulumi.Output[str | None]
    secret_name: pulumi.Output[str]
    task_priority_class: pulumi.Output[str]
    placeholder_priority_class: pulumi.Output[str]
    scheduler_deployment: pulumi.Output[str]
    metrics_service: pulumi.Output[str]
    config_checksum: pulumi.Output[str]
    node_pool_names: list[str]

    def __init__(self, name: str, args: PlatformArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TOKEN_PREFIX}AirflowK8sPlatform", name, None, opts)
        preflight(name, args)
        c = args.config
        names = PlatformNames(name)
        labels = names.common_labels()

        ns = PlatformNamespace(
            f"{name}-namespace",
            NamespaceArgs(c.namespace, c.quota, c.limit_range, names.quota, names.limit_range, labels),
            opts=child(self),
        )
        namespace = ns.namespace
        NetworkPolicies(
            f"{name}-network",
            NetworkPoliciesArgs(namespace, names, c.network, c.executor.metrics_port),
            opts=child(self),
        )
        rbac = ExecutorRbac(f"{name}-rbac", RbacArgs(namespace, names, c.rbac), opts=child(self))
        priority = PriorityClasses(f"{name}-priority", PriorityArgs(names, c.priority), opts=child(self))
        dags = DagsVolume(
            f"{name}-dags",
            DagsVolumeArgs(namespace, names.dags_pvc, c.storage, names.common_labels("dags")),
            opts=child(self),
        )
        secret = AirflowSecret(
            f"{name}-secrets",
            AirflowSecretArgs(namespace, names.secret, args.secrets, names.common_labels("secrets")),
            opts=child(self),
        )
        config_maps = ExecutorConfigMaps(
            f"{name}-config",
            ExecutorConfigMapsArgs(
                namespace=namespace,
                names=names,
                settings=c.executor,
                worker_service_account=rbac.worker_service_account,
                task_priority_class=priority.task_class,
                placeholder_priority_class=priority.placeholder_class,
                dags_claim=dags.claim_name,
                secret_name=secret.secret_name,
                secret_keys=secret.keys,
                fernet_key=FERNET_KEY_KEY if args.secrets.fernet_key is not None else None,
                templates=args.templates,
            ),
            opts=child(self),
        )
        pools = NodePools(
            f"{name}-nodepools",
            NodePoolsArgs(name, c.node_pools, names.common_labels("nodepool")),
            opts=child(self),
        )
        scheduler = SchedulerDeployment(
            f"{name}-scheduler",
            SchedulerArgs(
                names=names,
                spec=c.scheduler,
                namespace=namespace,
                service_account=rbac.scheduler_service_account,
                airflow_config_map=config_maps.airflow_config_map,
                templates_config_map=config_maps.templates_config_map,
                checksum=config_maps.checksum,
                executor_config=config_maps.executor_config,
                intake=c.intake,
            ),
            opts=child(self),
        )

        self.namespace = namespace
        self.scheduler_service_account = rbac.scheduler_service_account
        self.worker_service_account = rbac.worker_service_account
        self.airflow_config_map = config_maps.airflow_config_map
        self.pod_templates_config_map = config_maps.templates_config_map
        self.dags_pvc = dags.claim_name
        self.intake_pvc = scheduler.intake_claim_name
        self.secret_name = secret.secret_name
        self.task_priority_class = priority.task_class
        self.placeholder_priority_class = priority.placeholder_class
        self.scheduler_deployment = scheduler.deployment_name
        self.metrics_service = scheduler.service_name
        self.config_checksum = config_maps.checksum
        self.node_pool_names = pools.pool_names
        self.node_pool_backend = c.node_pools.backend
        self.register_outputs(self.outputs())

    def outputs(self) -> dict[str, Any]:
        """Stack-output names -> values (all plain: names and a checksum, never a secret).

        ``intakePvcName`` is None (null) when the spool is an emptyDir (``intakeStorage``).
        """
        return {
            "namespace": self.namespace,
            "schedulerServiceAccountName": self.scheduler_service_account,
            "workerServiceAccountName": self.worker_service_account,
            "airflowConfigMapName": self.airflow_config_map,
            "podTemplatesConfigMapName": self.pod_templates_config_map,
            "dagsPvcName": self.dags_pvc,
            "intakePvcName": self.intake_pvc,
            "secretName": self.secret_name,
            "nodePoolBackend": self.node_pool_backend,
            "nodePoolNames": self.node_pool_names,
            "taskPriorityClassName": self.task_priority_class,
            "placeholderPriorityClassName": self.placeholder_priority_class,
            "schedulerDeploymentName": self.scheduler_deployment,
            "metricsServiceName": self.metrics_service,
            "configChecksum": self.config_checksum,
        }
