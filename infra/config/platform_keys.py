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


_GIT_REPO = re.compile(r"(https://|ssh://|git@)[!-~]+", re.ASCII)
_GIT_REF = re.compile(r"[A-Za-z0-9][-A-Za-z0-9._/]{0,199}", re.ASCII)
_RELATIVE = re.compile(r"([A-Za-z0-9_][-A-Za-z0-9_.]*)(/[A-Za-z0-9_][-A-Za-z0-9_.]*)*", re.ASCII)
_CRON_FIELD = re.compile(r"[0-9*/,-]+|[A-Za-z]{3}", re.ASCII)
_CLASS_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+", re.ASCII)
_USER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}", re.ASCII)


def _matching(pattern: re.Pattern[str], reason: str, *, optional: bool = False) -> Callable[[str], str]:
    def check(value: str) -> str:
        if (value or not optional) and not pattern.fullmatch(value):
            raise ValueError(reason)
        return value

    return check


_git_repo = _matching(_GIT_REPO, "expected https://..., ssh://... or git@host:path (empty: off)", optional=True)
_git_ref = _matching(_GIT_REF, "expected a branch, tag or commit")
_relative_path = _matching(_RELATIVE, "expected a relative path such as dags or team/dags", optional=True)
_auth_manager_class = _matching(_CLASS_PATH, "expected simple or a class path such as airflow.providers...")
_user_name = _matching(_USER, "expected a user name (letters, digits, _ . @ -)")


def _auth_manager(value: str) -> str:
    return value if value == "simple" else _auth_manager_class(value)


def _cron(value: str) -> str:
    fields = value.split(" ")
    if len(fields) != 5 or not all(_CRON_FIELD.fullmatch(f) for f in fields):
        raise ValueError('expected a five-field cron schedule such as "0 3 * * *"')
    return value


def _optional_host(value: str) -> str:
    return config_keys.dns_subdomain(value) if value else value


def _gateway(value: str) -> str:
    namespace, found, name = value.partition("/")
    if value and not (found and k8snames.is_dns1123_label(namespace) and k8snames.is_dns1123_subdomain(name)):
        raise ValueError('expected "<namespace>/<gateway name>"')
    return value


def _one_of(*choices: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}")
        return value

    return check


def _cidr(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=True))
    except ValueError as exc:
        raise ValueError(f"{value!r}: expected a CIDR such as 10.0.0.0/16 ({exc})") from exc


ROWS: tuple[Row, ...] = (
    # --- high availability
    (
        "schedulerReplicas",
        "integer",
        1,
        "Schedulers run active-active (Airflow 3 HA), each with this executor owning its own task pods; 2+ "
        "roll one at a time and share workerPodsMax (workerPodsMin is kept once for the namespace).",
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
    (
        "priorityClassNames",
        "array",
        [],
        "PriorityClass of a role's pods, as \"<role>:<name>\" (default: the platform's own control-plane class).",
    ),
    # --- DAG delivery: git-sync into the DAGs claim
    ("gitSyncRepo", "string", "", "Git repository of the DAGs (https://, ssh:// or git@host:path); empty: off."),
    ("gitSyncRef", "string", "main", "Branch, tag or commit git-sync checks out."),
    ("gitSyncSubPath", "string", "", "Directory of the DAGs inside the repository (empty: its root)."),
    ("gitSyncPeriodSeconds", "integer", 60, "Seconds between git-sync pulls."),
    (
        "gitSyncCredentialsSecret",
        "string",
        "",
        "Existing Secret with GITSYNC_USERNAME and GITSYNC_PASSWORD (a token) for an HTTPS repository.",
    ),
    (
        "gitSyncSshKeySecret",
        "string",
        "",
        "Existing Secret with gitSshKey (private key) and known_hosts for an SSH repository.",
    ),
    ("gitSyncImage", "string", "registry.k8s.io/git-sync/git-sync:v4.4.2", "Image of the git-sync sidecar."),
    (
        "gitSyncCidrs",
        "array",
        [],
        "Where the git host is: egress of the git-sync sidecar (TCP 443 and 22); required with gitSyncRepo.",
    ),
    # --- housekeeping
    ("dbCleanEnabled", "boolean", False, "Run airflow db clean on a schedule (a CronJob)."),
    ("dbCleanSchedule", "string", "0 3 * * *", "Cron schedule (UTC) of airflow db clean."),
    ("dbCleanRetentionDays", "integer", 90, "Days of metadata history airflow db clean keeps."),
    # --- UI access
    (
        "authManager",
        "string",
        "simple",
        "Auth manager: simple (Airflow's default, one Admin: adminUser) or the class path of another (FAB, Keycloak).",
    ),
    (
        "adminUser",
        "string",
        "admin",
        "Admin user of the simple auth manager; its password is generated into the Secret (key admin-password).",
    ),
    ("uiHost", "string", "", "Host name of the UI: an Ingress (or HTTPRoute with uiGateway) to the api-server."),
    ("uiIngressClassName", "string", "", "IngressClass of the UI's Ingress (empty: the cluster default)."),
    ("uiTlsSecret", "string", "", "Existing TLS Secret of the UI's Ingress (kubernetes.io/tls); empty: plain HTTP."),
    (
        "uiGateway",
        "string",
        "",
        'Gateway an HTTPRoute for the UI attaches to, as "<namespace>/<name>" (instead of an Ingress; TLS on its '
        "listener).",
    ),
    # --- Airflow's own metrics
    (
        "airflowMetrics",
        "string",
        "off",
        "Airflow's own metrics: off or statsd (a StatsD exporter Prometheus scrapes, beside the executor's /metrics).",
    ),
    ("statsdImage", "string", "quay.io/prometheus/statsd-exporter:v0.28.0", "Image of the StatsD exporter."),
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
    "gitSyncRepo": _git_repo,
    "gitSyncRef": _git_ref,
    "gitSyncSubPath": _relative_path,
    "gitSyncPeriodSeconds": _range(5, 86400),
    "gitSyncCredentialsSecret": _optional_name,
    "gitSyncSshKeySecret": _optional_name,
    "gitSyncImage": config_keys.image,
    "gitSyncCidrs": lambda items: tuple(_cidr(item) for item in items),
    "dbCleanSchedule": _cron,
    "dbCleanRetentionDays": _range(1, 36500),
    "authManager": _auth_manager,
    "adminUser": _user_name,
    "uiHost": _optional_host,
    "uiIngressClassName": _optional_name,
    "uiTlsSecret": _optional_name,
    "uiGateway": _gateway,
    "airflowMetrics": _one_of("off", "statsd"),
    "statsdImage": config_keys.image,
}
