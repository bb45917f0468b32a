"""The table of ``airflow-k8s:*`` stack config keys: type, default, description, validation.

:data:`KEYS` is the one table of keys.  ``Pulumi.yaml`` declares the same keys with the same
types, defaults and descriptions (``tests/infra`` compares them).  :func:`parse_value` turns the
raw string Pulumi hands a program (arrays as JSON text, booleans as ``true``/``false``) into a
typed value, or raises ``ValueError`` with the reason.  Settings that end up in airflow.cfg are
validated with the executor's own parsers (:mod:`airflow_k8s.executor.contract.config_keys`), so the stack rejects
exactly what the scheduler would reject.

Node pools are fixed by the templates' contract (``workers``, ``compute``, ``gpu``: labels and
taints in :data:`airflow_k8s.infra.config.args.DEFAULT_NODE_POOLS`); what varies per cluster is given as arrays of
``"<pool>=<value>"`` strings because Pulumi project config has no object type.  Pure Python.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from airflow_k8s.executor.contract import config_keys
from airflow_k8s.executor.contract.config import DEFAULT_TIERS
from airflow_k8s.infra.config import args as a
from airflow_k8s.infra.config import platform_keys

PROJECT = "airflow-k8s"
MAX_PLATFORM_NAME = 40  # leaves room for the longest suffix ("-pod-metrics-reader") within 63
# Whole-value ASCII patterns (used with fullmatch): "$" would accept a trailing newline.
_PLATFORM_NAME = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?", re.ASCII)  # DNS-1035: Service names start with a letter
INSTANCE_TYPE = re.compile(r"[a-z0-9][a-z0-9.-]{0,62}", re.ASCII)
# The platform takes its namespace over (PSS labels, quota, limits, default-deny network policies):
# never one Kubernetes or other workloads already live in.
RESERVED_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})
POOL_LIMIT_RESOURCES = ("cpu", "memory", a.GPU_RESOURCE)


@dataclass(frozen=True)
class StackKey:
    """One config key: Pulumi.yaml type, default (YAML value, None = no default), description.

    ``declared`` False: documented here and in the README but not declared in Pulumi.yaml - the
    CLI treats every declared key without a default as required, which an optional secret is not.
    """

    name: str
    type: str
    default: Any
    description: str
    secret: bool = False
    declared: bool = True


def _k(name: str, type_: str, default: Any, description: str, secret: bool = False, declared: bool = True) -> StackKey:
    return StackKey(name, type_, default, description, secret, declared)


POOLS = {p.name: p for p in a.DEFAULT_NODE_POOLS}
_DEFAULT_INSTANCE_TYPES = [f"{p.name}={t}" for p in a.DEFAULT_NODE_POOLS for t in p.instance_types]
_DEFAULT_CAPACITY_TYPES = [f"{p.name}={t}" for p in a.DEFAULT_NODE_POOLS for t in p.capacity_types]
_DEFAULT_LIMITS = [f"{p.name}.{r}={q}" for p in a.DEFAULT_NODE_POOLS for r, q in p.limits]

_ROLE_TEXT = {
    "scheduler": "the scheduler",
    "apiServer": "the api-server (per replica)",
    "dagProcessor": "the dag-processor",
    "triggerer": "the triggerer",
    "migration": "the database migration Job",
}
_RESOURCE_KEYS = (("CpuRequest", "CPU request"), ("MemoryRequest", "Memory request"),
                  ("CpuLimit", "CPU limit"), ("MemoryLimit", "Memory limit"))  # fmt: skip


def resource_key(role: str, suffix: str) -> str:
    """``schedulerCpuRequest`` for ("scheduler", "CpuRequest")."""
    return f"{role}{suffix}"


def _resource_keys() -> tuple[StackKey, ...]:
    out = []
    for role in a.CONTROL_PLANE_ROLES:
        spec = a.DEFAULT_RESOURCES[role]
        defaults = (spec.cpu_request, spec.memory_request, spec.cpu_limit, spec.memory_limit)
        for (suffix, text), default in zip(_RESOURCE_KEYS, defaults, strict=True):
            out.append(_k(resource_key(role, suffix), "string", default, f"{text} of {_ROLE_TEXT[role]}."))
    return tuple(out)


KEYS: tuple[StackKey, ...] = (
    _k(
        "platformName",
        "string",
        "airflow",
        "Name of this platform: prefix of every object name (cluster-scoped ones too, so unique per cluster).",
    ),
    _k(
        "namespace",
        "string",
        "airflow",
        "Namespace of the control plane and the task pods (created, PSS restricted; not default or kube-*).",
    ),
    _k(
        "podTemplatesDir",
        "string",
        "pod_templates",
        "Directory (relative to the project) of the pod template files to publish.",
    ),
    _k(
        "protectNamespace",
        "boolean",
        True,
        "Pulumi protect + retainOnDelete on the namespace (false only for throwaway stacks).",
    ),
    _k(
        "protectDagsVolume",
        "boolean",
        True,
        "Pulumi protect + retainOnDelete on the DAGs claim: a storage class or access mode change fails "
        "instead of deleting it (false only for throwaway stacks).",
    ),
    # the Airflow 3 control plane
    _k(
        "airflowImage",
        "string",
        "ghcr.io/airflow-k8s/airflow:0.1.0",
        "Image of the control plane: apache/airflow 3.x plus this package (the Dockerfile); pin a tag or a digest.",
    ),
    _k(
        "airflowImagePullPolicy",
        "string",
        "Always",
        "imagePullPolicy of the control plane (Always: a pull re-checks registry credentials).",
    ),
    *_resource_keys(),
    _k("apiServerReplicas", "integer", 1, "Replicas of the api-server (the UI and the Execution API task pods call)."),
    _k("triggererEnabled", "boolean", True, "Run the triggerer (deferrable operators need it)."),
    _k(
        "apiBaseUrl",
        "string",
        "",
        "[api] base_url: the URL users reach the UI at; empty means the api-server Service's in-cluster URL.",
    ),
    _k(
        "remoteBaseLogFolder",
        "string",
        "",
        "[logging] remote_base_log_folder (s3://..., gs://...): task logs after the pod is gone; empty turns "
        "remote logging off.",
    ),
    _k("remoteLogConnId", "string", "", "[logging] remote_log_conn_id: Airflow connection of the remote log store."),
    # airflow.cfg [kubernetes_executor]
    _k(
        "workerImage",
        "string",
        "apache/airflow:3.3.2",
        "Image of task pods (Airflow 3, the same version as airflowImage).",
    ),
    _k(
        "workerImagePullPolicy",
        "string",
        "IfNotPresent",
        "image_pull_policy of task pods: Always, IfNotPresent or Never.",
    ),
    # the user the pods run as, and the image preflight
    _k(
        "runAsUser",
        "integer",
        50000,
        "uid of every platform pod (the official image's airflow user); must exist in the images.",
    ),
    _k("runAsGroup", "integer", 0, "gid of every platform pod (the official image's files belong to group 0)."),
    _k(
        "imagePreflight",
        "boolean",
        True,
        "Check airflowImage and workerImage with a Job each before the control plane rolls (false: skip).",
    ),
    _k(
        "airflowVersion",
        "string",
        "3.3.2",
        "Airflow release both images must carry (the image preflight checks it; empty: not checked).",
    ),
    _k("workerPodsMin", "integer", 0, "N_min: warm capacity kept by low-priority placeholder pods."),
    _k("workerPodsMax", "integer", 8, "N_max: task pods allowed at once (the ResourceQuota must hold them)."),
    _k("podCreationTimeout", "integer", 600, "Seconds until the API server must have accepted a task pod."),
    _k("maxPodPendingTimeout", "integer", 600, "Seconds a task pod may stay Pending before the task fails."),
    _k("deleteWorkerPods", "boolean", True, "Delete pods of succeeded tasks."),
    _k("deleteWorkerPodsOnFailure", "boolean", False, "Delete pods of failed tasks too (keep them to debug)."),
    _k("finishedPodMaxAgeHours", "integer", 24, "Age after which kept finished pods are cleaned up."),
    _k("defaultTier", "string", "medium", "Tier used for cost when a pod names none (light, medium, heavy, gpu)."),
    _k("metricsPort", "integer", 9102, "Port of the executor's metrics endpoint in the scheduler pod."),
    _k("placeholderImage", "string", "registry.k8s.io/pause:3.10", "Image of the N_min placeholder pods."),
    # priority classes
    _k(
        "taskPriority",
        "integer",
        0,
        "PriorityClass value of task pods (0..1000000000); above 0 they preempt the cluster's default-priority pods.",
    ),
    _k(
        "placeholderPriority",
        "integer",
        -10,
        "PriorityClass value of placeholder pods (negative, preemptionPolicy Never).",
    ),
    # ResourceQuota / LimitRange
    _k("quotaRequestsCpu", "string", "20", "ResourceQuota requests.cpu of the namespace."),
    _k("quotaRequestsMemory", "string", "48Gi", "ResourceQuota requests.memory of the namespace."),
    _k("quotaLimitsCpu", "string", "42", "ResourceQuota limits.cpu of the namespace."),
    _k("quotaLimitsMemory", "string", "96Gi", "ResourceQuota limits.memory of the namespace."),
    _k(
        "quotaPods",
        "integer",
        20,
        "ResourceQuota pods: workerPodsMax task pods + workerPodsMin placeholders + the control plane's pods.",
    ),
    _k("quotaGpus", "integer", 1, "ResourceQuota requests.nvidia.com/gpu of the namespace (0: no GPU tasks)."),
    _k("limitDefaultCpu", "string", "500m", "LimitRange default CPU limit of containers that set none."),
    _k("limitDefaultMemory", "string", "1Gi", "LimitRange default memory limit of containers that set none."),
    _k("limitDefaultRequestCpu", "string", "250m", "LimitRange default CPU request of containers that set none."),
    _k(
        "limitDefaultRequestMemory", "string", "512Mi", "LimitRange default memory request of containers that set none."
    ),
    _k("limitMaxCpu", "string", "4", "LimitRange max CPU limit per container (must admit the largest tier)."),
    _k("limitMaxMemory", "string", "16Gi", "LimitRange max memory limit per container (must admit the largest tier)."),
    # NetworkPolicy allowances
    _k(
        "apiServerCidr",
        "string",
        "0.0.0.0/0",
        "Scheduler and api-server egress to the Kubernetes API (TCP 443/6443): set the API server's CIDR.",
    ),
    _k(
        "databaseCidr",
        "string",
        "0.0.0.0/0",
        "Control-plane egress to the metadata database (task pods never): set the database's CIDR.",
    ),
    _k("databasePort", "integer", 5432, "TCP port of the metadata database."),
    _k("monitoringNamespace", "string", "monitoring", "Namespace whose pods may scrape the scheduler's metrics port."),
    _k(
        "uiIngressNamespace",
        "string",
        "",
        "Namespace of the ingress controller allowed to reach the api-server; empty: none (port-forward works).",
    ),
    _k(
        "taskEgressCidrs",
        "array",
        [],
        "Extra egress of task pods and the triggerer (any port); the database CIDR is always excluded.",
    ),
    _k(
        "remoteLogCidr",
        "string",
        "",
        "HTTPS egress of task pods and the api-server to the remote log store (required with remoteBaseLogFolder; "
        "0.0.0.0/0 only with allowOpenTaskEgress).",
    ),
    # RBAC options
    _k("capacityAwareTiers", "boolean", True, "Grant the scheduler get/list on nodes (cluster-wide) for tier: auto."),
    _k(
        "utilizationMetrics",
        "boolean",
        True,
        "Grant the scheduler get/list on metrics.k8s.io pods for utilization reports.",
    ),
    # DAGs volume
    _k("dagsStorageSize", "string", "10Gi", "Size of the DAGs PersistentVolumeClaim."),
    _k("dagsStorageClass", "string", "", "StorageClass of the DAGs claim; empty means the cluster default."),
    _k(
        "dagsAccessMode",
        "string",
        "ReadWriteMany",
        "Access mode of the DAGs claim (task pods on many nodes need ReadWriteMany or ReadOnlyMany).",
    ),
    # Prometheus operator
    _k("podMonitor", "boolean", False, "Create a prometheus-operator PodMonitor for the scheduler's metrics port."),
    _k(
        "podMonitorLabels",
        "array",
        [],
        'Labels of the PodMonitor (what your Prometheus selects), as "<key>=<value>".',
    ),
    # node pools
    _k(
        "nodePoolBackend",
        "string",
        "none",
        "How node pools are provided: none (any cluster: you label and taint nodes), existing-nodes (the platform "
        "labels and taints the existingNodes) or karpenter (NodePools; needs Karpenter's CRDs).",
    ),
    _k("karpenterNodeClass", "string", "default", "Name of the EC2NodeClass the Karpenter NodePools reference."),
    _k("nodePoolInstanceTypes", "array", _DEFAULT_INSTANCE_TYPES, 'Karpenter instance types, as "<pool>=<type>".'),
    _k(
        "nodePoolCapacityTypes",
        "array",
        _DEFAULT_CAPACITY_TYPES,
        'Karpenter capacity types (on-demand, spot, reserved), as "<pool>=<type>".',
    ),
    _k("nodePoolLimits", "array", _DEFAULT_LIMITS, 'Karpenter pool limits, as "<pool>.<resource>=<quantity>".'),
    _k(
        "existingNodes",
        "array",
        [],
        'Existing nodes to label and taint (existing-nodes backend), as "<pool>=<node name>".',
    ),
    # day 2 and Helm chart parity (platform_keys.py)
    *(_k(*row) for row in platform_keys.ROWS),
    # secrets: none is declared in Pulumi.yaml - the CLI requires every declared key without a default, and
    # even the database URL may come from an existing Secret (existingDatabaseUrlSecret) instead.
    _k(
        "databaseUrl",
        "string",
        None,
        "Airflow metadata database URL (secret; pulumi config set --secret databaseUrl ...), unless "
        "existingDatabaseUrlSecret names a Secret holding it.",
        secret=True,
        declared=False,
    ),
    _k(
        "fernetKey",
        "string",
        None,
        "Optional [core] fernet_key (secret); unset: generated once and kept in the stack state.",
        secret=True,
        declared=False,
    ),
    _k(
        "jwtSecret",
        "string",
        None,
        "Optional [api_auth] jwt_secret (secret); unset: generated once and kept in the stack state.",
        secret=True,
        declared=False,
    ),
    _k(
        "apiSecretKey",
        "string",
        None,
        "Optional [api] secret_key (secret; signs log-server requests); unset: generated once and kept in the state.",
        secret=True,
        declared=False,
    ),
    _k(
        "adminPassword",
        "string",
        None,
        "Optional password of the simple auth manager's Admin (adminUser; secret); unset: generated once and kept "
        "in the stack state.",
        secret=True,
        declared=False,
    ),
)
KEYS_BY_NAME = {key.name: key for key in KEYS}
SECRET_KEYS = tuple(key.name for key in KEYS if key.secret)
REQUIRED_SECRETS = ("databaseUrl",)


def raw_default(key: StackKey) -> str | None:
    """The default as Pulumi would pass it to the program (JSON for arrays)."""
    return to_raw(key.default)


def to_raw(value: Any) -> str | None:
    """A YAML config value as the string Pulumi hands a program (``true``, ``8``, JSON arrays)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


