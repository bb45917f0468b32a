"""The executor's configuration contract: typed, frozen, validated.

This module is the single source of truth for what ``airflow.cfg`` may say about the Kubernetes
executor.  The executor reads it (:mod:`airflow_k8s.executor.contract.config_loader`); infra renders it
(:mod:`airflow_k8s.executor.contract.config_render`) from Pulumi stack config, so what the platform generates is by
construction what the scheduler accepts.  No Pulumi import here, ever.

Semantics worth knowing:

* Durations are whole seconds.  ``pod_creation_timeout`` bounds the time from a task's launch
  until the API server has accepted its pod (429/5xx retries happen inside that window);
  ``max_pod_pending_timeout`` bounds how long an accepted pod may stay ``Pending``
  (unschedulable, pulling images) before it is deleted and the task failed.
* Scaling: at most ``worker_pods_max`` task pods exist at once (N_max); when fewer than
  ``worker_pods_min`` (N_min) tasks want pods, the gap is filled with low-priority placeholder
  pods that keep warm capacity and are deleted as tasks arrive:
  N(t) = min(max(P(t), N_min), N_max).
* Tiers are named resource shapes with a price per pod-hour (cost reports) and an optional
  template; a task may name a tier or ask for ``auto`` (chosen at launch from free capacity).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from airflow_k8s.executor.contract import quantity
from airflow_k8s.executor.contract.task_policy import DEFAULT_POD_FIELDS, TaskPodPolicy

DEFAULT_TEMPLATE_DIR = "/opt/airflow/pod_templates"
DEFAULT_TEMPLATE_NAME = "default_template.yaml"  # pod_template_file when unset: <pod_template_dir>/<this>
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
TOLERATION_OPERATORS = ("Equal", "Exists")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
GPU_RESOURCE = "nvidia.com/gpu"


@dataclass(frozen=True)
class Toleration:
    """One pod toleration, as in the Kubernetes API (``effect`` None tolerates every effect)."""

    key: str | None = None
    operator: str = "Equal"
    value: str | None = None
    effect: str | None = None
    toleration_seconds: int | None = None

    def to_k8s(self) -> dict[str, object]:
        """The camelCase dict the Kubernetes API expects, omitting unset fields."""
        out: dict[str, object] = {}
        if self.key is not None:
            out["key"] = self.key
        out["operator"] = self.operator
        if self.value is not None:
            out["value"] = self.value
        if self.effect is not None:
            out["effect"] = self.effect
        if self.toleration_seconds is not None:
            out["tolerationSeconds"] = self.toleration_seconds
        return out


@dataclass(frozen=True)
class Tier:
    """A named resource shape for task pods, with its price for cost reports.

    ``auto`` marks tiers the executor may pick for ``tier: auto`` tasks; GPU tiers are never
    picked automatically because a GPU is a deliberate choice, not a capacity fallback.
    """

    name: str
    request_cpu: str
    request_memory: str
    limit_cpu: str | None = None
    limit_memory: str | None = None
    gpu: int = 0
    cost_per_pod_hour: Decimal = Decimal("0")
    pod_template: str | None = None
    auto: bool = True

    def requests(self) -> dict[str, str]:
        """Container ``resources.requests`` for this tier."""
        out = {"cpu": self.request_cpu, "memory": self.request_memory}
        if self.gpu:
            out[GPU_RESOURCE] = str(self.gpu)
        return out

    def limits(self) -> dict[str, str]:
        """Container ``resources.limits`` (GPUs must be set in limits to be scheduled)."""
        out: dict[str, str] = {}
        if self.limit_cpu is not None:
            out["cpu"] = self.limit_cpu
        if self.limit_memory is not None:
            out["memory"] = self.limit_memory
        if self.gpu:
            out[GPU_RESOURCE] = str(self.gpu)
        return out

    def cpu_cores(self) -> Decimal:
        return quantity.cpu(self.request_cpu)

    def memory_bytes(self) -> Decimal:
        return quantity.memory(self.request_memory)


# The seed's "Pod Resource Optimization" table, used when airflow.cfg defines no tier sections.
DEFAULT_TIERS: tuple[Tier, ...] = (
    Tier("light", "250m", "512Mi", "500m", "1Gi", 0, Decimal("0.02"), "light_task.yaml"),
    Tier("medium", "1", "2Gi", "2", "4Gi", 0, Decimal("0.08"), "default_template.yaml"),
    Tier("heavy", "2", "4Gi", "4", "8Gi", 0, Decimal("0.16"), "heavy_computation.yaml"),
    Tier("gpu", "2", "8Gi", "4", "16Gi", 1, Decimal("1.50"), "gpu_task.yaml", auto=False),
)


EXECUTOR_CLASS = "airflow_k8s.executor.airflow.KubernetesPlatformExecutor"
# The Task SDK's retries of each Execution API call, as task pods get them unless [workers] sets them:
# tenacity waits uniform(min, min(max, 2**n)) seconds between attempts, so 30 attempts at 5-10 s ride
# out an api-server outage of at least 145 s (at most about 270 s, below Airflow's 300 s
# task_instance_heartbeat_timeout).  Airflow's own defaults (5 attempts, 1-90 s) give up after as
# little as 4 s - less than an api-server restart takes.
TASK_API_RETRIES = 30
TASK_API_RETRY_WAIT_MIN = 5.0
TASK_API_RETRY_WAIT_MAX = 10.0
"""The import path ``[core] executor`` names to run this executor inside Airflow."""

# Airflow's default of [kubernetes_executor] worker_pod_pending_fatal_container_state_reasons:
# waiting reasons that never resolve by themselves, so the task fails at once.
FATAL_CONTAINER_STATE_REASONS = (
    "CreateContainerConfigError",
    "ErrImagePull",
    "CreateContainerError",
    "ImageInspectError",
    "InvalidImageName",
)
DELETE_PROPAGATION_POLICIES = ("Foreground", "Background", "Orphan")


@dataclass(frozen=True)
class ExecutorConfig:
    """Everything the executor reads from airflow.cfg, validated.

    Field names equal the airflow.cfg keys of the ``[kubernetes_executor]`` section
    (``executor`` and ``execution_api_server_url`` come from ``[core]``, ``tiers`` from
    ``[kubernetes_tier:<name>]`` sections).  Keys Airflow 3.3 defines keep Airflow's default and
    meaning (docs/executor.md lists each); ``None`` means "not set", where Airflow's behaviour
    differs between unset and its default value.
    """

    executor: str = EXECUTOR_CLASS
    execution_api_server_url: str | None = None
    namespace: str = "default"
    worker_container_image: str | None = None
    worker_service_account_name: str | None = None
    worker_resource_request_cpu: str | None = None
    worker_resource_request_memory: str | None = None
    worker_resource_limit_cpu: str | None = None
    worker_resource_limit_memory: str | None = None
    pod_template_file: str = ""  # unset: <pod_template_dir>/default_template.yaml (__post_init__)
    pod_template_dir: str = DEFAULT_TEMPLATE_DIR
    delete_worker_pods: bool = True
    delete_worker_pods_on_failure: bool = False
    pod_creation_timeout: int = 600
    max_pod_pending_timeout: int = 600
    quota_pushback_timeout: int = 600
    image_pull_policy: str = "IfNotPresent"
    worker_node_selector: tuple[tuple[str, str], ...] = ()
    worker_tolerations: tuple[Toleration, ...] = ()
    worker_pods_min: int = 0
    worker_pods_max: int = 32
    worker_pods_creation_qps: float | None = None  # None: no cap, the API server's pushback paces
    worker_pods_creation_burst: int | None = None
    worker_pods_creation_workers: int = 8
    worker_priority_class: str | None = None
    placeholder_priority_class: str | None = None
    placeholder_image: str = "registry.k8s.io/pause:3.10"
    scheduler_instance_id: str = "default"
    in_cluster: bool = True
    config_file: str | None = None
    cluster_context: str | None = None
    kube_request_timeout: int = 60
    kube_max_response_mib: int = 64
    watch_timeout_seconds: int = 300
    task_intake_dir: str = "/var/run/airflow-executor/intake"
    metrics_port: int = 9102
    finished_pod_max_age_hours: int = 24
    default_tier: str = "medium"
    # -- Airflow 3.3 [kubernetes_executor] keys, with Airflow's meaning ------------------------
    worker_pod_pending_fatal_container_state_reasons: tuple[str, ...] = FATAL_CONTAINER_STATE_REASONS
    worker_pods_creation_batch_size: int | None = None
    async_pod_creation: bool = False
    pod_creation_max_concurrency: int = 0
    multi_namespace_mode: bool = False
    multi_namespace_mode_namespace_list: tuple[str, ...] = ()
    client_factory: str | None = None
    kube_client_request_args: tuple[tuple[str, float | tuple[float, float]], ...] = ()
    delete_option_kwargs: tuple[tuple[str, int | str], ...] = ()
    enable_tcp_keepalive: bool = True
    tcp_keep_idle: int = 120
    tcp_keep_intvl: int = 30
    tcp_keep_cnt: int = 6
    verify_ssl: bool = True
    ssl_ca_cert: str | None = None
    running_pod_log_lines: int = 100
    logs_task_metadata: bool = False
    task_publish_max_retries: int | None = None
    pod_launch_failure_retries: int = 1
    pod_launch_failure_excluded_container_reasons: tuple[str, ...] = ("Error",)
    # -- a try Airflow hands back without the task asking (executor.airflow.reschedules) --------
    unrequested_reschedule_limit: int = 3
    # -- Airflow's [workers] keys the executor puts into task pods (docs/executor.md) -----------
    execution_api_retries: int = TASK_API_RETRIES
    execution_api_retry_wait_min: float = TASK_API_RETRY_WAIT_MIN
    execution_api_retry_wait_max: float = TASK_API_RETRY_WAIT_MAX
    # -- what a task may change in its pod (contract.task_policy) -------------------------------
    task_allowed_pod_fields: tuple[str, ...] = DEFAULT_POD_FIELDS
    task_allowed_service_accounts: tuple[str, ...] = ()
    task_allowed_priority_classes: tuple[str, ...] = ()
    task_allowed_secrets: tuple[str, ...] = ()
    task_allowed_config_maps: tuple[str, ...] = ()
    task_allowed_claims: tuple[str, ...] = ()
    task_allowed_registries: tuple[str, ...] = ()
    task_allowed_node_selectors: tuple[tuple[str, tuple[str, ...]], ...] = ()
    task_allowed_tolerations: tuple[Toleration, ...] = ()
    tiers: tuple[Tier, ...] = field(default=DEFAULT_TIERS)
    # -- not airflow.cfg keys: set by the executor inside Airflow --------------------------------
    airflow_version: str | None = None  # the airflow_version label of task pods, as the provider sets it

    def __post_init__(self) -> None:
        if not self.pod_template_file:  # Airflow's unset pod_template_file: the directory's default template
            object.__setattr__(
                self, "pod_template_file", f"{self.pod_template_dir.rstrip('/')}/{DEFAULT_TEMPLATE_NAME}"
            )

    def node_selector(self) -> dict[str, str]:
        return dict(self.worker_node_selector)

    def tier(self, name: str) -> Tier:
        """The tier called ``name``; KeyError lists the known ones."""
        for tier in self.tiers:
            if tier.name == name:
                return tier
        known = ", ".join(t.name for t in self.tiers)
        raise KeyError(f"unknown tier {name!r} (known: {known})")

    def default_requests(self) -> dict[str, str]:
        out = {}
        if self.worker_resource_request_cpu is not None:
            out["cpu"] = self.worker_resource_request_cpu
        if self.worker_resource_request_memory is not None:
            out["memory"] = self.worker_resource_request_memory
        return out

    def default_limits(self) -> dict[str, str]:
        out = {}
        if self.worker_resource_limit_cpu is not None:
            out["cpu"] = self.worker_resource_limit_cpu
        if self.worker_resource_limit_memory is not None:
            out["memory"] = self.worker_resource_limit_memory
        return out

    def creation_workers(self) -> int:
        """Concurrent pod-creation requests: Airflow's ``pod_creation_max_concurrency`` when set."""
        return self.pod_creation_max_concurrency or self.worker_pods_creation_workers

    def request_timeout(self) -> float | tuple[float, float]:
        """Client-side timeout of one API request: ``kube_client_request_args._request_timeout`` or ours."""
        return dict(self.kube_client_request_args).get("_request_timeout", float(self.kube_request_timeout))

    def delete_options(self) -> dict[str, int | str]:
        """DeleteOptions fields from ``delete_option_kwargs`` (camelCase, as the API takes them)."""
        names = {"grace_period_seconds": "gracePeriodSeconds", "propagation_policy": "propagationPolicy"}
        return {names[key]: value for key, value in self.delete_option_kwargs}

    def delete_failed_pods(self) -> bool:
        """Airflow's rule: failed pods are deleted only when both delete switches are on."""
        return self.delete_worker_pods and self.delete_worker_pods_on_failure

    def task_policy(self) -> TaskPodPolicy:
        """The operator's additions to what a task may change in its pod (the ``task_allowed_*`` keys)."""
        return TaskPodPolicy(
            pod_fields=self.task_allowed_pod_fields,
            service_accounts=self.task_allowed_service_accounts,
            priority_classes=self.task_allowed_priority_classes,
            secrets=self.task_allowed_secrets,
            config_maps=self.task_allowed_config_maps,
            claims=self.task_allowed_claims,
            registries=self.task_allowed_registries,
            node_selectors=self.task_allowed_node_selectors,
            tolerations=self.task_allowed_tolerations,
        )

    def namespaces(self) -> tuple[str, ...] | None:
        """Namespaces task pods may run in; ``None`` means any (multi-namespace mode, no list)."""
        if not self.multi_namespace_mode:
            return (self.namespace,)
        return self.multi_namespace_mode_namespace_list or None
