"""What the operator adds to the platform's own pods, and the Secrets and images they bring.

The official Helm chart lets each component take extra env, envFrom, volumes, volumeMounts,
sidecars, init containers, a nodeSelector, affinity, tolerations and a priorityClassName, existing
Secrets instead of chart-made ones, and ``imagePullSecrets``; this is the same, typed.  Pure
Python, no Pulumi: :class:`PodSettings` and :class:`ExistingSecrets` are fields of
:class:`~airflow_k8s.infra.config.args.PlatformConfig`, built from stack keys by
:mod:`airflow_k8s.infra.config.pods_parse` or directly by a consumer, and applied by
:mod:`airflow_k8s.infra.components.podoptions` (which hardens or refuses extra containers).

Roles are named as in the resource stack keys (``scheduler``, ``apiServer``, ``dagProcessor``,
``triggerer``, ``migration``) plus ``dbClean`` (the ``airflow db clean`` CronJob); ``all`` applies to
every one of them.  Task pods are never affected: they are shaped by the pod templates and the
executor's task policy.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from airflow_k8s.executor.contract import quantity
from airflow_k8s.infra.config.args import ResourcesSpec

#: stack-key role -> the component label / object-name suffix of its pods
ROLES = {
    "scheduler": "scheduler",
    "apiServer": "api-server",
    "dagProcessor": "dag-processor",
    "triggerer": "triggerer",
    "migration": "db-migrate",
    "dbClean": "db-clean",
}
ALL = "all"
VOLUME_KINDS = ("configMap", "secret", "emptyDir", "persistentVolumeClaim")
ENV_FROM_KINDS = ("configMap", "secret")
EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
GROOMER_RESOURCES = ResourcesSpec("10m", "64Mi", "100m", "128Mi")  # a Python loop over a directory


@dataclass(frozen=True)
class Toleration:
    key: str
    effect: str | None = None
    value: str | None = None  # None: operator Exists

    def to_k8s(self) -> dict[str, str]:
        out = {"key": self.key, "operator": "Exists" if self.value is None else "Equal"}
        if self.value is not None:
            out["value"] = self.value
        if self.effect is not None:
            out["effect"] = self.effect
        return out


@dataclass(frozen=True)
class Volume:
    name: str
    kind: str  # one of VOLUME_KINDS
    source: str  # ConfigMap / Secret / claim name, or the emptyDir sizeLimit

    def to_k8s(self) -> dict[str, Any]:
        if self.kind == "emptyDir":
            return {"name": self.name, "emptyDir": {"sizeLimit": self.source}}
        if self.kind == "persistentVolumeClaim":
            return {"name": self.name, "persistentVolumeClaim": {"claimName": self.source}}
        field_name = "secretName" if self.kind == "secret" else "name"
        return {"name": self.name, self.kind: {field_name: self.source}}


@dataclass(frozen=True)
class VolumeMount:
    volume: str
    path: str
    read_only: bool = True

    def to_k8s(self) -> dict[str, Any]:
        return {"name": self.volume, "mountPath": self.path, "readOnly": self.read_only}


@dataclass(frozen=True)
class RolePods:
    """Additions to one role's pods.  Containers and affinity are Kubernetes objects (camelCase dicts)."""

    env: tuple[tuple[str, str], ...] = ()
    env_from: tuple[tuple[str, str], ...] = ()  # (configMap | secret, name)
    volumes: tuple[Volume, ...] = ()
    volume_mounts: tuple[VolumeMount, ...] = ()
    sidecars: tuple[dict[str, Any], ...] = ()
    init_containers: tuple[dict[str, Any], ...] = ()
    node_selector: tuple[tuple[str, str], ...] = ()
    tolerations: tuple[Toleration, ...] = ()
    affinity: dict[str, Any] | None = None
    priority_class_name: str | None = None

    def merged_with(self, specific: RolePods) -> RolePods:
        """``self`` (the ``all`` entry) then ``specific``: lists add up, single values of ``specific`` win."""
        return RolePods(
            env=self.env + specific.env,
            env_from=self.env_from + specific.env_from,
            volumes=self.volumes + specific.volumes,
            volume_mounts=self.volume_mounts + specific.volume_mounts,
            sidecars=self.sidecars + specific.sidecars,
            init_containers=self.init_containers + specific.init_containers,
            node_selector=tuple({**dict(self.node_selector), **dict(specific.node_selector)}.items()),
            tolerations=self.tolerations + specific.tolerations,
            affinity=specific.affinity if specific.affinity is not None else self.affinity,
            priority_class_name=specific.priority_class_name or self.priority_class_name,
        )


@dataclass(frozen=True)
class LogsSpec:
    """The control plane's logs ``emptyDir`` and its retention (the ``log-groomer`` sidecar).

    ``max_bytes``: the groomer keeps the files under 80% of the volume, oldest first, so the
    kubelet never evicts a pod for outgrowing its ``sizeLimit``; files older than
    ``retention_days`` go anyway.
    """

    volume_size: str = "1Gi"
    retention_days: int = 15
    every_minutes: int = 15
    groomer: ResourcesSpec = GROOMER_RESOURCES

    @property
    def max_bytes(self) -> int:
        return int(quantity.memory(self.volume_size) * Decimal(8) / Decimal(10))


@dataclass(frozen=True)
class PodSettings:
    """Per-role additions, keyed by stack-key role (:data:`ROLES`) or ``all``; logs; pull secrets.

    ``image_pull_secrets`` go on every ServiceAccount of the platform (the worker's included), so
    control-plane and task pods pull private images without a pod template naming a Secret.
    """

    roles: tuple[tuple[str, RolePods], ...] = ()
    image_pull_secrets: tuple[str, ...] = ()
    logs: LogsSpec = field(default_factory=LogsSpec)

    def for_role(self, role: str) -> RolePods:
        entries = dict(self.roles)
        return entries.get(ALL, RolePods()).merged_with(entries.get(role, RolePods()))

    def with_role(self, role: str, pods: RolePods) -> PodSettings:
        return replace(self, roles=(*((r, p) for r, p in self.roles if r != role), (role, pods)))


@dataclass(frozen=True)
class SecretRef:
    """A key of a Secret the operator manages (created and rotated outside the platform)."""

    name: str
    key: str


#: platform Secret key -> (stack key of its existing-Secret reference, the key it defaults to)
EXISTING_SECRET_KEYS = {
    "database-url": ("existingDatabaseUrlSecret", "connection"),
    "fernet-key": ("existingFernetKeySecret", "fernet-key"),
    "jwt-secret": ("existingJwtSecretSecret", "jwt-secret"),
    "api-secret-key": ("existingApiSecretKeySecret", "api-secret-key"),
}


@dataclass(frozen=True)
class ExistingSecrets:
    """Secrets brought by the operator instead of the platform Secret's keys.

    ``refs``: platform key -> where the value lives instead (that key is then neither set nor
    generated in the platform Secret).  ``remote_logging``: a Secret whose keys become env vars
    (``envFrom``) of the roles that read or write remote logs - e.g. ``AIRFLOW_CONN_AWS_LOGS``;
    task pods get the connection through the Execution API, never the Secret.
    """

    refs: tuple[tuple[str, SecretRef], ...] = ()
    remote_logging: str | None = None

    def ref(self, key: str) -> SecretRef | None:
        return dict(self.refs).get(key)
