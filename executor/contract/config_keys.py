"""The tables of airflow.cfg keys: how each is parsed, validated and rendered, and what it means.

Loader and renderer both walk these tables, which is what makes ``parse(render(c)) == c`` hold
for every valid config.  Each parser (:mod:`~airflow_k8s.executor.contract.parsers`) takes the raw
string and raises ``ValueError`` with a sentence saying what is wrong; the loader adds file,
section, key and value to it.

``[kubernetes_executor]`` holds two kinds of keys: the 31 that Airflow 3.3 (the cncf-kubernetes
provider) defines, which keep Airflow's default and meaning (``Key.airflow``), and this executor's
own (N_min/N_max, creation rate, tiers, placeholders...).  Airflow keys this executor cannot
honour at every value are accepted at their default and rejected otherwise (:data:`ONLY_DEFAULT`),
obsolete ones are accepted and ignored (:data:`OBSOLETE`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from airflow_k8s.executor.contract import policy_keys
from airflow_k8s.executor.contract.config import DELETE_PROPAGATION_POLICIES
from airflow_k8s.executor.contract.parsers import (
    absolute_path,
    comma_list,
    cpu,
    dns_label,
    dns_subdomain,
    float_parser,
    image,
    int_parser,
    json_value,
    label_value,
    memory,
    namespace,
    node_selector,
    parse_bool,
    price,
    pull_policy,
    render_bool,
    render_comma_list,
    render_node_selector,
    render_tolerations,
    text,
    toleration,
    tolerations,
)

__all__ = [  # parsers other modules (task overrides, infra's stack keys) take from here
    "cpu",
    "dns_label",
    "dns_subdomain",
    "image",
    "memory",
    "parse_bool",
    "pull_policy",
    "text",
    "toleration",
    "tolerations",
]

WEEK = 7 * 24 * 3600


@dataclass(frozen=True)
class Key:
    """One setting: its name, parser, renderer, a one-line description, and whether Airflow defines it."""

    name: str
    parse: Callable[[str], Any]
    render: Callable[[Any], str]
    doc: str
    airflow: bool = False


def _url(raw: str) -> str:
    value = text(raw)
    if not value.startswith(("http://", "https://")) or " " in value:
        raise ValueError("expected an http:// or https:// URL")
    return value


def _import_path(raw: str) -> str:
    value = raw.strip()
    if not all(part.isidentifier() for part in value.split(".")) or "." not in value:
        raise ValueError("expected a dotted import path such as my_package.clients.make_core_v1")
    return value


def _reason(raw: str) -> str:
    value = raw.strip()
    if not value.isascii() or not value.isalnum():
        raise ValueError(f"{value!r} is not a container state reason (letters and digits, e.g. ErrImagePull)")
    return value


def _request_args(raw: str) -> tuple[tuple[str, float | tuple[float, float]], ...]:
    """kube_client_request_args: only ``_request_timeout`` (seconds, or [connect, read]) is honoured."""
    if not raw.strip():
        return ()
    data = json_value(raw, dict, '{"_request_timeout": [5, 60]}')
    if not data:
        return ()
    unknown = sorted(set(data) - {"_request_timeout"})
    if unknown:
        raise ValueError(f"only _request_timeout is supported here (got {unknown}): the executor makes its own calls")
    timeout = data["_request_timeout"]
    if isinstance(timeout, list) and len(timeout) == 2:
        parts = tuple(_seconds(item) for item in timeout)
        return (("_request_timeout", (parts[0], parts[1])),)
    return (("_request_timeout", _seconds(timeout)),)


def _seconds(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 3600:
        raise ValueError(f"_request_timeout {value!r}: expected seconds in (0, 3600], or [connect, read]")
    return float(value)


def _render_request_args(value: tuple[tuple[str, Any], ...]) -> str:
    return json.dumps({k: list(v) if isinstance(v, tuple) else v for k, v in value})


def _delete_options(raw: str) -> tuple[tuple[str, int | str], ...]:
    """delete_option_kwargs: ``grace_period_seconds`` and ``propagation_policy`` (the client's names)."""
    if not raw.strip():
        return ()
    data = json_value(raw, dict, '{"grace_period_seconds": 10}')
    out: list[tuple[str, int | str]] = []
    for key, value in sorted(data.items()):
        if key == "grace_period_seconds":
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= WEEK:
                raise ValueError(f"grace_period_seconds {value!r}: expected whole seconds in [0, {WEEK}]")
        elif key == "propagation_policy":
            if value not in DELETE_PROPAGATION_POLICIES:
                raise ValueError(f"propagation_policy {value!r}: expected one of {DELETE_PROPAGATION_POLICIES}")
        else:
            raise ValueError(f"{key!r} is not supported; allowed: grace_period_seconds, propagation_policy")
        out.append((key, value))
    return tuple(out)


def _render_json_pairs(value: tuple[tuple[str, Any], ...]) -> str:
    return json.dumps(dict(value), sort_keys=True)


_ints = int_parser
_reasons = comma_list(_reason)
_namespaces = comma_list(namespace)


def _optional(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """``parse``, or None for an empty value (the key is then as good as unset)."""
    return lambda raw: parse(raw) if raw.strip() else None


def _optional_int(minimum: int, maximum: int) -> Callable[[str], int | None]:
    parse = int_parser(minimum, maximum)
    return lambda raw: parse(raw) if raw.strip() else None


MIN_CREATION_QPS = 0.01  # below it the bucket would take days to refill a token: no pod would ever start

KUBERNETES_KEYS: tuple[Key, ...] = (
    # -- Airflow 3.3's keys ----------------------------------------------------------------------
    Key("namespace", namespace, str, "Namespace the worker pods run in (Airflow's default: default).", True),
    Key("pod_template_file", absolute_path, str, "Default pod template (inside pod_template_dir).", True),
    Key("delete_worker_pods", parse_bool, render_bool, "Delete worker pods when their task ends.", True),
    Key("delete_worker_pods_on_failure", parse_bool, render_bool, "With delete_worker_pods: failed too.", True),
    Key("worker_pod_pending_fatal_container_state_reasons", _reasons, render_comma_list,
        "Waiting reasons that fail a Pending pod at once (comma-separated).", True),
    Key("worker_pods_creation_batch_size", _optional_int(1, 10_000), str,
        "When set: at most this many new pods per scheduler loop (Airflow's meaning).", True),
    Key("async_pod_creation", parse_bool, render_bool, "Pods are always created concurrently here.", True),
    Key("pod_creation_max_concurrency", _ints(0, 256), str,
        "Concurrent pod-creation requests (0: worker_pods_creation_workers).", True),
    Key("multi_namespace_mode", parse_bool, render_bool, "Task pods may run in other namespaces.", True),
    Key("multi_namespace_mode_namespace_list", _namespaces, render_comma_list,
        "Namespaces allowed in multi_namespace_mode (empty: any, needs cluster-wide RBAC).", True),
    Key("in_cluster", parse_bool, render_bool, "Use the in-cluster service account to reach the API.", True),
    Key("cluster_context", text, str, "kubeconfig context when in_cluster is False.", True),
    Key("config_file", absolute_path, str, "kubeconfig path when in_cluster is False.", True),
    Key("client_factory", _import_path, str, "Import path of a callable returning a CoreV1Api.", True),
    Key("kube_client_request_args", _request_args, _render_request_args,
        "JSON; _request_timeout of every API call.", True),
    Key("delete_option_kwargs", _delete_options, _render_json_pairs,
        "JSON; grace_period_seconds / propagation_policy of pod deletions.", True),
    Key("enable_tcp_keepalive", parse_bool, render_bool, "TCP keepalive on API connections.", True),
    Key("tcp_keep_idle", _ints(1, 32767), str, "Seconds idle before the first keepalive probe.", True),
    Key("tcp_keep_intvl", _ints(1, 32767), str, "Seconds between keepalive probes.", True),
    Key("tcp_keep_cnt", _ints(1, 127), str, "Unanswered probes before the connection is dropped.", True),
    Key("verify_ssl", parse_bool, render_bool, "Verify the API server's TLS certificate.", True),
    Key("ssl_ca_cert", absolute_path, str, "CA bundle for the API server's certificate.", True),
    Key("running_pod_log_lines", _ints(1, 100_000), str, "Log lines shown for a running task.", True),
    Key("logs_task_metadata", parse_bool, render_bool, "Add task identity to the executor's log lines.", True),
    Key("task_publish_max_retries", _optional_int(-1, 1_000_000), str,
        "When set: quota/transient create refusals retried at most this often (-1: no cap).", True),
    Key("pod_launch_failure_retries", _ints(-1, 1000), str,
        "Relaunches of a pod that failed before its task started (-1: no cap).", True),
    Key("pod_launch_failure_excluded_container_reasons", _reasons, render_comma_list,
        "Termination reasons that are not launch failures (comma-separated).", True),
    # -- this executor's keys --------------------------------------------------------------------
    Key("worker_container_image", image, str, "Image for the base container; overrides templates without one."),
    Key("worker_service_account_name", dns_subdomain, str, "Service account of worker pods."),
    Key("worker_resource_request_cpu", cpu, str, "Default CPU request of the base container."),
    Key("worker_resource_request_memory", memory, str, "Default memory request of the base container."),
    Key("worker_resource_limit_cpu", cpu, str, "Default CPU limit of the base container."),
    Key("worker_resource_limit_memory", memory, str, "Default memory limit of the base container."),
    Key("pod_template_dir", absolute_path, str, "Directory holding the named pod templates."),
    Key("pod_creation_timeout", _ints(1, WEEK), str, "Seconds until the API must have accepted a pod."),
    Key("max_pod_pending_timeout", _ints(1, WEEK), str, "Seconds a pod may stay Pending."),
    Key("quota_pushback_timeout", _ints(1, WEEK), str, "Seconds a task may be refused by ResourceQuota."),
    Key("image_pull_policy", pull_policy, str, "Always, IfNotPresent or Never."),
    Key("worker_node_selector", node_selector, render_node_selector, "JSON object of node labels."),
    Key("worker_tolerations", tolerations, render_tolerations, "JSON array of tolerations."),
    Key("worker_pods_min", _ints(0, 10_000), str, "N_min: warm capacity kept by placeholder pods."),
    Key("worker_pods_max", _ints(1, 50_000), str, "N_max: task pods allowed at once."),
    Key("worker_pods_creation_qps", _optional(float_parser(MIN_CREATION_QPS, 10_000.0, inclusive=True)), repr,
        "When set: a hard cap on API writes per second, at least 0.01 (unset: paced by the API server's pushback)."),
    Key("worker_pods_creation_burst", _optional(_ints(1, 100_000)), str,
        "With worker_pods_creation_qps: writes allowed in a burst (default 2 x the QPS)."),
    Key("worker_pods_creation_workers", _ints(1, 256), str, "Concurrent pod-creation requests."),
    Key("worker_priority_class", dns_subdomain, str, "PriorityClass of task pods."),
    Key("placeholder_priority_class", dns_subdomain, str, "PriorityClass of placeholder pods."),
    Key("placeholder_image", image, str, "Image of placeholder pods (a pause image)."),
    Key("scheduler_instance_id", label_value, str, "Label value of this executor's pods (standalone runner)."),
    Key("kube_request_timeout", _ints(1, 3600), str,
        "Client-side deadline of one API request (s): connect, headers and body together."),
    Key("kube_max_response_mib", _ints(1, 4096), str,
        "Largest API answer (or watch event) read, in MiB; a larger one is an error, never read whole."),
    Key("watch_timeout_seconds", _ints(1, 3600), str, "Server-side timeout of one watch (s)."),
    Key("task_intake_dir", absolute_path, str, "Spool directory of task JSON files (standalone runner)."),
    Key("metrics_port", _ints(1, 65535), str, "Port of the Prometheus metrics endpoint."),
    Key("finished_pod_max_age_hours", _ints(1, 8760), str, "Age after which kept pods are cleaned up."),
    Key("default_tier", dns_label, str, "Tier used for cost when a pod names none."),
    Key("unrequested_reschedule_limit", _ints(1, 1000), str,
        "Times a try may come back without having asked before it fails with its pod's last log lines."),
    # -- what a task may change in its pod (docs/executor.md "Task pod policy") -----------------
    Key("task_allowed_pod_fields", policy_keys.pod_fields, render_comma_list,
        "Pod spec fields a task may set at all (comma-separated)."),
    Key("task_allowed_service_accounts", policy_keys.names, render_comma_list,
        "Service accounts a task may switch to, besides the worker's."),
    Key("task_allowed_priority_classes", policy_keys.priority_classes, render_comma_list,
        "PriorityClasses a task may use, besides those of templates and config."),
    Key("task_allowed_secrets", policy_keys.names, render_comma_list,
        "Secrets a task may use in volumes, env, envFrom and imagePullSecrets (default: none)."),
    Key("task_allowed_config_maps", policy_keys.names, render_comma_list,
        "ConfigMaps a task may use, besides those the templates use."),
    Key("task_allowed_claims", policy_keys.names, render_comma_list,
        "PersistentVolumeClaims a task may mount read-only, besides those the templates mount."),
    Key("task_allowed_registries", policy_keys.registries, render_comma_list,
        "Registries (or repository prefixes) of task images, besides those of the configured images."),
    Key("task_allowed_node_selectors", policy_keys.node_selector_allowance,
        policy_keys.render_node_selector_allowance,
        "JSON object of node label key -> values a task may select, besides the pools' own."),
    Key("task_allowed_tolerations", policy_keys.task_tolerations, render_tolerations,
        "JSON array of tolerations a task may add, besides the pools' own."),
)  # fmt: skip

CORE_KEYS: tuple[Key, ...] = (
    Key("execution_api_server_url", _url, str, "Execution API URL task pods call (Airflow's key).", True),
)

# Airflow's [workers] keys the Task SDK reads in a task pod: the executor forwards them (or, unset, its own
# defaults, which ride out an api-server restart) into every task pod, so none needs airflow.cfg for them.
WORKERS_KEYS: tuple[Key, ...] = (
    Key("execution_api_retries", _ints(1, 1000), str, "Attempts of each task's Execution API call.", True),
    Key("execution_api_retry_wait_min", float_parser(0.0, 3600.0), repr, "Least wait between attempts (s).", True),
    Key("execution_api_retry_wait_max", float_parser(0.0, 3600.0), repr, "Most wait between attempts (s).", True),
)

TIER_KEYS: tuple[Key, ...] = (
    Key("request_cpu", cpu, str, "CPU request."),
    Key("request_memory", memory, str, "Memory request."),
    Key("limit_cpu", cpu, str, "CPU limit."),
    Key("limit_memory", memory, str, "Memory limit."),
    Key("gpu", _ints(0, 64), str, "nvidia.com/gpu count."),
    Key("cost_per_pod_hour", price, str, "Price per pod-hour, for cost reports."),
    Key("pod_template", text, str, "Template file name in pod_template_dir."),
    Key("auto", parse_bool, render_bool, "May be chosen for tier: auto tasks."),
)

# Keys with another name here: accepted, mapped, and an error if both are given.
ALIASES = {"worker_pods_pending_timeout": "max_pod_pending_timeout"}

# Airflow keys accepted only at their default: (default, why another value cannot be honoured).
ONLY_DEFAULT: dict[str, tuple[str, str]] = {
    "api_client_retry_configuration": (
        "",
        "the executor retries API calls itself (429 Retry-After, 5xx backoff, bounded by pod_creation_timeout); "
        "urllib3 retries underneath would retry pod creations blindly",
    ),
    "async_client_factory": ("", "pods are created by the executor's own threads with the client of client_factory"),
}

# Keys older Airflow releases defined; the watch and the engine's timers replaced what they tuned.
OBSOLETE = {
    "worker_pods_queued_check_interval": "queued pods are watched, not polled",
    "worker_pods_pending_timeout_check_interval": "pending pods are checked every second",
    "worker_pods_pending_timeout_batch_size": "every pending pod is checked",
}

# Airflow keys whose empty value is a value (an empty list), not "unset".
EMPTY_IS_A_VALUE = frozenset(
    {
        "worker_pod_pending_fatal_container_state_reasons",
        "multi_namespace_mode_namespace_list",
        "pod_launch_failure_excluded_container_reasons",
    }
)

AIRFLOW_KEYS = frozenset(
    [k.name for k in KUBERNETES_KEYS if k.airflow]
    + list(ONLY_DEFAULT)
    + ["worker_container_repository", "worker_container_tag"]
)
"""Every key Airflow 3.3 defines in [kubernetes_executor] (tests compare it with the provider's list)."""
