"""Stack configuration: raw ``airflow-k8s:*`` values -> a validated :class:`StackConfig`.

Pure Python (no Pulumi import) so it is unit-testable: :func:`parse_stack_config` takes the raw
values as Pulumi hands them to a program and returns a typed :class:`StackConfig` (the
:class:`~airflow_k8s.infra.config.args.PlatformConfig` plus the platform name, template directory and warnings), or
raises :class:`StackConfigError` listing *every* problem, each naming the key
(``airflow-k8s:<key>``) and the bad value.  Secret keys are never passed in, only whether they are
set, and their values are never shown.  The keys themselves are :data:`airflow_k8s.infra.config.stack_keys.KEYS`.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from typing import Any

from airflow_k8s.executor.contract import k8snames, quantity
from airflow_k8s.executor.contract.errors import QuantityError
from airflow_k8s.infra.config import args as a
from airflow_k8s.infra.config.addons_parse import addons_spec
from airflow_k8s.infra.config.feature_rules import feature_checks, feature_warnings
from airflow_k8s.infra.config.pods import EXISTING_SECRET_KEYS
from airflow_k8s.infra.config.pods_parse import existing_secrets, pod_settings
from airflow_k8s.infra.config.problem import Problem
from airflow_k8s.infra.config.rules import cross_checks, open_cidr_warnings
from airflow_k8s.infra.config.stack_keys import (
    INSTANCE_TYPE,
    KEYS,
    KEYS_BY_NAME,
    POOL_LIMIT_RESOURCES,
    POOLS,
    PROJECT,
    REQUIRED_SECRETS,
    SECRET_KEYS,
    StackKey,
    parse_value,
    raw_default,
    resource_key,
    to_raw,
)

__all__ = [
    "KEYS",
    "KEYS_BY_NAME",
    "PROJECT",
    "SECRET_KEYS",
    "Problem",
    "StackConfig",
    "StackConfigError",
    "StackKey",
    "parse_stack_config",
    "raw_default",
    "to_raw",
]


# secret stack key -> the stack key naming an existing Secret that replaces it
EXISTING_FOR_SECRET = {
    "databaseUrl": EXISTING_SECRET_KEYS["database-url"][0],
    "fernetKey": EXISTING_SECRET_KEYS["fernet-key"][0],
    "jwtSecret": EXISTING_SECRET_KEYS["jwt-secret"][0],
    "apiSecretKey": EXISTING_SECRET_KEYS["api-secret-key"][0],
}


class StackConfigError(ValueError):
    """One or more stack config values are invalid; ``problems`` lists each of them.

    ``source`` names the file the values came from, when known (the offline render reads
    ``Pulumi.<stack>.yaml`` itself; under the Pulumi CLI the stack is named by Pulumi).
    """

    def __init__(self, problems: list[Problem], *, source: str | None = None) -> None:
        self.problems = problems
        self.source = source
        lines = "\n".join(f"  - {p}" for p in problems)
        where = f" in {source}" if source else ""
        super().__init__(f"invalid stack configuration{where} ({len(problems)} problem(s)):\n{lines}")


@dataclass(frozen=True)
class StackConfig:
    platform_name: str
    templates_dir: str
    platform: a.PlatformConfig
    warnings: tuple[str, ...] = ()


def parse_stack_config(raw: Mapping[str, str | None], *, secrets_set: Collection[str] = ()) -> StackConfig:
    """Validate ``raw`` (key -> raw string, without the ``airflow-k8s:`` prefix).

    Missing keys take the defaults of :data:`KEYS`.  ``secrets_set`` names the secret keys the
    stack sets (their values stay with Pulumi).  Raises :class:`StackConfigError`.
    """
    problems: list[Problem] = []
    values: dict[str, Any] = {}
    for name in raw:
        if name not in KEYS_BY_NAME:
            close = difflib.get_close_matches(name, list(KEYS_BY_NAME), n=1, cutoff=0.6)
            hint = f"; did you mean {PROJECT}:{close[0]}?" if close else ""
            # The value is not shown: an unknown key may be a misspelt secret.
            problems.append(Problem(name, None, f"unknown key{hint}"))
        elif KEYS_BY_NAME[name].secret:
            problems.append(Problem(name, None, "secret keys are read with require_secret, never as plain config"))
    for key in KEYS:
        if key.secret:
            continue
        text = raw.get(key.name)
        text = raw_default(key) if text is None else text
        assert text is not None  # every non-secret key has a default
        try:
            values[key.name] = parse_value(key, text)
        except ValueError as exc:
            problems.append(Problem(key.name, text, str(exc)))
    for name in REQUIRED_SECRETS:
        existing = EXISTING_FOR_SECRET.get(name)
        if name not in secrets_set and not (existing and raw.get(existing)):
            alternative = f", or name an existing Secret holding it ({PROJECT}:{existing})" if existing else ""
            problems.append(
                Problem(name, None, f"is not set: pulumi config set --secret {name} <value>{alternative}", secret=True)
            )
    for name, existing in EXISTING_FOR_SECRET.items():
        if name in secrets_set and raw.get(existing):
            problems.append(
                Problem(existing, raw[existing], f"and the secret {PROJECT}:{name} are both set: keep one of them")
            )
    if problems:
        raise StackConfigError(problems)
    warnings: list[str] = []
    pools = _node_pools(values, problems, warnings)
    config = _platform_config(values, pools, problems)
    cross_checks(config, values, problems)
    feature_checks(config, values, problems)
    warnings.extend(open_cidr_warnings(config))
    warnings.extend(feature_warnings(config))
    if problems:
        raise StackConfigError(problems)
    return StackConfig(values["platformName"], values["podTemplatesDir"], config, tuple(warnings))


def _pairs(values: Mapping[str, Any], key: str, problems: list[Problem], sep: str = "=") -> list[tuple[str, str, str]]:
    """``"<pool><sep><rest>"`` items of an array key as (pool, rest, original item)."""
    out = []
    for item in values[key]:
        pool, found, rest = item.partition(sep)
        if not found or not rest:
            problems.append(Problem(key, item, f'expected "<pool>{sep}<value>"'))
        elif pool not in POOLS:
            problems.append(Problem(key, item, f"unknown pool {pool!r} (pools: {', '.join(POOLS)})"))
        else:
            out.append((pool, rest, item))
    return out


def _node_pools(values: Mapping[str, Any], problems: list[Problem], warnings: list[str]) -> a.NodePoolsSpec:
    backend = values["nodePoolBackend"]
    fields: dict[str, dict[str, list[Any]]] = {name: {"it": [], "ct": [], "lim": [], "nodes": []} for name in POOLS}
    for pool, rest, item in _pairs(values, "nodePoolInstanceTypes", problems):
        if not INSTANCE_TYPE.fullmatch(rest):
            problems.append(Problem("nodePoolInstanceTypes", item, "not an instance type name"))
        fields[pool]["it"].append(rest)
    for pool, rest, item in _pairs(values, "nodePoolCapacityTypes", problems):
        if rest not in a.CAPACITY_TYPES:
            problems.append(Problem("nodePoolCapacityTypes", item, f"expected one of {', '.join(a.CAPACITY_TYPES)}"))
        fields[pool]["ct"].append(rest)
    for pool, rest, item in _pairs(values, "nodePoolLimits", problems, sep="."):
        resource, found, amount = rest.partition("=")
        if not found or resource not in POOL_LIMIT_RESOURCES:
            problems.append(
                Problem(
                    "nodePoolLimits",
                    item,
                    f'expected "<pool>.<resource>=<quantity>", resource one of {POOL_LIMIT_RESOURCES}',
                )
            )
            continue
        try:
            quantity.for_resource(resource, amount)
        except QuantityError as exc:
            problems.append(Problem("nodePoolLimits", item, str(exc)))
            continue
        fields[pool]["lim"].append((resource, amount))
    owner: dict[str, str] = {}
    for pool, node, item in _pairs(values, "existingNodes", problems):
        if not k8snames.is_dns1123_subdomain(node):
            problems.append(Problem("existingNodes", item, "not a valid node name"))
        elif node in owner:
            problems.append(Problem("existingNodes", item, f"node is already in pool {owner[node]!r}"))
        owner.setdefault(node, pool)
        fields[pool]["nodes"].append(node)
    if backend == "none":
        warnings.append(
            f"{PROJECT}:nodePoolBackend is none: the platform creates no node pools, and task pods select the pools' "
            f"labels - label (and taint) nodes yourself ({_pool_needs()}), or set existing-nodes with existingNodes, "
            "or karpenter"
        )
    pools = []
    for name, default in POOLS.items():
        f = fields[name]
        if backend == "karpenter":
            if not f["it"]:
                problems.append(Problem("nodePoolInstanceTypes", None, f"pool {name!r} has no instance type"))
            missing = {"cpu", "memory"} - {r for r, _ in f["lim"]}
            if missing:
                problems.append(Problem("nodePoolLimits", None, f"pool {name!r} needs limits for {sorted(missing)}"))
        if backend == "existing-nodes" and not f["nodes"]:
            warnings.append(f"node pool {name!r} has no nodes (existingNodes): its templates' pods will stay Pending")
        if backend != "existing-nodes" and f["nodes"]:
            problems.append(
                Problem("existingNodes", None, f"only used with nodePoolBackend existing-nodes, not {backend}")
            )
        pools.append(
            replace(
                default,
                instance_types=tuple(f["it"]),
                capacity_types=tuple(dict.fromkeys(f["ct"])) or ("on-demand",),
                limits=tuple(f["lim"]),
                nodes=tuple(f["nodes"]),
            )
        )
    return a.NodePoolsSpec(backend=backend, node_class=values["karpenterNodeClass"], pools=tuple(pools))


def _pool_needs() -> str:
    """``workers: label node-type=worker, taint dedicated=worker:NoSchedule; ...`` for every pool."""
    out = []
    for pool in POOLS.values():
        labels = ",".join(f"{k}={v}" for k, v in pool.labels)
        taints = ",".join(f"{t.key}{'=' + t.value if t.value else ''}:{t.effect}" for t in pool.taints)
        out.append(f"{pool.name}: label {labels}" + (f", taint {taints}" if taints else ""))
    return "; ".join(out)


def _resources(v: Mapping[str, Any], role: str) -> a.ResourcesSpec:
    return a.ResourcesSpec(
        *(v[resource_key(role, suffix)] for suffix in ("CpuRequest", "MemoryRequest", "CpuLimit", "MemoryLimit"))
    )


def _labels(values: Mapping[str, Any], key: str, problems: list[Problem]) -> tuple[tuple[str, str], ...]:
    out = []
    for item in values[key]:
        name, found, value = item.partition("=")
        if not found or not k8snames.is_label_key(name) or not k8snames.is_label_value(value):
            problems.append(Problem(key, item, 'expected "<label key>=<label value>"'))
        else:
            out.append((name, value))
    return tuple(out)


def _platform_config(v: Mapping[str, Any], pools: a.NodePoolsSpec, problems: list[Problem]) -> a.PlatformConfig:
    return a.PlatformConfig(
        namespace=v["namespace"],
        quota=a.QuotaSpec(
            v["quotaRequestsCpu"], v["quotaRequestsMemory"], v["quotaLimitsCpu"], v["quotaLimitsMemory"],
            v["quotaPods"], v["quotaGpus"],
        ),
        limit_range=a.LimitRangeSpec(
            v["limitDefaultCpu"], v["limitDefaultMemory"], v["limitDefaultRequestCpu"],
            v["limitDefaultRequestMemory"], v["limitMaxCpu"], v["limitMaxMemory"],
        ),
        network=a.NetworkSpec(
            v["apiServerCidr"], v["databaseCidr"], v["databasePort"], v["monitoringNamespace"],
            v["uiIngressNamespace"], v["taskEgressCidrs"], v["remoteLogCidr"],
            dns_namespace=v["dnsNamespace"], dns_pod_labels=v["dnsPodLabels"],
            node_local_dns_ips=v["nodeLocalDnsIps"], allow_open_task_egress=v["allowOpenTaskEgress"],
        ),
        rbac=a.RbacSpec(v["capacityAwareTiers"], v["utilizationMetrics"]),
        storage=a.DagsStorageSpec(v["dagsStorageSize"], v["dagsStorageClass"], v["dagsAccessMode"]),
        node_pools=pools,
        priority=a.PrioritySpec(v["taskPriority"], v["placeholderPriority"]),
        control_plane=a.ControlPlaneSpec(
            image=v["airflowImage"],
            image_pull_policy=v["airflowImagePullPolicy"],
            resources=tuple((role, _resources(v, role)) for role in a.CONTROL_PLANE_ROLES),
            api_server_replicas=v["apiServerReplicas"],
            scheduler_replicas=v["schedulerReplicas"],
            triggerer=v["triggererEnabled"],
            api_base_url=v["apiBaseUrl"],
        ),
        logging=a.LoggingSpec(v["remoteBaseLogFolder"], v["remoteLogConnId"]),
        protection=a.ProtectionSpec(v["protectNamespace"], v["protectDagsVolume"]),
        monitoring=a.MonitoringSpec(v["podMonitor"], _labels(v, "podMonitorLabels", problems)),
        pods=pod_settings(v, problems),
        addons=addons_spec(v),
        existing_secrets=existing_secrets(v, problems),
        executor=a.ExecutorSettings(
            worker_image=v["workerImage"],
            image_pull_policy=v["workerImagePullPolicy"],
            worker_pods_min=v["workerPodsMin"],
            worker_pods_max=v["workerPodsMax"],
            pod_creation_timeout=v["podCreationTimeout"],
            max_pod_pending_timeout=v["maxPodPendingTimeout"],
            delete_worker_pods=v["deleteWorkerPods"],
            delete_worker_pods_on_failure=v["deleteWorkerPodsOnFailure"],
            finished_pod_max_age_hours=v["finishedPodMaxAgeHours"],
            default_tier=v["defaultTier"],
            metrics_port=v["metricsPort"],
            placeholder_image=v["placeholderImage"],
        ),
        identity=a.PodIdentitySpec(v["runAsUser"], v["runAsGroup"]),
        image_preflight=a.ImagePreflightSpec(v["imagePreflight"], v["airflowVersion"]),
    )  # fmt: skip
