"""``AirflowK8sPlatform``: Airflow 3 with this project's Kubernetes executor, as one component.

Composition (each a component of its own, all children of this one)::

    PlatformNamespace       namespace (PSS restricted, pinned; protected) + ResourceQuota + LimitRange
    NetworkPolicies         default deny + DNS, database, Kubernetes API, Execution API, logs, metrics
    ExecutorRbac            scheduler / api-server / control-plane / worker service accounts and Roles
    PriorityClasses         task pods / N_min placeholders / control plane (replaced on a value change)
    DagsVolume              DAGs PersistentVolumeClaim (protected)
    AirflowSecret           database URL, Fernet key, JWT secret, [api] secret_key (given or generated)
    ExecutorConfigMaps      airflow.cfg (executor + control plane) + pod templates, wired to the names
    NodePools               Karpenter NodePools / patched existing nodes / declared only
    ImageChecks             a preflight Job per image (worker, airflow) before anything runs them (``imagePreflight``)
    DatabaseMigration       ``airflow db migrate`` Job, once per release, before the Deployments roll
    SchedulerDeployment     ``airflow scheduler`` running the executor + metrics Service + PDB
    ApiServerDeployment     ``airflow api-server`` (UI + Execution API) + Service + PDB
    DagProcessorDeployment  ``airflow dag-processor`` + PDB
    TriggererDeployment     ``airflow triggerer`` + PDB (``triggererEnabled``)
    SchedulerPodMonitor     prometheus-operator PodMonitor (``podMonitor``)
    DatabaseCleanup         ``airflow db clean`` CronJob (``dbCleanEnabled``)          - addons/
    UiAccess                Ingress or HTTPRoute for the UI (``uiHost``)
    StatsdExporter          Airflow's own metrics through a StatsD exporter (``airflowMetrics``)

The metadata database stays outside (``databaseUrl``); only the control plane gets its URL.

Importable from other stacks: build a :class:`PlatformArgs` (config from
:func:`airflow_k8s.infra.config.stack_config.parse_stack_config` or constructed directly,
templates from :func:`airflow_k8s.infra.shipped_templates` or your own, secrets as Pulumi secret
Outputs) and pass ``opts=pulumi.ResourceOptions(providers=[...])`` to target a cluster; no
provider is created here.  That provider must update ConfigMaps and Secrets in place: a
:class:`~airflow_k8s.infra.components.provider.PlatformProvider`, or the default provider with
``kubernetes:enableConfigMapMutable`` / ``enableSecretMutable`` - the component refuses anything
else (:mod:`airflow_k8s.infra.components.provider`).

Before any resource is declared, :func:`~airflow_k8s.infra.components.preflight.preflight`
checks what would otherwise fail later: every tier's template exists, every template fits a node
pool and stays within the LimitRange maximum, airflow.cfg renders and loads back, and the
ResourceQuota holds what may run at once.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pulumi

from airflow_k8s.infra.components import roles
from airflow_k8s.infra.components.addons.compose import AddonInputs, create_addons
from airflow_k8s.infra.components.airflowpod import Runtime
from airflow_k8s.infra.components.configmaps import ExecutorConfigMaps, ExecutorConfigMapsArgs
from airflow_k8s.infra.components.controlplane import (
    AirflowDeployment,
    ApiServerDeployment,
    DagProcessorDeployment,
    DeploymentArgs,
    SchedulerDeployment,
    ServicePort,
    TriggererDeployment,
)
from airflow_k8s.infra.components.imagecheck import ImageCheckArgs, ImageChecks
from airflow_k8s.infra.components.k8s import TOKEN_PREFIX, child
from airflow_k8s.infra.components.migration import DatabaseMigration, MigrationArgs
from airflow_k8s.infra.components.monitoring import PodMonitorArgs, SchedulerPodMonitor
from airflow_k8s.infra.components.names import PlatformNames
from airflow_k8s.infra.components.namespace import NamespaceArgs, PlatformNamespace
from airflow_k8s.infra.components.network import NetworkFeatures, NetworkPolicies, NetworkPoliciesArgs
from airflow_k8s.infra.components.nodepools import NodePools, NodePoolsArgs
from airflow_k8s.infra.components.podoptions import ADMIN_PASSWORD_KEY
from airflow_k8s.infra.components.preflight import (
    PlatformArgs,
    PreflightError,
    control_plane_settings,
    executor_wiring,
    pod_options,
    preflight,
)
from airflow_k8s.infra.components.priority import PriorityArgs, PriorityClasses
from airflow_k8s.infra.components.provider import PlatformProvider, provider_problems
from airflow_k8s.infra.components.rbac import ExecutorRbac, RbacArgs
from airflow_k8s.infra.components.secrets import AirflowSecret, AirflowSecretArgs
from airflow_k8s.infra.components.storage import DagsVolume, DagsVolumeArgs

__all__ = ["AirflowK8sPlatform", "PlatformArgs", "PlatformProvider", "PreflightError", "preflight"]


class AirflowK8sPlatform(pulumi.ComponentResource):
    """The platform (module docstring).  Outputs are the names other stacks need."""

    namespace: pulumi.Output[str]
    scheduler_service_account: pulumi.Output[str]
    worker_service_account: pulumi.Output[str]
    airflow_config_map: pulumi.Output[str]
    pod_templates_config_map: pulumi.Output[str]
    dags_pvc: pulumi.Output[str]
    secret_name: pulumi.Output[str]
    task_priority_class: pulumi.Output[str]
    placeholder_priority_class: pulumi.Output[str]
    scheduler_deployment: pulumi.Output[str]
    api_server_deployment: pulumi.Output[str]
    api_server_service: pulumi.Output[str]
    dag_processor_deployment: pulumi.Output[str]
    triggerer_deployment: pulumi.Output[str | None]
    migration_job: pulumi.Output[str]
    image_check_jobs: pulumi.Output[list[str]]
    metrics_service: pulumi.Output[str]
    pod_monitor: pulumi.Output[str | None]
    config_checksum: pulumi.Output[str]
    db_clean_cronjob: pulumi.Output[str | None]
    ui_route: pulumi.Output[str | None]
    statsd_service: pulumi.Output[str | None]
    execution_api_url: pulumi.Output[str | None]
    node_pool_names: list[str]
    node_pool_backend: str

    def __init__(self, name: str, args: PlatformArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TOKEN_PREFIX}AirflowK8sPlatform", name, None, opts)
        refused = provider_problems(self)
        if refused:
            lines = "\n".join(f"  - {p}" for p in refused)
            raise PreflightError(f"the Kubernetes provider is not set up for this platform:\n{lines}")
        preflight(name, args)
        c = args.config
        names = PlatformNames(name)
        labels = names.common_labels()

        ns = PlatformNamespace(
            f"{name}-namespace",
            NamespaceArgs(
                c.namespace, c.quota, c.limit_range, names.quota, names.limit_range, labels, c.protection.namespace
            ),
            opts=child(self),
        )
        namespace = ns.namespace
        features = NetworkFeatures(
            c.executor.metrics_port, c.control_plane.triggerer, c.logging.remote,
            git_cidrs=c.addons.git_sync.cidrs if c.addons.git_sync.enabled else (), statsd=c.addons.metrics.statsd,
        )  # fmt: skip
        network = NetworkPolicies(
            f"{name}-network", NetworkPoliciesArgs(namespace, names, c.network, features), opts=child(self)
        )
        rbac = ExecutorRbac(
            f"{name}-rbac", RbacArgs(namespace, names, c.rbac, c.pods.image_pull_secrets), opts=child(self)
        )
        priority = PriorityClasses(f"{name}-priority", PriorityArgs(names, c.priority), opts=child(self))
        dags = DagsVolume(
            f"{name}-dags",
            DagsVolumeArgs(namespace, names.dags_pvc, c.storage, names.common_labels("dags"), c.protection.dags_volume),
            opts=child(self),
        )
        secret = AirflowSecret(
            f"{name}-secrets",
            AirflowSecretArgs(
                namespace,
                names.secret,
                args.secrets,
                names.common_labels("secrets"),
                {key: f"{ref.name}:{ref.key}" for key, ref in c.existing_secrets.refs},
                admin_password=c.addons.access.simple,
            ),
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
                templates=args.templates,
                control_plane=control_plane_settings(name, c),
                api_server_service=names.api_server_service,
                schedulers=c.control_plane.scheduler_replicas,
                identity=c.identity,
            ),
            opts=child(self),
        )
        pools = NodePools(
            f"{name}-nodepools",
            NodePoolsArgs(name, c.node_pools, names.common_labels("nodepool")),
            opts=child(self),
        )

        def runtime(role: str) -> Runtime:
            cp = c.control_plane
            return Runtime(
                cp.image, cp.image_pull_policy, cp.resources_of(role), c.identity.run_as_user, c.identity.run_as_group
            )

        checks: list[pulumi.Resource] = []
        before_migration: list[pulumi.Resource] = []
        check_names: list[pulumi.Output[str]] = []
        if c.image_preflight.enabled:
            image_checks = ImageChecks(
                f"{name}-image-checks",
                ImageCheckArgs(
                    names=names, namespace=namespace, airflow_version=c.image_preflight.airflow_version,
                    worker_image=c.executor.worker_image, airflow_runtime=runtime("scheduler"),
                    execution_api_url=executor_wiring(name, c).execution_api_url,
                    executor_config=config_maps.executor_config, templates=config_maps.templates,
                    template_fingerprint=template_fingerprint(args, c),
                    control_plane_service_account=rbac.control_plane_service_account,
                    airflow_config_map=config_maps.airflow_config_map,
                    templates_config_map=config_maps.templates_config_map, dags_claim=dags.claim_name,
                    template_dir=c.executor.pod_template_dir, after=[network],
                    resources=c.image_preflight.resources.to_k8s(),
                ),
                opts=child(self),
            )  # fmt: skip
            checks, check_names = list(image_checks.jobs), image_checks.job_names
            before_migration = [image_checks.airflow_job]
        migration = DatabaseMigration(
            f"{name}-db-migrate",
            MigrationArgs(
                names, runtime("migration"), namespace, rbac.control_plane_service_account,
                config_maps.airflow_config_map, secret.secret_name, after=[network, *before_migration],
                options=pod_options(c, "migration", names.secret), priority_class=priority.control_plane_class,
                secrets_hmac=secret.fingerprint(roles.migration().secret_keys),
            ),
            opts=child(self),
        )  # fmt: skip

        def admin_keys(role: str) -> tuple[str, ...]:
            """The api-server also reads the simple auth manager's Admin password (its init container)."""
            return (ADMIN_PASSWORD_KEY,) if role == "api-server" and c.addons.access.simple else ()

        def deployment(
            cls: type[AirflowDeployment],
            role: roles.Role,
            key: str,
            service_account: pulumi.Input[str],
            **extra: Any,
        ) -> AirflowDeployment:
            return cls(
                f"{name}-{role.name}",
                DeploymentArgs(
                    names=names, role=role, runtime=runtime(key), namespace=namespace,
                    service_account=service_account, airflow_config_map=config_maps.airflow_config_map,
                    templates_config_map=config_maps.templates_config_map, dags_claim=dags.claim_name,
                    secret=secret.secret_name, template_dir=c.executor.pod_template_dir,
                    checksum=config_maps.checksum_for(role.templates),
                    secrets_hmac=secret.fingerprint(role.secret_keys + admin_keys(role.name)),
                    priority_class=priority.control_plane_class,
                    after=[migration.job, *checks], options=pod_options(c, key, names.secret), **extra,
                ),
                opts=child(self),
            )  # fmt: skip

        scheduler = deployment(
            SchedulerDeployment, roles.scheduler(c.executor.metrics_port), "scheduler", rbac.scheduler_service_account,
            replicas=c.control_plane.scheduler_replicas,
            service=(names.metrics_service, ServicePort(roles.METRICS_PORT_NAME, c.executor.metrics_port)),
        )  # fmt: skip
        api_server = deployment(
            ApiServerDeployment, roles.api_server(), "apiServer", rbac.api_server_service_account,
            replicas=c.control_plane.api_server_replicas,
            service=(names.api_server_service, ServicePort(roles.API_PORT_NAME, 8080)),
        )  # fmt: skip
        dag_processor = deployment(
            DagProcessorDeployment, roles.dag_processor(), "dagProcessor", rbac.control_plane_service_account
        )
        triggerer: pulumi.Output[str | None] = pulumi.Output.from_input(None)
        if c.control_plane.triggerer:
            triggerer = deployment(
                TriggererDeployment, roles.triggerer(), "triggerer", rbac.control_plane_service_account
            ).deployment_name
        addons = create_addons(
            self, name, c,
            AddonInputs(
                namespace, rbac.control_plane_service_account, config_maps.airflow_config_map, secret.secret_name,
                api_server.service_name or names.api_server_service, migration.job,
            ),
        )  # fmt: skip
        monitor: pulumi.Output[str | None] = pulumi.Output.from_input(None)
        if c.monitoring.pod_monitor:
            monitor = SchedulerPodMonitor(
                f"{name}-monitoring", PodMonitorArgs(names, namespace, c.monitoring.labels), opts=child(self)
            ).monitor_name

        self.namespace = namespace
        self.scheduler_service_account = rbac.scheduler_service_account
        self.worker_service_account = rbac.worker_service_account
        self.airflow_config_map = config_maps.airflow_config_map
        self.pod_templates_config_map = config_maps.templates_config_map
        self.dags_pvc = dags.claim_name
        self.secret_name = secret.secret_name
        self.task_priority_class = priority.task_class
        self.placeholder_priority_class = priority.placeholder_class
        self.scheduler_deployment = scheduler.deployment_name
        self.api_server_deployment = api_server.deployment_name
        assert api_server.service_name is not None and scheduler.service_name is not None
        self.api_server_service = api_server.service_name
        self.dag_processor_deployment = dag_processor.deployment_name
        self.triggerer_deployment = triggerer
        self.migration_job = migration.job_name
        self.image_check_jobs = pulumi.Output.all(*check_names) if check_names else pulumi.Output.from_input([])
        self.metrics_service = scheduler.service_name
        self.pod_monitor = monitor
        self.config_checksum = config_maps.checksum
        self.db_clean_cronjob = addons.db_clean_cronjob
        self.ui_route = addons.ui_route
        self.statsd_service = addons.statsd_service
        self.node_pool_names = pools.pool_names
        self.node_pool_backend = c.node_pools.backend
        self.execution_api_url = config_maps.executor_config.apply(lambda e: e.execution_api_server_url)
        self.register_outputs(self.outputs())

    def outputs(self) -> dict[str, Any]:
        """Stack-output names -> values (all plain: names, a URL and a checksum, never a secret).

        ``triggererDeploymentName``, ``podMonitorName``, ``dbCleanCronJobName``, ``uiRouteName`` and
        ``statsdServiceName`` are None (null) when that part is off.
        """
        return {
            "namespace": self.namespace,
            "schedulerServiceAccountName": self.scheduler_service_account,
            "workerServiceAccountName": self.worker_service_account,
            "airflowConfigMapName": self.airflow_config_map,
            "podTemplatesConfigMapName": self.pod_templates_config_map,
            "dagsPvcName": self.dags_pvc,
            "secretName": self.secret_name,
            "nodePoolBackend": self.node_pool_backend,
            "nodePoolNames": self.node_pool_names,
            "taskPriorityClassName": self.task_priority_class,
            "placeholderPriorityClassName": self.placeholder_priority_class,
            "schedulerDeploymentName": self.scheduler_deployment,
            "apiServerDeploymentName": self.api_server_deployment,
            "apiServerServiceName": self.api_server_service,
            "executionApiUrl": self.execution_api_url,
            "dagProcessorDeploymentName": self.dag_processor_deployment,
            "triggererDeploymentName": self.triggerer_deployment,
            "migrationJobName": self.migration_job,
            "imageCheckJobNames": self.image_check_jobs,
            "metricsServiceName": self.metrics_service,
            "podMonitorName": self.pod_monitor,
            "configChecksum": self.config_checksum,
            "dbCleanCronJobName": self.db_clean_cronjob,
            "uiRouteName": self.ui_route,
            "statsdServiceName": self.statsd_service,
        }


def template_fingerprint(args: PlatformArgs, config: Any) -> str:
    """A digest of what shapes the worker check's pod, from known values (the Job's name needs it at preview)."""
    e = config.executor
    shaping = {"templates": args.templates, "image": e.worker_image, "pull": e.image_pull_policy,
               "dir": e.pod_template_dir, "namespace": config.namespace}  # fmt: skip
    text = json.dumps(shaping, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()