# ---- scalar parsers: raw string -> value, ValueError(reason) ----------------------------------


def _integer(raw: str) -> int:
    text = raw.strip()
    if not re.fullmatch(r"[+-]?[0-9]{1,19}", text, re.ASCII):  # \d would take Arabic-Indic digits
        raise ValueError("expected a whole number")
    return int(text)


def _boolean(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    raise ValueError("expected true or false")


def _array(raw: str) -> list[str]:
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"expected an array of strings (JSON): {exc.msg}") from exc
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError("expected an array of strings")
    return value


_TYPE_PARSERS: dict[str, Callable[[str], Any]] = {
    "string": lambda raw: raw,  # verbatim: "x\n" is an invalid name, not "x"
    "integer": _integer,
    "boolean": _boolean,
    "array": _array,
}


def _cidr(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=True))
    except ValueError as exc:
        raise ValueError(f"expected a CIDR such as 10.0.0.0/16 ({exc})") from exc


def _platform_name(value: str) -> str:
    if len(value) > MAX_PLATFORM_NAME or not _PLATFORM_NAME.fullmatch(value):
        raise ValueError(
            f"expected a lowercase name starting with a letter (a-z, 0-9, '-'), at most {MAX_PLATFORM_NAME} chars"
        )
    return value


def _one_of(*choices: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}")
        return value

    return parse


