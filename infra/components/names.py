"""Kubernetes object names and labels of one platform instance, derived from its name.

Every object gets an explicit, deterministic name (no Pulumi auto-naming): airflow.cfg and the
pod templates must name the namespace, service accounts, ConfigMaps, PVC, Secret, Services and
priority classes, and a preview must show those names rather than unknowns - so every
``metadata`` is built from these known strings (only the namespace may be an Output).  The values still reach
airflow.cfg and the templates through the created resources' outputs (see
:mod:`airflow_k8s.infra.components.configmaps`), so a resource and its reference cannot drift apart.

Cluster-scoped objects (priority classes, the node-reader ClusterRole and its binding) are named
from the platform name alone, so the platform name must be unique within a cluster.
"""

from __future__ import annotations

from dataclasses import dataclass

from airflow_k8s.executor.tasks import identity

APP = "airflow-k8s"
LABEL_NAME = "app.kubernetes.io/name"
LABEL_INSTANCE = "app.kubernetes.io/instance"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
# The short label the worker templates and NetworkPolicies use for roles.
ROLE_LABEL = "component"
# The control plane's roles: the Deployments (and the migration Job) of Airflow 3.
SCHEDULER = "scheduler"
API_SERVER = "api-server"
DAG_PROCESSOR = "dag-processor"
TRIGGERER = "triggerer"
MIGRATION = "db-migrate"
DB_CLEAN = "db-clean"
STATSD = "statsd"
GIT_SYNC = "git-sync"
# Set by the executor on every pod it creates, after all overrides: a task cannot remove it.
EXECUTOR_POD_LABEL = identity.LABEL_EXECUTOR
TEMPLATES_LABEL = f"{APP}/pod-templates"
CONFIG_HASH_ANNOTATION = f"{APP}/config-sha256"


@dataclass(frozen=True)
class PlatformNames:
    """The names of every Kubernetes object of a platform called ``name``."""

    name: str

    def _n(self, suffix: str) -> str:
        return f"{self.name}-{suffix}"

    @property
    def scheduler_service_account(self) -> str:
        return self._n("scheduler")

    @property
    def api_server_service_account(self) -> str:
        return self._n("api-server")

    @property
    def control_plane_service_account(self) -> str:
        """dag-processor, triggerer and the migration Job: no Kubernetes API access, no token."""
        return self._n("control-plane")

    @property
    def worker_service_account(self) -> str:
        return self._n("worker")

    @property
    def scheduler_role(self) -> str:
        return self._n("scheduler")

    @property
    def api_server_role(self) -> str:
        return self._n("api-server-logs")

    @property
    def node_reader(self) -> str:
        return self._n("node-reader")

    @property
    def pod_metrics_reader(self) -> str:
        return self._n("pod-metrics-reader")

    @property
    def airflow_config_map(self) -> str:
        return self._n("config")

    @property
    def templates_config_map(self) -> str:
        return self._n("pod-templates")

    @property
    def dags_pvc(self) -> str:
        return self._n("dags")

    @property
    def secret(self) -> str:
        return self._n("secrets")

    @property
    def task_priority_class(self) -> str:
        return self._n("task")

    @property
    def placeholder_priority_class(self) -> str:
        return self._n("placeholder")

    @property
    def control_plane_priority_class(self) -> str:
        return self._n("control-plane")

    def deployment(self, role: str) -> str:
        """The Deployment of a control-plane role (``scheduler``, ``api-server``, ...)."""
        return self._n(role)

    @property
    def scheduler_deployment(self) -> str:
        return self.deployment(SCHEDULER)

    @property
    def metrics_service(self) -> str:
        return self._n("scheduler-metrics")

    @property
    def api_server_service(self) -> str:
        return self._n("api-server")

    @property
    def migration_job(self) -> str:
        return self._n("db-migrate")

    @property
    def pod_monitor(self) -> str:
        return self._n("scheduler")

    @property
    def db_clean(self) -> str:
        return self._n("db-clean")

    @property
    def statsd(self) -> str:
        """The StatsD exporter's Deployment and Service."""
        return self._n("statsd")

    @property
    def ui(self) -> str:
        """The UI's Ingress or HTTPRoute."""
        return self._n("ui")

    @property
    def quota(self) -> str:
        return self._n("quota")

    @property
    def limit_range(self) -> str:
        return self._n("limits")

    def network_policy(self, purpose: str) -> str:
        return self._n(purpose)

    def common_labels(self, component: str | None = None) -> dict[str, str]:
        labels = {LABEL_NAME: APP, LABEL_INSTANCE: self.name, LABEL_MANAGED_BY: "pulumi"}
        if component is not None:
            labels[LABEL_COMPONENT] = component
        return labels

    def selector(self, role: str) -> dict[str, str]:
        """matchLabels of one control-plane role's pods (Deployment, Service, PDB, policies)."""
        return {LABEL_NAME: APP, LABEL_INSTANCE: self.name, LABEL_COMPONENT: role}

    def scheduler_selector(self) -> dict[str, str]:
        return self.selector(SCHEDULER)
