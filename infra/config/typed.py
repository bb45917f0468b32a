"""A :class:`~airflow_k8s.infra.config.args.PlatformConfig` built in Python, held to the stack keys' rules.

Consumer stacks build the config with real types (``PlatformConfig(namespace=..., executor=
ExecutorSettings(worker_pods_max=16), ...)``) instead of strings for every value.  So that such a
config is checked exactly like a ``Pulumi.<stack>.yaml``, :func:`stack_values` writes it back as the
raw stack values it corresponds to, and :func:`config_problems` runs
:func:`~airflow_k8s.infra.config.stack_config.parse_stack_config` on them: every per-key validator and
every cross-key rule applies, and each problem names the stack key (the field's twin is listed in
the README's configuration table).  The component runs it in its preflight.

Fields no stack key sets (the node pools' labels and taints, ``pod_template_dir``, the log-groomer's
resources) are the platform's contract, checked where they are used.  A round trip
``parse_stack_config(stack_values(c)).platform == c`` holds for every config a stack file can express
(tests check it for the defaults and the example stacks).
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from airflow_k8s.infra.config import args as a
from airflow_k8s.infra.config import pods as p
from airflow_k8s.infra.config.problem import Problem
from airflow_k8s.infra.config.stack_keys import resource_key, to_raw


def _role_items(config: a.PlatformConfig) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {key: [] for key in (
        "extraEnv", "extraEnvFrom", "extraVolumes", "extraVolumeMounts", "extraContainers", "extraInitContainers",
        "nodeSelectors", "tolerations", "affinities", "priorityClassNames",
    )}  # fmt: skip
    for role, pods in config.pods.roles:
        out["extraEnv"] += [f"{role}:{name}={value}" for name, value in pods.env]
        out["extraEnvFrom"] += [f"{role}:{kind}:{name}" for kind, name in pods.env_from]
        out["extraVolumes"] += [f"{role}:{v.name}={v.kind}:{v.source}" for v in pods.volumes]
        out["extraVolumeMounts"] += [
            f"{role}:{m.volume}={m.path}{'' if m.read_only else ':rw'}" for m in pods.volume_mounts
        ]
        out["extraContainers"] += [f"{role}:{json.dumps(c)}" for c in pods.sidecars]
        out["extraInitContainers"] += [f"{role}:{json.dumps(c)}" for c in pods.init_containers]
        out["nodeSelectors"] += [f"{role}:{k}={v}" for k, v in pods.node_selector]
        out["tolerations"] += [
            f"{role}:{t.key}{'' if t.value is None else '=' + t.value}{'' if t.effect is None else ':' + t.effect}"
            for t in pods.tolerations
        ]
        if pods.affinity is not None:
            out["affinities"].append(f"{role}:{json.dumps(pods.affinity)}")
        if pods.priority_class_name:
            out["priorityClassNames"].append(f"{role}:{pods.priority_class_name}")
    return out


def _existing(config: a.PlatformConfig) -> dict[str, Any]:
    out: dict[str, Any] = {stack_key: "" for stack_key, _ in p.EXISTING_SECRET_KEYS.values()}
    for key, ref in config.existing_secrets.refs:
        out[p.EXISTING_SECRET_KEYS[key][0]] = f"{ref.name}:{ref.key}"
    out["remoteLogSecret"] = config.existing_secrets.remote_logging or ""
    return out


def _addons(config: a.PlatformConfig) -> dict[str, Any]:
    git, clean, access = config.addons.git_sync, config.addons.db_clean, config.addons.access
    return {
        "gitSyncRepo": git.repo,
        "gitSyncRef": git.ref,
        "gitSyncSubPath": git.sub_path,
        "gitSyncPeriodSeconds": git.period_seconds,
        "gitSyncCredentialsSecret": git.credentials_secret or "",
        "gitSyncSshKeySecret": git.ssh_key_secret or "",
        "gitSyncImage": git.image,
        "gitSyncCidrs": list(git.cidrs),
        "dbCleanEnabled": clean.enabled,
        "dbCleanSchedule": clean.schedule,
        "dbCleanRetentionDays": clean.retention_days,
        "authManager": access.auth_manager,
        "adminUser": access.admin_user,
        "uiHost": access.host,
        "uiIngressClassName": access.ingress_class,
        "uiTlsSecret": access.tls_secret,
        "uiGateway": access.gateway,
        "airflowMetrics": config.addons.metrics.mode,
        "statsdImage": config.addons.metrics.statsd_image,
    }


def stack_values(config: a.PlatformConfig, platform_name: str = "airflow") -> dict[str, str]:
    """The raw stack values (``key -> string``, as Pulumi passes them) that express ``config``."""
    c, cp, e, n = config, config.control_plane, config.executor, config.network
    pools = c.node_pools.pools
    values: dict[str, Any] = {
        "platformName": platform_name,
        "namespace": c.namespace,
        "protectNamespace": c.protection.namespace,
        "protectDagsVolume": c.protection.dags_volume,
        "airflowImage": cp.image,
        "airflowImagePullPolicy": cp.image_pull_policy,
        "apiServerReplicas": cp.api_server_replicas,
        "schedulerReplicas": cp.scheduler_replicas,
        "triggererEnabled": cp.triggerer,
        "apiBaseUrl": cp.api_base_url,
        "remoteBaseLogFolder": c.logging.remote_base_log_folder,
        "remoteLogConnId": c.logging.remote_log_conn_id,
        "workerImage": e.worker_image,
        "workerImagePullPolicy": e.image_pull_policy,
        "workerPodsMin": e.worker_pods_min,
        "workerPodsMax": e.worker_pods_max,
        "podCreationTimeout": e.pod_creation_timeout,
        "maxPodPendingTimeout": e.max_pod_pending_timeout,
        "deleteWorkerPods": e.delete_worker_pods,
        "deleteWorkerPodsOnFailure": e.delete_worker_pods_on_failure,
        "finishedPodMaxAgeHours": e.finished_pod_max_age_hours,
        "defaultTier": e.default_tier,
        "metricsPort": e.metrics_port,
        "placeholderImage": e.placeholder_image,
        "taskPriority": c.priority.task_value,
        "placeholderPriority": c.priority.placeholder_value,
        "quotaRequestsCpu": c.quota.requests_cpu,
        "quotaRequestsMemory": c.quota.requests_memory,
        "quotaLimitsCpu": c.quota.limits_cpu,
        "quotaLimitsMemory": c.quota.limits_memory,
        "quotaPods": c.quota.pods,
        "quotaGpus": c.quota.gpus,
        "limitDefaultCpu": c.limit_range.default_cpu,
        "limitDefaultMemory": c.limit_range.default_memory,
        "limitDefaultRequestCpu": c.limit_range.default_request_cpu,
        "limitDefaultRequestMemory": c.limit_range.default_request_memory,
        "limitMaxCpu": c.limit_range.max_cpu,
        "limitMaxMemory": c.limit_range.max_memory,
        "apiServerCidr": n.api_server_cidr,
        "databaseCidr": n.database_cidr,
        "databasePort": n.database_port,
        "monitoringNamespace": n.monitoring_namespace,
        "uiIngressNamespace": n.ui_ingress_namespace or "",
        "taskEgressCidrs": list(n.task_egress_cidrs),
        "remoteLogCidr": n.remote_log_cidr,
        "dnsNamespace": n.dns_namespace,
        "dnsPodLabels": [f"{k}={v}" for k, v in n.dns_pod_labels],
        "nodeLocalDnsIps": list(n.node_local_dns_ips),
        "allowOpenTaskEgress": n.allow_open_task_egress,
        "capacityAwareTiers": c.rbac.capacity_aware_tiers,
        "utilizationMetrics": c.rbac.utilization_metrics,
        "dagsStorageSize": c.storage.size,
        "dagsStorageClass": c.storage.storage_class or "",
        "dagsAccessMode": c.storage.access_mode,
        "podMonitor": c.monitoring.pod_monitor,
        "podMonitorLabels": [f"{k}={v}" for k, v in c.monitoring.labels],
        "nodePoolBackend": c.node_pools.backend,
        "karpenterNodeClass": c.node_pools.node_class,
        "nodePoolInstanceTypes": [f"{pool.name}={t}" for pool in pools for t in pool.instance_types],
        "nodePoolCapacityTypes": [f"{pool.name}={t}" for pool in pools for t in pool.capacity_types],
        "nodePoolLimits": [f"{pool.name}.{r}={q}" for pool in pools for r, q in pool.limits],
        "existingNodes": [f"{pool.name}={node}" for pool in pools for node in pool.nodes],
        "runAsUser": c.identity.run_as_user,
        "runAsGroup": c.identity.run_as_group,
        "imagePreflight": c.image_preflight.enabled,
        "airflowVersion": c.image_preflight.airflow_version,
        "logsVolumeSize": c.pods.logs.volume_size,
        "logRetentionDays": c.pods.logs.retention_days,
        "imagePullSecrets": list(c.pods.image_pull_secrets),
        **_existing(c),
        **_role_items(c),
        **_addons(c),
    }
    for role in a.CONTROL_PLANE_ROLES:
        r = cp.resources_of(role)
        amounts = (r.cpu_request, r.memory_request, r.cpu_limit, r.memory_limit)
        for suffix, value in zip(("CpuRequest", "MemoryRequest", "CpuLimit", "MemoryLimit"), amounts, strict=True):
            values[resource_key(role, suffix)] = value
    return {key: str(to_raw(value)) for key, value in values.items()}


def config_problems(
    config: a.PlatformConfig, *, secrets_set: Collection[str] = ("databaseUrl",), platform_name: str = "airflow"
) -> list[Problem]:
    """What the stack keys' validators and cross-key rules find wrong with ``config`` (empty: nothing)."""
    from airflow_k8s.infra.config.stack_config import StackConfigError, parse_stack_config

    try:
        parse_stack_config(stack_values(config, platform_name), secrets_set=secrets_set)
    except StackConfigError as exc:
        return list(exc.problems)
    return []
