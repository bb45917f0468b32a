"""What the official Helm chart runs besides the core: DAG delivery, housekeeping, UI access, metrics.

Pure Python, no Pulumi.  :class:`AddonsSpec` is a field of
:class:`~airflow_k8s.infra.config.args.PlatformConfig`; the components that act on it are in
:mod:`airflow_k8s.infra.components.addons`.

* :class:`GitSyncSpec` - a ``git-sync`` sidecar of the dag-processor keeps a git repository checked
  out *into the DAGs claim* (the chart's ``dags.gitSync`` with ``dags.persistence``): the
  dag-processor, the triggerer and every task pod keep reading the claim read-only, so no task pod
  ever holds the git credentials (they stay in the operator's Secret, read by the sidecar only).
* :class:`DbCleanSpec` - an ``airflow db clean`` CronJob (the chart's ``databaseCleanup``).
* :class:`AccessSpec` - the auth manager, the simple auth manager's first admin user, and the UI
  behind an Ingress (TLS from a Secret) or a Gateway API HTTPRoute.
* :class:`AirflowMetricsSpec` - Airflow's own metrics through a StatsD exporter (the chart's
  ``statsd``), beside the executor's ``/metrics``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from airflow_k8s.infra.config.args import ResourcesSpec

SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
GIT_SYNC_IMAGE = "registry.k8s.io/git-sync/git-sync:v4.4.2"
STATSD_IMAGE = "quay.io/prometheus/statsd-exporter:v0.28.0"
METRICS_MODES = ("off", "statsd")
GIT_SYNC_RESOURCES = ResourcesSpec("10m", "64Mi", "200m", "256Mi")
STATSD_RESOURCES = ResourcesSpec("50m", "64Mi", "200m", "128Mi")


@dataclass(frozen=True)
class GitSyncSpec:
    """``repo`` empty: off.  ``credentials_secret`` holds ``GITSYNC_USERNAME``/``GITSYNC_PASSWORD`` (HTTPS);
    ``ssh_key_secret`` holds ``gitSshKey`` and ``known_hosts`` (SSH).  ``cidrs``: where the git host is
    (the sidecar's egress, TCP 443 and 22)."""

    repo: str = ""
    ref: str = "main"
    sub_path: str = ""
    period_seconds: int = 60
    credentials_secret: str | None = None
    ssh_key_secret: str | None = None
    image: str = GIT_SYNC_IMAGE
    cidrs: tuple[str, ...] = ()
    resources: ResourcesSpec = GIT_SYNC_RESOURCES

    @property
    def enabled(self) -> bool:
        return bool(self.repo)


@dataclass(frozen=True)
class DbCleanSpec:
    """``airflow db clean`` every ``schedule`` (cron, UTC), keeping ``retention_days`` of history; it runs
    with the migration Job's image and resources."""

    enabled: bool = False
    schedule: str = "0 3 * * *"
    retention_days: int = 90


@dataclass(frozen=True)
class AccessSpec:
    """``auth_manager``: ``simple`` (Airflow's default, with ``admin_user`` as its one Admin; the password is
    generated once into the platform Secret, key ``admin-password``, or set with ``adminPassword``) or
    the class path of another auth manager (FAB, Keycloak...: users come from its own tooling).

    ``host``: the UI's host name; with it an Ingress (``ingress_class``, TLS from ``tls_secret``) or, when
    ``gateway`` (``"<namespace>/<name>"``) is set, an HTTPRoute attached to that Gateway (TLS is the
    Gateway listener's)."""

    auth_manager: str = "simple"
    admin_user: str = "admin"
    host: str = ""
    ingress_class: str = ""
    tls_secret: str = ""
    gateway: str = ""

    @property
    def simple(self) -> bool:
        return self.auth_manager in ("simple", SIMPLE_AUTH_MANAGER)

    @property
    def auth_manager_class(self) -> str:
        return SIMPLE_AUTH_MANAGER if self.simple else self.auth_manager

    @property
    def base_url(self) -> str:
        """The UI's URL through the Ingress/HTTPRoute, or "" without a host."""
        if not self.host:
            return ""
        return f"{'https' if self.tls_secret or self.gateway else 'http'}://{self.host}"


@dataclass(frozen=True)
class AirflowMetricsSpec:
    mode: str = "off"  # off | statsd
    statsd_image: str = STATSD_IMAGE
    resources: ResourcesSpec = STATSD_RESOURCES

    @property
    def statsd(self) -> bool:
        return self.mode == "statsd"


@dataclass(frozen=True)
class AddonsSpec:
    git_sync: GitSyncSpec = field(default_factory=GitSyncSpec)
    db_clean: DbCleanSpec = field(default_factory=DbCleanSpec)
    access: AccessSpec = field(default_factory=AccessSpec)
    metrics: AirflowMetricsSpec = field(default_factory=AirflowMetricsSpec)
