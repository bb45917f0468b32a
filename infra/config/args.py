"""The platform's configuration model: plain, frozen, Pulumi-free dataclasses.

:mod:`airflow_k8s.infra.config.stack_config` builds a :class:`PlatformConfig` from raw stack config values and
validates it; the components receive the parts they need.  Nothing here imports Pulumi, so the
model can be constructed and checked in ordinary unit tests (and by other tools).

Defaults are sized for a small development cluster; every one of them is also declared, with the
same value, in ``Pulumi.yaml`` (a test keeps the two in step).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING

from airflow_k8s.executor.contract.config import DEFAULT_TEMPLATE_DIR

if TYPE_CHECKING:
    from airflow_k8s.infra.config.addons import AddonsSpec
    from airflow_k8s.infra.config.pods import ExistingSecrets, PodSettings

NODE_POOL_BACKENDS = ("karpenter", "existing-nodes", "none")
ACCESS_MODES = ("ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod")
CAPACITY_TYPES = ("on-demand", "spot", "reserved")
GPU_RESOURCE = "nvidia.com/gpu"


@dataclass(frozen=True)
class QuotaSpec:
    """ResourceQuota of the namespace: caps what the executor may ever request in total.

    Quota is charged on requests *and* limits: :mod:`airflow_k8s.infra.config.quota` checks that it
    holds N_max task pods of the largest tier, the N_min placeholders and the control plane.
    """

    requests_cpu: str = "20"
    requests_memory: str = "48Gi"
    limits_cpu: str = "42"
    limits_memory: str = "96Gi"
    pods: int = 20
    gpus: int = 1

    def hard(self) -> dict[str, str]:
        return {
            "requests.cpu": self.requests_cpu,
            "requests.memory": self.requests_memory,
            "limits.cpu": self.limits_cpu,
            "limits.memory": self.limits_memory,
            "pods": str(self.pods),
            f"requests.{GPU_RESOURCE}": str(self.gpus),
        }


@dataclass(frozen=True)
class LimitRangeSpec:
    """Per-container defaults (for containers that state none) and ceilings.

    ``max_*`` must admit the largest tier and template (the GPU tier's 4 CPU / 16Gi limits by
    default); the platform checks that at program time instead of letting pods fail later.
    """

    default_cpu: str = "500m"
    default_memory: str = "1Gi"
    default_request_cpu: str = "250m"
    default_request_memory: str = "512Mi"
    max_cpu: str = "4"
    max_memory: str = "16Gi"


@dataclass(frozen=True)
class NetworkSpec:
    """Allowances on top of the default-deny NetworkPolicy (:mod:`~airflow_k8s.infra.components.network`).

    ``task_egress_cidrs``: extra egress of task pods and the triggerer (which runs task code too),
    any port; the database, a named Kubernetes API range and link-local addresses are always cut
    out of them.  ``ui_ingress_namespace``: namespace of the ingress controller that may reach the
    api-server (empty: none; ``kubectl port-forward`` works regardless).  ``remote_log_cidr``:
    HTTPS egress of task pods and the api-server to the remote log store, required when remote
    logging is on.  ``allow_open_task_egress``: a task egress of ``0.0.0.0/0`` is refused unless
    this says so explicitly (task code would reach every host on the internet).

    DNS (every pod): ``dns_pod_labels`` in ``dns_namespace`` select the cluster DNS pods (kube-dns
    and most CoreDNS installs label theirs ``k8s-app=kube-dns``); ``node_local_dns_ips`` are the
    addresses NodeLocal DNSCache answers on (its link-local ``169.254.20.10``, and the kube-dns
    Service IP when it runs in iptables mode), reached as ``ipBlock`` because its pods use the host
    network - a pod selector never matches them.
    """

    api_server_cidr: str = "0.0.0.0/0"
    database_cidr: str = "0.0.0.0/0"
    database_port: int = 5432
    monitoring_namespace: str = "monitoring"
    ui_ingress_namespace: str | None = None
    task_egress_cidrs: tuple[str, ...] = ()
    remote_log_cidr: str = ""
    dns_namespace: str = "kube-system"
    dns_pod_labels: tuple[tuple[str, str], ...] = (("k8s-app", "kube-dns"),)
    node_local_dns_ips: tuple[str, ...] = ()
    allow_open_task_egress: bool = False


@dataclass(frozen=True)
class RbacSpec:
    """The two optional grants of the scheduler (its base Role is fixed).

    ``capacity_aware_tiers``: a ClusterRole to get/list nodes, used by ``tier: auto`` to read
    allocatable capacity.  ``utilization_metrics``: a Role to get/list ``metrics.k8s.io`` pods in
    the namespace, used by the utilization report (U = R_used / R_requested).
    """

    capacity_aware_tiers: bool = True
    utilization_metrics: bool = True


@dataclass(frozen=True)
class DagsStorageSpec:
    """The DAGs PersistentVolumeClaim; ``storage_class`` None means the cluster default.

    Storage class and access mode are immutable on a claim (pulumi-kubernetes replaces it): with
    :class:`ProtectionSpec` on, such a change fails the update instead of deleting the DAGs.
    """

    size: str = "10Gi"
    storage_class: str | None = None
    access_mode: str = "ReadWriteMany"


@dataclass(frozen=True)
class Taint:
    key: str
    effect: str
    value: str | None = None

    def to_k8s(self) -> dict[str, str]:
        out = {"key": self.key, "effect": self.effect}
        if self.value is not None:
            out["value"] = self.value
        return out


@dataclass(frozen=True)
class NodePoolSpec:
    """One pool of nodes for task pods, independent of how it is provisioned.

    ``labels`` and ``taints`` are what templates select and tolerate.  ``instance_types``,
    ``capacity_types``, ``limits`` and the disruption settings are used by the Karpenter
    backend; ``nodes`` (existing node names) by the existing-nodes backend.
    """

    name: str
    labels: tuple[tuple[str, str], ...]
    taints: tuple[Taint, ...] = ()
    instance_types: tuple[str, ...] = ()
    capacity_types: tuple[str, ...] = ("on-demand",)
    limits: tuple[tuple[str, str], ...] = ()
    nodes: tuple[str, ...] = ()
    # Task pods cannot be restarted mid-run, so only empty nodes are consolidated; the delay
    # keeps a node warm for the next task (the 30-60 s pod start-up is mostly node start-up).
    consolidation_policy: str = "WhenEmpty"
    consolidate_after: str = "5m"
    expire_after: str = "720h"

    def label_dict(self) -> dict[str, str]:
        return dict(self.labels)


DEFAULT_NODE_POOLS: tuple[NodePoolSpec, ...] = (
    NodePoolSpec(
        name="workers",
        labels=(("node-type", "worker"),),
        taints=(Taint("dedicated", "NoSchedule", "worker"),),
        instance_types=("m6i.large", "m6i.xlarge"),
        capacity_types=("spot", "on-demand"),
        limits=(("cpu", "32"), ("memory", "128Gi")),
    ),
    NodePoolSpec(
        name="compute",
        labels=(("node-type", "compute-optimized"),),
        taints=(Taint("workload", "NoSchedule", "heavy"),),
        instance_types=("c6i.2xlarge", "c6i.4xlarge"),
        limits=(("cpu", "64"), ("memory", "128Gi")),
    ),
    NodePoolSpec(
        name="gpu",
        labels=(("node-type", "gpu"),),
        taints=(Taint(GPU_RESOURCE, "NoSchedule"),),
        instance_types=("g5.xlarge", "g5.2xlarge"),
        limits=(("cpu", "16"), ("memory", "64Gi"), (GPU_RESOURCE, "2")),
    ),
)


@dataclass(frozen=True)
class NodePoolsSpec:
    """How the pools are provided.  ``none`` (the default: any cluster) creates nothing - label and taint
    the nodes yourself; ``existing-nodes`` labels and taints named nodes; ``karpenter`` creates NodePools
    (needs Karpenter's CRDs and an EC2NodeClass)."""

    backend: str = "none"
    node_class: str = "default"
    pools: tuple[NodePoolSpec, ...] = DEFAULT_NODE_POOLS


@dataclass(frozen=True)
class PrioritySpec:
    """Task pods preempt placeholders: placeholder value < 0 <= task value.

    The task value defaults to 0, the priority of every pod without a class: a task pod then preempts
    placeholders only.  Above 0 it preempts any default-priority pod of the cluster that stands in its
    way - found on a real single-node cluster, where a task pod at 1000 evicted an in-cluster log store
    (a database would have gone the same way); a platform that wants that says so with ``taskPriority``.
    """

    task_value: int = 0
    placeholder_value: int = -10


@dataclass(frozen=True)
class ResourcesSpec:
    """requests and limits of one control-plane container (all four are set: the quota needs them)."""

    cpu_request: str
    memory_request: str
    cpu_limit: str
    memory_limit: str

    def to_k8s(self) -> dict[str, dict[str, str]]:
        return {
            "requests": {"cpu": self.cpu_request, "memory": self.memory_request},
            "limits": {"cpu": self.cpu_limit, "memory": self.memory_limit},
        }


# The control plane's roles, in the order the stack keys list them (``<role>CpuRequest``...).
CONTROL_PLANE_ROLES = ("scheduler", "apiServer", "dagProcessor", "triggerer", "migration")
DEFAULT_RESOURCES: dict[str, ResourcesSpec] = {
    "scheduler": ResourcesSpec("500m", "1Gi", "1", "2Gi"),
    "apiServer": ResourcesSpec("250m", "1Gi", "1", "2Gi"),
    "dagProcessor": ResourcesSpec("250m", "1Gi", "1", "2Gi"),
    "triggerer": ResourcesSpec("250m", "512Mi", "500m", "1Gi"),
    "migration": ResourcesSpec("250m", "512Mi", "1", "1Gi"),
}


@dataclass(frozen=True)
class ControlPlaneSpec:
    """The Airflow 3 control plane: one image, per-role resources, replicas, optional triggerer.

    ``image`` is the platform image (Dockerfile: apache/airflow 3.x plus this package's executor),
    run by the scheduler, api-server, dag-processor, triggerer and the migration Job alike.
    ``api_base_url`` empty means the api-server Service's in-cluster URL.
    """

    image: str = "ghcr.io/airflow-k8s/airflow:0.1.0"
    # Always: every start re-checks the registry and the pull credentials (a cached private image
    # is not reusable without them); control-plane pods restart rarely, so the cost is nil.
    image_pull_policy: str = "Always"
    resources: tuple[tuple[str, ResourcesSpec], ...] = tuple(DEFAULT_RESOURCES.items())
    api_server_replicas: int = 1
    triggerer: bool = True
    # Airflow 3 runs schedulers active-active; each runs this executor with its own share of the task
    # pods (ExecutorSettings.per_scheduler), and owns only the pods it created.
    scheduler_replicas: int = 1
    api_base_url: str = ""

    def resources_of(self, role: str) -> ResourcesSpec:
        return dict(self.resources)[role]


@dataclass(frozen=True)
class LoggingSpec:
    """Task logs after the pod is gone: Airflow's remote logging (off while ``remote_base_log_folder`` is "").

    While a task runs, the api-server reads its log from the pod (the executor's ``get_task_log``);
    afterwards only remote logging keeps it.  The folder's scheme picks Airflow's handler
    (``s3://``, ``gs://``, ``wasb://``...; the matching provider package must be in the image) and
    ``remote_log_conn_id`` names the Airflow connection holding its credentials.
    """

    remote_base_log_folder: str = ""
    remote_log_conn_id: str = ""

    @property
    def remote(self) -> bool:
        return bool(self.remote_base_log_folder)


@dataclass(frozen=True)
class ProtectionSpec:
    """Pulumi ``protect`` + ``retainOnDelete`` on the objects that hold data (off: throwaway stacks)."""

    namespace: bool = True
    dags_volume: bool = True


@dataclass(frozen=True)
class MonitoringSpec:
    """A prometheus-operator PodMonitor for the scheduler's metrics port (needs the operator's CRDs)."""

    pod_monitor: bool = False
    labels: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ExecutorSettings:
    """The airflow.cfg settings that come from stack config (names come from resources)."""

    worker_image: str = "apache/airflow:3.3.2"
    image_pull_policy: str = "IfNotPresent"
    worker_pods_min: int = 0
    worker_pods_max: int = 8
    pod_creation_timeout: int = 600
    max_pod_pending_timeout: int = 600
    delete_worker_pods: bool = True
    delete_worker_pods_on_failure: bool = False
    finished_pod_max_age_hours: int = 24
    default_tier: str = "medium"
    metrics_port: int = 9102
    placeholder_image: str = "registry.k8s.io/pause:3.10"
    pod_template_dir: str = DEFAULT_TEMPLATE_DIR

    @staticmethod
    def per_scheduler(total: int, schedulers: int) -> int:
        """One scheduler's share of ``total`` task pods: ``ceil(total / schedulers)``.

        airflow.cfg is shared by every scheduler and each executor caps *its own* pods at
        ``worker_pods_max``, so with ``schedulers`` of them ``workerPodsMax`` (the platform's N_max)
        is split; rounding up keeps the full N_max, and the quota check counts ``schedulers x
        share``.  ``worker_pods_min`` is not split: the executor keeps N_min once per namespace.
        """
        return -(-total // schedulers)


@dataclass(frozen=True)
class PodIdentitySpec:
    """The user and group every platform pod runs as (control plane, task pods, image checks).

    The official apache/airflow image's ``airflow`` user is uid 50000, and group 0 owns its
    files.  An image built for another uid sets these; the uid must have a passwd entry in every
    image (Airflow refuses to start without a user name), which the image preflight checks.
    """

    run_as_user: int = 50000
    run_as_group: int = 0


@dataclass(frozen=True)
class ImagePreflightSpec:
    """The image preflight Jobs (:mod:`airflow_k8s.infra.components.imagecheck`).

    ``airflow_version``: the Airflow release both images must carry (empty: not checked).
    ``resources``: what each check pod asks, whatever the pod it imitates asks - a check imports
    Airflow and reads a few files, and it runs during an ``up`` beside the old control plane and
    up to ``workerPodsMax`` task pods, so the quota check counts it (small, so it fits).
    """

    enabled: bool = True
    airflow_version: str = "3.3.2"
    resources: ResourcesSpec = field(default_factory=lambda: ResourcesSpec("100m", "512Mi", "500m", "512Mi"))


@dataclass(frozen=True)
class PlatformConfig:
    """Everything the stack config decides, validated (see :mod:`airflow_k8s.infra.config.stack_config`)."""

    namespace: str = "airflow"
    quota: QuotaSpec = field(default_factory=QuotaSpec)
    limit_range: LimitRangeSpec = field(default_factory=LimitRangeSpec)
    network: NetworkSpec = field(default_factory=NetworkSpec)
    rbac: RbacSpec = field(default_factory=RbacSpec)
    storage: DagsStorageSpec = field(default_factory=DagsStorageSpec)
    node_pools: NodePoolsSpec = field(default_factory=NodePoolsSpec)
    priority: PrioritySpec = field(default_factory=PrioritySpec)
    control_plane: ControlPlaneSpec = field(default_factory=ControlPlaneSpec)
    logging: LoggingSpec = field(default_factory=LoggingSpec)
    protection: ProtectionSpec = field(default_factory=ProtectionSpec)
    monitoring: MonitoringSpec = field(default_factory=MonitoringSpec)
    executor: ExecutorSettings = field(default_factory=ExecutorSettings)
    identity: PodIdentitySpec = field(default_factory=PodIdentitySpec)
    image_preflight: ImagePreflightSpec = field(default_factory=ImagePreflightSpec)
    pods: PodSettings = field(default_factory=lambda: _pods().PodSettings())
    existing_secrets: ExistingSecrets = field(default_factory=lambda: _pods().ExistingSecrets())
    addons: AddonsSpec = field(default_factory=lambda: _addons().AddonsSpec())


def _addons() -> ModuleType:
    """:mod:`airflow_k8s.infra.config.addons` (it imports this module: loaded on first use)."""
    from airflow_k8s.infra.config import addons

    return addons


def _pods() -> ModuleType:
    """:mod:`airflow_k8s.infra.config.pods` (it imports this module: loaded on first use)."""
    from airflow_k8s.infra.config import pods

    return pods
