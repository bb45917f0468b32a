"""The platform's configuration model: plain, frozen, Pulumi-free dataclasses.

:mod:`airflow_k8s.infra.config.stack_config` builds a :class:`PlatformConfig` from raw stack config values and
validates it; the components receive the parts they need.  Nothing here imports Pulumi, so the
model can be constructed and checked in ordinary unit tests (and by other tools).

Defaults are sized for a small development cluster; every one of them is also declared, with the
same value, in ``Pulumi.yaml`` (a test keeps the two in step).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from airflow_k8s.executor.contract.config import DEFAULT_TEMPLATE_DIR

NODE_POOL_BACKENDS = ("karpenter", "existing-nodes", "none")
ACCESS_MODES = ("ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod")
PERSISTENT_VOLUME_CLAIM = "persistentVolumeClaim"
EMPTY_DIR = "emptyDir"
INTAKE_VOLUMES = (PERSISTENT_VOLUME_CLAIM, EMPTY_DIR)
CAPACITY_TYPES = ("on-demand", "spot", "reserved")
GPU_RESOURCE = "nvidia.com/gpu"


@dataclass(frozen=True)
class QuotaSpec:
    """ResourceQuota of the namespace: caps what the executor may ever request in total.

    ``pods`` must leave room for N_max task pods plus the scheduler; placeholder pods count
    too, but the executor deletes them as tasks arrive, so they never push task pods out.
    """

    requests_cpu: str = "16"
    requests_memory: str = "32Gi"
    limits_cpu: str = "32"
    limits_memory: str = "64Gi"
    pods: int = 40
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
    """Allowances on top of the namespace's default-deny NetworkPolicy."""

    api_server_cidr: str = "0.0.0.0/0"
    database_cidr: str = "0.0.0.0/0"
    database_port: int = 5432
    monitoring_namespace: str = "monitoring"
    worker_log_port: int = 8793


@dataclass(frozen=True)
class RbacSpec:
    """The two optional grants of the scheduler (its base Role is fixed).

    ``capacity_aware_tiers``: a ClusterRole to get/list nodes, used by ``tier: auto`` to read
    allocatable capacity.  ``utilization_metrics``: a Role to get/list ``metrics.k8s.io`` pods in
    the namespace, used by the utilization report (U = R_used / R_requested).
    """

    capacity_aware_tiers: bool = True
    utilization_metrics: bool = True


class ClaimSettings(Protocol):
    """What a PersistentVolumeClaim is made from (see :func:`airflow_k8s.infra.components.storage.claim_spec`)."""

    @property
    def size(self) -> str: ...
    @property
    def storage_class(self) -> str | None: ...
    @property
    def access_mode(self) -> str: ...


@dataclass(frozen=True)
class DagsStorageSpec:
    """The DAGs PersistentVolumeClaim; ``storage_class`` None means the cluster default."""

    size: str = "10Gi"
    storage_class: str | None = None
    access_mode: str = "ReadWriteMany"


@dataclass(frozen=True)
class IntakeStorageSpec:
    """The scheduler's task intake spool (airflow.cfg ``task_intake_dir``).

    The executor loses no task and runs none twice across scheduler restarts only while the spool
    survives, so by default it is a ``ReadWriteOnce`` PersistentVolumeClaim (one scheduler pod
    mounts it; ``storage_class`` None means the cluster default).  ``volume = "emptyDir"`` is for
    throwaway clusters: queued tasks and recorded results are lost whenever the scheduler pod is
    rescheduled to another node (drain, eviction, upgrade).  ``size`` is the claim's request, or
    the emptyDir's ``sizeLimit``.
    """

    volume: str = PERSISTENT_VOLUME_CLAIM
    size: str = "1Gi"
    storage_class: str | None = None

    @property
    def durable(self) -> bool:
        return self.volume == PERSISTENT_VOLUME_CLAIM

    @property
    def access_mode(self) -> str:
        return "ReadWriteOnce"  # a single scheduler replica; its Deployment uses strategy Recreate


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
    backend: str = "karpenter"
    node_class: str = "default"
    pools: tuple[NodePoolSpec, ...] = DEFAULT_NODE_POOLS


@dataclass(frozen=True)
class PrioritySpec:
    """Task pods preempt placeholders: placeholder value < 0 <= task value."""

    task_value: int = 1000
    placeholder_value: int = -10


@dataclass(frozen=True)
class SchedulerSpec:
    image: str = "ghcr.io/airflow-k8s/executor:0.1.0"
    # Always: every start re-checks the registry and the pull credentials (a cached private image
    # is not reusable without them); the scheduler restarts rarely, so the cost is nil.
    image_pull_policy: str = "Always"
    cpu_request: str = "100m"
    memory_request: str = "256Mi"
    cpu_limit: str = "500m"
    memory_limit: str = "512Mi"


@dataclass(frozen=True)
class ExecutorSettings:
    """The airflow.cfg settings that come from stack config (names come from resources)."""

    worker_image: str = "apache/airflow:2.8.0"
    image_pull_policy: str = "IfNotPresent"
    worker_pods_min: int = 0
    worker_pods_max: int = 32
    pod_creation_timeout: int = 600
    max_pod_pending_timeout: int = 600
    delete_worker_pods: bool = True
    delete_worker_pods_on_failure: bool = False
    finished_pod_max_age_hours: int = 24
    default_tier: str = "medium"
    metrics_port: int = 9102
    placeholder_image: str = "registry.k8s.io/pause:3.10"
    pod_template_dir: str = DEFAULT_TEMPLATE_DIR


@dataclass(frozen=True)
class PlatformConfig:
    """Everything the stack config decides, validated (see :mod:`airflow_k8s.infra.config.stack_config`)."""

    namespace: str = "airflow"
    quota: QuotaSpec = field(default_factory=QuotaSpec)
    limit_range: LimitRangeSpec = field(default_factory=LimitRangeSpec)
    network: NetworkSpec = field(default_factory=NetworkSpec)
    rbac: RbacSpec = field(default_factory=RbacSpec)
    storage: DagsStorageSpec = field(default_factory=DagsStorageSpec)
    intake: IntakeStorageSpec = field(default_factory=IntakeStorageSpec)
    node_pools: NodePoolsSpec = field(default_factory=NodePoolsSpec)
    priority: PrioritySpec = field(default_factory=PrioritySpec)
    scheduler: SchedulerSpec = field(default_factory=SchedulerSpec)
    executor: ExecutorSettings = field(default_factory=ExecutorSettings)