def _range(low: int | None, high: int | None) -> Callable[[int], int]:
    def check(value: int) -> int:
        if low is not None and value < low:
            raise ValueError(f"must be >= {low}")
        if high is not None and value > high:
            raise ValueError(f"must be <= {high}")
        return value

    return check


def _namespace(value: str) -> str:
    config_keys.dns_label(value)
    if value in RESERVED_NAMESPACES or value.startswith("kube-"):
        raise ValueError(
            f"{value!r} is a namespace Kubernetes or other workloads use; the platform takes its namespace over "
            "(Pod Security labels, quota, default-deny network policies), so give it one of its own"
        )
    return value


def _executor(name: str) -> Callable[[int], int]:
    """The bounds of the airflow.cfg key ``name`` that this stack key is rendered into."""
    parse = next(key.parse for key in config_keys.KUBERNETES_KEYS if key.name == name)
    return lambda value: int(parse(str(value)))


def _exact_text(value: str) -> str:
    """One line of text, taken as given: ``"pod_templates\n"`` is an error, not ``pod_templates``."""
    if value != config_keys.text(value):
        raise ValueError("expected a single line without surrounding whitespace")
    return value


def _optional_subdomain(value: str) -> str | None:
    return config_keys.dns_subdomain(value) if value else None


def _optional_label(value: str) -> str | None:
    return config_keys.dns_label(value) if value else None


