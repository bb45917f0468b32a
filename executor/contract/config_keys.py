"""The table of airflow.cfg keys: how each is parsed, validated and rendered.

Loader and renderer both walk this table, which is what makes ``parse(render(c)) == c`` hold
for every valid config.  Each parser takes the raw string and raises ``ValueError`` with a
sentence saying what is wrong; the loader adds file, section, key and value to it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from airflow_k8s.executor.contract import k8snames, quantity
from airflow_k8s.executor.contract.config import PULL_POLICIES, TAINT_EFFECTS, TOLERATION_OPERATORS, Toleration
from airflow_k8s.executor.contract.errors import QuantityError

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}
_IMAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@+-]*$")


@dataclass(frozen=True)
class Key:
    """One setting: its name, parser, renderer and a one-line description."""

    name: str
    parse: Callable[[str], Any]
    render: Callable[[Any], str]
    doc: str


def parse_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError("expected a boolean (True/False)")


def render_bool(value: bool) -> str:
    return "True" if value else "False"


def _int_parser(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        text = raw.strip()
        if not re.fullmatch(r"[+-]?\d+", text):
            raise ValueError("expected a whole number")
        value = int(text)
        if value < minimum:
            raise ValueError(f"must be >= {minimum}")
        if maximum is not None and value > maximum:
            raise ValueError(f"must be <= {maximum}")
        return value

    return parse


positive_int = _int_parser(1)
non_negative_int = _int_parser(0)
port = _int_parser(1, 65535)


def positive_float(raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError as exc:
        raise ValueError("expected a number") from exc
    if not math.isfinite(value) or value <= 0:
        raise ValueError("must be a finite number greater than zero")
    return value


def price(raw: str) -> Decimal:
    try:
        value = Decimal(raw.strip())
    except InvalidOperation as exc:
        raise ValueError("expected a price such as 0.08") from exc
    if not value.is_finite() or value < 0:
        raise ValueError("price must be zero or more")
    return value


def text(raw: str) -> str:
    value = raw.strip()
    if not value or "\n" in value:
        raise ValueError("expected a non-empty single-line value")
    return value


def absolute_path(raw: str) -> str:
    value = text(raw)
    if not value.startswith("/"):
        raise ValueError("expected an absolute path")
    return value


def image(raw: str) -> str:
    value = raw.strip()
    if not _IMAGE.match(value):
        raise ValueError("expected a container image reference such as apache/airflow:2.8.0")
    return value


def dns_label(raw: str) -> str:
    value = raw.strip()
    if not k8snames.is_dns1123_label(value):
        raise ValueError("expected a DNS-1123 label (lowercase a-z, 0-9, '-', <= 63 chars)")
    return value


def dns_subdomain(raw: str) -> str:
    value = raw.strip()
    if not k8snames.is_dns1123_subdomain(value):
        raise ValueError("expected a DNS-1123 name (lowercase a-z, 0-9, '-', '.')")
    return value


def label_value(raw: str) -> str:
    value = raw.strip()
    problem = k8snames.label_value_problem(value)
    if problem or not value:
        raise ValueError(problem or "expected a non-empty label value")
    return value


def pull_policy(raw: str) -> str:
    value = raw.strip()
    if value not in PULL_POLICIES:
        raise ValueError(f"expected one of {', '.join(PULL_POLICIES)}")
    return value


def quantity_parser(check: Callable[[object], Decimal]) -> Callable[[str], str]:
    """A parser that checks a quantity with ``check`` and keeps its text (ValueError on failure)."""

    def parse(raw: str) -> str:
        value = raw.strip()
        try:
            check(value)
        except QuantityError as exc:
            raise ValueError(str(exc)) from exc
        return value

    return parse


cpu = quantity_parser(quantity.cpu)
memory = quantity_parser(quantity.memory)


def node_selector(raw: str) -> tuple[tuple[str, str], ...]:
    """JSON object of label key -> label value, e.g. ``{"node-type": "worker"}``."""
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    if not isinstance(data, dict):
        raise ValueError('expected a JSON object such as {"node-type": "worker"}')
    for key, value in data.items():
        problem = k8snames.label_key_problem(key) or k8snames.label_value_problem(value)
        if problem:
            raise ValueError(problem)
    return tuple(sorted(data.items()))


def render_node_selector(value: tuple[tuple[str, str], ...]) -> str:
    return json.dumps(dict(value), sort_keys=True)


_TOLERATION_FIELDS = {"key", "operator", "value", "effect", "tolerationSeconds"}


def toleration(item: object) -> Toleration:
    """Validate one toleration dict (camelCase, as in pod specs)."""
    if not isinstance(item, dict):
        raise ValueError(f"each toleration must be a JSON object, got {item!r}")
    unknown = set(item) - _TOLERATION_FIELDS
    if unknown:
        raise ValueError(f"unknown toleration field(s) {sorted(unknown)}; allowed: {sorted(_TOLERATION_FIELDS)}")
    operator = item.get("operator", "Equal")
    if operator not in TOLERATION_OPERATORS:
        raise ValueError(f"toleration operator {operator!r} must be one of {TOLERATION_OPERATORS}")
    key, value, effect = item.get("key"), item.get("value"), item.get("effect")
    if key is not None and (not isinstance(key, str) or not k8snames.is_label_key(key)):
        raise ValueError(f"toleration key {key!r} is not a valid label key")
    if operator == "Exists" and value not in (None, ""):
        raise ValueError("a toleration with operator Exists must not have a value")
    if operator == "Equal" and key is None:
        raise ValueError("a toleration with operator Equal needs a key")
    if value is not None and k8snames.label_value_problem(value):
        raise ValueError(f"toleration value {value!r} is not a valid label value")
    if effect is not None and effect not in TAINT_EFFECTS:
        raise ValueError(f"toleration effect {effect!r} must be one of {TAINT_EFFECTS}")
    seconds = item.get("tolerationSeconds")
    if seconds is not None:
        if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds < 0:
            raise ValueError("tolerationSeconds must be a whole number >= 0")
        if effect != "NoExecute":
            raise ValueError("tolerationSeconds only applies to effect NoExecute")
    return Toleration(key=key, operator=operator, value=value or None, effect=effect, toleration_seconds=seconds)


def tolerations(raw: str) -> tuple[Toleration, ...]:
    """JSON array of toleration objects."""
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    if not isinstance(data, list):
        raise ValueError('expected a JSON array such as [{"key": "dedicated", "operator": "Equal", ...}]')
    return tuple(toleration(item) for item in data)


def render_tolerations(value: tuple[Toleration, ...]) -> str:
    return json.dumps([t.to_k8s() for t in value])


KUBERNETES_KEYS: tuple[Key, ...] = (
    Key("namespace", dns_label, str, "Namespace the worker pods run in."),
    Key("worker_container_image", image, str, "Image for the base container; overrides templates without one."),
    Key("worker_service_account_name", dns_subdomain, str, "Service account of worker pods."),
    Key("worker_resource_request_cpu", cpu, str, "Default CPU request of the base container."),
    Key("worker_resource_request_memory", memory, str, "Default memory request of the base container."),
    Key("worker_resource_limit_cpu", cpu, str, "Default CPU limit of the base container."),
    Key("worker_resource_limit_memory", memory, str, "Default memory limit of the base container."),
    Key("pod_template_file", absolute_path, str, "Default pod template (inside pod_template_dir)."),
    Key("pod_template_dir", absolute_path, str, "Directory holding the named pod templates."),
    Key("delete_worker_pods", parse_bool, render_bool, "Delete pods of succeeded tasks."),
    Key("delete_worker_pods_on_failure", parse_bool, render_bool, "Delete pods of failed tasks too."),
    Key("pod_creation_timeout", positive_int, str, "Seconds until the API must have accepted a pod."),
    Key("max_pod_pending_timeout", positive_int, str, "Seconds a pod may stay Pending."),
    Key("image_pull_policy", pull_policy, str, "Always, IfNotPresent or Never."),
    Key("worker_node_selector", node_selector, render_node_selector, "JSON object of node labels."),
    Key("worker_tolerations", tolerations, render_tolerations, "JSON array of tolerations."),
    Key("worker_pods_min", non_negative_int, str, "N_min: warm capacity kept by placeholder pods."),
    Key("worker_pods_max", positive_int, str, "N_max: task pods allowed at once."),
    Key("worker_pods_creation_qps", positive_float, repr, "Sustained pod creations per second."),
    Key("worker_pods_creation_burst", positive_int, str, "Pod creations allowed in a burst."),
    Key("worker_pods_creation_workers", positive_int, str, "Concurrent pod-creation requests."),
    Key("worker_priority_class", dns_subdomain, str, "PriorityClass of task pods."),
    Key("placeholder_priority_class", dns_subdomain, str, "PriorityClass of placeholder pods."),
    Key("placeholder_image", image, str, "Image of placeholder pods (a pause image)."),
    Key("scheduler_instance_id", label_value, str, "Label value identifying this executor's pods."),
    Key("in_cluster", parse_bool, render_bool, "Use the in-cluster service account to reach the API."),
    Key("config_file", absolute_path, str, "kubeconfig path when in_cluster is False."),
    Key("cluster_context", text, str, "kubeconfig context when in_cluster is False."),
    Key("kube_request_timeout", positive_int, str, "Client-side timeout of one API request (s)."),
    Key("watch_timeout_seconds", positive_int, str, "Server-side timeout of one watch (s)."),
    Key("task_intake_dir", absolute_path, str, "Spool directory of task JSON files."),
    Key("metrics_port", port, str, "Port of the Prometheus metrics endpoint."),
    Key("finished_pod_max_age_hours", positive_int, str, "Age after which kept pods are cleaned up."),
    Key("default_tier", dns_label, str, "Tier used for cost when a pod names none."),
)

TIER_KEYS: tuple[Key, ...] = (
    Key("request_cpu", cpu, str, "CPU request."),
    Key("request_memory", memory, str, "Memory request."),
    Key("limit_cpu", cpu, str, "CPU limit."),
    Key("limit_memory", memory, str, "Memory limit."),
    Key("gpu", non_negative_int, str, "nvidia.com/gpu count."),
    Key("cost_per_pod_hour", price, str, "Price per pod-hour, for cost reports."),
    Key("pod_template", text, str, "Template file name in pod_template_dir."),
    Key("auto", parse_bool, render_bool, "May be chosen for tier: auto tasks."),
)

# Airflow keys with another name here: accepted, mapped, and an error if both are given.
ALIASES = {"worker_pods_pending_timeout": "max_pod_pending_timeout"}

# Airflow [kubernetes_executor] keys this executor deliberately does not implement.
UNSUPPORTED = {
    "multi_namespace_mode": "this executor manages exactly one namespace",
    "multi_namespace_mode_namespace_list": "this executor manages exactly one namespace",
    "worker_pods_creation_batch_size": "use worker_pods_creation_qps and worker_pods_creation_burst",
    "delete_option_kwargs": "deletion options are fixed by the executor",
    "kube_client_request_args": "use kube_request_timeout",
    "enable_tcp_keepalive": "not configurable here",
    "verify_ssl": "TLS verification cannot be turned off",
    "worker_pods_queued_check_interval": "the watch makes polling unnecessary",
    "worker_pods_pending_timeout_check_interval": "pending pods are checked continuously",
    "worker_pods_pending_timeout_batch_size": "pending pods are checked continuously",
}
