"""Stack keys of day-2 operations and of what users of the official Helm chart expect (issue 14).

The rows here join :data:`airflow_k8s.infra.config.stack_keys.KEYS` (and ``Pulumi.yaml``, in the same
order) before the secret keys: high availability, DNS and task egress, log retention, Secrets and
images brought by the operator, per-role extras and placement, DAG delivery with git-sync,
housekeeping, UI access and Airflow's own metrics.  Kept apart so the main table stays a table of the
platform's core; each row is ``(name, type, default, description)`` and :data:`VALIDATORS` holds the
checks applied to the type-parsed value.  Pure Python, imports nothing from ``stack_keys``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any, NoReturn

from airflow_k8s.executor.contract import config_keys, k8snames

Row = tuple[str, str, Any, str]


def _range(low: int, high: int) -> Callable[[int], int]:
    def check(value: int) -> int:
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}")
        return value

    return check


def _fail(reason: str) -> NoReturn:
    raise ValueError(reason)


def label_pair(item: str) -> tuple[str, str]:
    """``"<label key>=<label value>"`` -> (key, value); ValueError naming the item."""
    key, found, value = item.partition("=")
    if not found or not k8snames.is_label_key(key) or not k8snames.is_label_value(value):
        raise ValueError(f'{item!r}: expected "<label key>=<label value>"')
    return key, value


def ip_address(item: str) -> str:
    try:
        return str(ipaddress.ip_address(item))
    except ValueError as exc:
        raise ValueError(f"{item!r}: expected an IP address such as 169.254.20.10") from exc


ROWS: tuple[Row, ...] = (
    # --- high availability
    (
        "schedulerReplicas",
        "integer",
        1,
        "Schedulers run active-active (Airflow 3 HA), each with this executor owning its own task pods; 2+ "
        "roll one at a time and share workerPodsMax/workerPodsMin.",
    ),
    # --- DNS and task egress (NetworkPolicies)
    ("dnsNamespace", "string", "kube-system", "Namespace of the cluster DNS pods every pod may query on port 53."),
    (
        "dnsPodLabels",
        "array",
        ["k8s-app=kube-dns"],
        'Labels of the cluster DNS pods (kube-dns, CoreDNS), as "<key>=<value>".',
    ),
    (
        "nodeLocalDnsIps",
        "array",
        [],
        "Addresses NodeLocal DNSCache answers on (its link-local 169.254.20.10; in iptables mode also the kube-dns "
        "Service IP): every pod may query them on port 53.",
    ),
    (
        "allowOpenTaskEgress",
        "boolean",
        False,
        "Allow 0.0.0.0/0 in task egress (taskEgressCidrs, remoteLogCidr): task code then reaches any host on the "
        "internet; refused otherwise.",
    ),
)

VALIDATORS: dict[str, Callable[[Any], Any]] = {
    "schedulerReplicas": _range(1, 10),
    "dnsNamespace": config_keys.dns_label,
    "dnsPodLabels": lambda items: tuple(label_pair(item) for item in items) or _fail("needs at least one label"),
    "nodeLocalDnsIps": lambda items: tuple(ip_address(item) for item in items),
}