def _ingress_namespace(value: str) -> str | None:
    """A namespace allowed to reach the api-server: never a system one, whose every pod would get in."""
    if value in RESERVED_NAMESPACES or value.startswith("kube-"):
        raise ValueError(
            f"{value!r} is a system namespace: every pod in it could reach the api-server; run the ingress "
            "controller in a namespace of its own (e.g. ingress-nginx)"
        )
    return _optional_label(value)


def _optional_url(value: str) -> str:
    if value and not (value.isascii() and re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", value, re.ASCII)):
        raise ValueError("expected an http(s) URL such as https://airflow.example.com")
    return value.rstrip("/")


_LOG_FOLDER = re.compile(r"[a-z][a-z0-9+.-]*://[!-~]+", re.ASCII)  # whole value: no trailing newline
# The prefixes Airflow 3's airflow_local_settings.py has a remote task-log handler for (any other
# value silently leaves task logs local, to vanish with their pods).
REMOTE_LOG_PREFIXES = ("s3://", "gs://", "wasb", "cloudwatch://", "stackdriver://", "oss://", "hdfs://")


def _optional_log_folder(value: str) -> str:
    if value and not _LOG_FOLDER.fullmatch(value):
        raise ValueError("expected a remote folder URL such as s3://bucket/logs (empty: remote logging off)")
    if value and not value.startswith(REMOTE_LOG_PREFIXES):
        shown = ", ".join(p if p.endswith("://") else f"{p}://" for p in REMOTE_LOG_PREFIXES)
        raise ValueError(f"Airflow has no remote log handler for this scheme (it has: {shown})")
    return value


def _optional_conn_id(value: str) -> str:
    if value and not re.fullmatch(r"[A-Za-z0-9_.-]{1,250}", value):
        raise ValueError("expected an Airflow connection id (letters, digits, _ . -)")
    return value


def _optional_version(value: str) -> str:
    if value and not re.fullmatch(r"[0-9]+(\.[0-9]+){1,3}([a-z0-9.+-]*)", value, re.ASCII):
        raise ValueError("expected an Airflow release such as 3.3.2 (empty: not checked)")
    return value


_tiers = tuple(t.name for t in DEFAULT_TIERS)
_cpu = config_keys.cpu
_memory = config_keys.memory

# Extra validation per key, applied to the type-parsed value.
_VALIDATORS: dict[str, Callable[[Any], Any]] = {
    "platformName": _platform_name,
    "namespace": _namespace,
    "podTemplatesDir": _exact_text,
    "airflowImage": config_keys.image,
    "airflowImagePullPolicy": config_keys.pull_policy,
    **{
        resource_key(role, suffix): (_cpu if suffix.startswith("Cpu") else _memory)
        for role in a.CONTROL_PLANE_ROLES
        for suffix, _ in _RESOURCE_KEYS
    },
    "apiServerReplicas": _range(1, 10),
    "apiBaseUrl": _optional_url,
    "remoteBaseLogFolder": _optional_log_folder,
    "remoteLogConnId": _optional_conn_id,
    "workerImage": config_keys.image,
    "workerImagePullPolicy": config_keys.pull_policy,
    "runAsUser": _range(1, 2_147_483_647),  # never root: PSS restricted forbids uid 0
    "runAsGroup": _range(0, 2_147_483_647),
    "airflowVersion": _optional_version,
    "workerPodsMin": _executor("worker_pods_min"),
    "workerPodsMax": _executor("worker_pods_max"),
    "podCreationTimeout": _executor("pod_creation_timeout"),
    "maxPodPendingTimeout": _executor("max_pod_pending_timeout"),
    "finishedPodMaxAgeHours": _executor("finished_pod_max_age_hours"),
    "defaultTier": _one_of(*_tiers),
    "metricsPort": _range(1024, 65535),
    "placeholderImage": config_keys.image,
    "taskPriority": _range(0, 1_000_000_000),
    "placeholderPriority": _range(-2_147_483_648, -1),
    "quotaRequestsCpu": _cpu,
    "quotaRequestsMemory": _memory,
    "quotaLimitsCpu": _cpu,
    "quotaLimitsMemory": _memory,
    "quotaPods": _range(2, 1_000_000),
    "quotaGpus": _range(0, 100_000),
    "limitDefaultCpu": _cpu,
    "limitDefaultMemory": _memory,
    "limitDefaultRequestCpu": _cpu,
    "limitDefaultRequestMemory": _memory,
    "limitMaxCpu": _cpu,
    "limitMaxMemory": _memory,
    "apiServerCidr": _cidr,
    "databaseCidr": _cidr,
    "databasePort": _range(1, 65535),
    "monitoringNamespace": config_keys.dns_label,
    "uiIngressNamespace": _ingress_namespace,
    "taskEgressCidrs": lambda items: tuple(_cidr(item) for item in items),
    "remoteLogCidr": lambda value: _cidr(value) if value else "",
    "dagsStorageSize": _memory,
    "dagsStorageClass": _optional_subdomain,
    "dagsAccessMode": _one_of(*a.ACCESS_MODES),
    "nodePoolBackend": _one_of(*a.NODE_POOL_BACKENDS),
    "karpenterNodeClass": config_keys.dns_subdomain,
    **platform_keys.VALIDATORS,
}


def parse_value(key: StackKey, text: str) -> Any:
    """The typed, validated value of ``key`` for the raw ``text``; ValueError(reason) if bad."""
    value = _TYPE_PARSERS[key.type](text)
    validator = _VALIDATORS.get(key.name)
    return validator(value) if validator else value
