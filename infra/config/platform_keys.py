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
import re
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


_SECRET_REF = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?(:[-._A-Za-z0-9]{1,253})?", re.ASCII)


def _secret_ref(value: str) -> str:
    """Empty, or ``"<secret name>[:<data key>]"`` (whole value, ASCII: no trailing newline)."""
    if value and not _SECRET_REF.fullmatch(value):
        raise ValueError('expected "<secret name>[:<key>]"')
    return value


def _optional_name(value: str) -> str:
    return config_keys.dns_subdomain(value) if value else value


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
    # --- control-plane logs
    (
        "logsVolumeSize",
        "string",
        "1Gi",
        "Size of each control-plane pod's logs emptyDir; its log-groomer keeps the files under 80% of it, oldest "
        "first.",
    ),
    (
        "logRetentionDays",
        "integer",
        15,
        "Days control-plane log files are kept (the log-groomer sidecar deletes older ones).",
    ),
    # --- Secrets and images the operator brings
    (
        "existingDatabaseUrlSecret",
        "string",
        "",
        'Existing Secret holding the database URL, as "<secret>[:<key>]" (key: connection); databaseUrl is then '
        "not set.",
    ),
    (
        "existingFernetKeySecret",
        "string",
        "",
        'Existing Secret holding [core] fernet_key, as "<secret>[:<key>]" (key: fernet-key).',
    ),
    (
        "existingJwtSecretSecret",
        "string",
        "",
        'Existing Secret holding [api_auth] jwt_secret, as "<secret>[:<key>]" (key: jwt-secret).',
    ),
    (
        "existingApiSecretKeySecret",
        "string",
        "",
        'Existing Secret holding [api] secret_key, as "<secret>[:<key>]" (key: api-secret-key).',
    ),
    (
        "remoteLogSecret",
        "string",
        "",
        "Existing Secret whose keys become env vars of the scheduler, api-server, dag-processor and triggerer (e.g. "
        "AIRFLOW_CONN_AWS_LOGS); task pods get the connection through the Execution API.",
    ),
    (
        "imagePullSecrets",
        "array",
        [],
        "Secrets (kubernetes.io/dockerconfigjson) every platform ServiceAccount pulls images with, task pods' too.",
    ),
    # --- per-role additions (role: scheduler, apiServer, dagProcessor, triggerer, migration, dbClean or all)
    ("extraEnv", "array", [], 'Extra env of a role\'s main container, as "<role>:<NAME>=<value>".'),
    ("extraEnvFrom", "array", [], 'Extra envFrom of a role, as "<role>:secret:<name>" or "<role>:configMap:<name>".'),
    (
        "extraVolumes",
        "array",
        [],
        'Extra volumes of a role, as "<role>:<volume>=<configMap|secret|persistentVolumeClaim>:<name>" or '
        '"<role>:<volume>=emptyDir:<size>".',
    ),
    (
        "extraVolumeMounts",
        "array",
        [],
        'Mounts of extra volumes in a role\'s main container, as "<role>:<volume>=<path>" (read-only; ":rw" at the '
        "end for read-write).",
    ),
    (
        "extraContainers",
        "array",
        [],
        'Sidecars of a role, as "<role>:<container JSON>": hardened (non-root, read-only root, no privilege '
        "escalation, capabilities dropped) or refused; requests and limits required.",
    ),
    (
        "extraInitContainers",
        "array",
        [],
        'Init containers of a role, as "<role>:<container JSON>", hardened like extraContainers.',
    ),
    # --- per-role placement
    ("nodeSelectors", "array", [], 'Node selector of a role, as "<role>:<label key>=<value>".'),
    ("tolerations", "array", [], 'Tolerations of a role, as "<role>:<key>[=<value>][:<effect>]".'),
    ("affinities", "array", [], 'Affinity of a role, as "<role>:<affinity JSON>".'),
    ("priorityClassNames", "array", [], 'PriorityClass of a role\'s pods, as "<role>:<name>".'),
)

VALIDATORS: dict[str, Callable[[Any], Any]] = {
    "schedulerReplicas": _range(1, 10),
    "dnsNamespace": config_keys.dns_label,
    "dnsPodLabels": lambda items: tuple(label_pair(item) for item in items) or _fail("needs at least one label"),
    "nodeLocalDnsIps": lambda items: tuple(ip_address(item) for item in items),
    "logsVolumeSize": config_keys.memory,
    "logRetentionDays": _range(1, 3650),
    "existingDatabaseUrlSecret": _secret_ref,
    "existingFernetKeySecret": _secret_ref,
    "existingJwtSecretSecret": _secret_ref,
    "existingApiSecretKeySecret": _secret_ref,
    "remoteLogSecret": _optional_name,
}
