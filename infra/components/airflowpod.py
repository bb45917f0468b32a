"""The pod every control-plane role runs: one image, hardened, credentials only where needed.

:func:`control_plane_pod` builds the pod spec of a :class:`Role` (scheduler, api-server,
dag-processor, triggerer, migration Job).  What every role shares, and why:

* the platform image (``airflowImage``: apache/airflow 3.x + this package) running as
  ``runAsUser``/``runAsGroup`` (default the official image's ``airflow`` user, UID 50000, and
  group 0, which owns its files) with PSS
  restricted, a read-only root filesystem, no privilege escalation, all capabilities dropped,
  RuntimeDefault seccomp, requests and limits from the role's stack keys;
* ``args`` only (the image's entrypoint - tini and Airflow's own - stays in charge);
* the layout never left to the image: ``AIRFLOW_HOME`` and ``AIRFLOW_CONFIG`` are set explicitly
  to where the platform mounts airflow.cfg (an image built with another ``AIRFLOW_HOME`` would
  otherwise run with default settings; the image preflight reports such images).  ``HOME`` is
  left to the image: the official image keeps its Python packages in ``~/.local`` (the user
  site), which a different ``HOME`` would hide; ``PYTHONPATH`` is not needed (Airflow puts the
  DAGs, plugins and config folders on ``sys.path`` itself);
* airflow.cfg mounted read-only with ``subPath`` at ``$AIRFLOW_HOME/airflow.cfg`` (a subPath
  mount never sees ConfigMap updates: the ``airflow-k8s/config-sha256`` pod annotation rolls the
  pods instead), emptyDirs for the only paths Airflow writes (``/opt/airflow/logs``, ``/tmp``);
* secrets as env vars from the platform Secret, only the keys the role needs
  (:data:`airflow_k8s.infra.components.secrets.ENV_OF_KEY`), never a file in a ConfigMap;
* no service-account token unless the role talks to the Kubernetes API (scheduler: creates task
  pods; api-server: reads running task pods' logs) - ``automountServiceAccountToken`` is set
  explicitly either way;
* the control plane's PriorityClass (:mod:`airflow_k8s.infra.components.priority`): no task pod
  can preempt it;
* long-running roles wait for the schema first: an init container runs ``airflow db
  check-migrations``, so a pod restarted outside Pulumi (node drain, manual rollout) never runs
  against a database the migration Job has not upgraded yet.

The result is checked against PSS restricted and the platform hardening policy before it is used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from airflow_k8s.executor.contract.errors import PodPolicyError
from airflow_k8s.executor.pods import security
from airflow_k8s.infra.components.airflowcfg import AIRFLOW_HOME, DAGS_FOLDER, LOGS_FOLDER
from airflow_k8s.infra.components.configmaps import AIRFLOW_CFG_KEY
from airflow_k8s.infra.components.podoptions import PodOptions, customize
from airflow_k8s.infra.components.secrets import ENV_OF_KEY
from airflow_k8s.infra.config.args import ResourcesSpec

AIRFLOW_CFG_PATH = f"{AIRFLOW_HOME}/airflow.cfg"
RUN_AS_USER = 50000
RUN_AS_GROUP = 0
MIGRATION_WAIT_SECONDS = 600


@dataclass(frozen=True)
class Role:
    """The static facts of one control-plane role."""

    name: str  # the component label and object name suffix: scheduler, api-server...
    args: tuple[str, ...]
    secret_keys: tuple[str, ...]
    token: bool = False
    dags: bool = False
    templates: bool = False
    ports: tuple[tuple[str, int], ...] = ()
    probes: dict[str, dict[str, Any]] = field(default_factory=dict)
    wait_for_migrations: bool = True
    termination_grace_seconds: int = 60


@dataclass(frozen=True)
class PodWiring:
    """Resolved names a control-plane pod refers to."""

    service_account: str
    airflow_config_map: str
    templates_config_map: str
    dags_claim: str
    secret: str
    template_dir: str
    priority_class: str = ""  # the control plane's PriorityClass (priority.py); empty: none


@dataclass(frozen=True)
class Runtime:
    image: str
    image_pull_policy: str
    resources: ResourcesSpec
    run_as_user: int = RUN_AS_USER  # stack key runAsUser
    run_as_group: int = RUN_AS_GROUP  # stack key runAsGroup


def layout_env() -> list[dict[str, Any]]:
    """Where Airflow finds its home and airflow.cfg: set explicitly, never the image's."""
    return [
        {"name": "AIRFLOW_HOME", "value": AIRFLOW_HOME},
        {"name": "AIRFLOW_CONFIG", "value": AIRFLOW_CFG_PATH},
    ]


def _env(role: Role, secret: str) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        *layout_env(),
        {"name": "PYTHONUNBUFFERED", "value": "1"},
        {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
    ]
    env += [
        {"name": ENV_OF_KEY[key], "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}
        for key in role.secret_keys
    ]
    return env


def _security_context() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }


def _mounts(role: Role, wiring: PodWiring) -> list[dict[str, Any]]:
    mounts: list[dict[str, Any]] = [
        {"name": "airflow-cfg", "mountPath": AIRFLOW_CFG_PATH, "subPath": AIRFLOW_CFG_KEY, "readOnly": True},
        {"name": "logs", "mountPath": LOGS_FOLDER},
        {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - an emptyDir, private to the pod
    ]
    if role.dags:
        mounts.append({"name": "dags", "mountPath": DAGS_FOLDER, "readOnly": True})
    if role.templates:
        mounts.append({"name": "pod-templates", "mountPath": wiring.template_dir, "readOnly": True})
    return mounts


def _volumes(role: Role, wiring: PodWiring) -> list[dict[str, Any]]:
    volumes: list[dict[str, Any]] = [
        {"name": "airflow-cfg", "configMap": {"name": wiring.airflow_config_map}},
        {"name": "logs", "emptyDir": {"sizeLimit": "1Gi"}},
        {"name": "tmp", "emptyDir": {"sizeLimit": "512Mi"}},
    ]
    if role.dags:
        volumes.append({"name": "dags", "persistentVolumeClaim": {"claimName": wiring.dags_claim, "readOnly": True}})
    if role.templates:
        volumes.append({"name": "pod-templates", "configMap": {"name": wiring.templates_config_map}})
    return volumes


def control_plane_pod(
    role: Role, runtime: Runtime, wiring: PodWiring, options: PodOptions | None = None
) -> dict[str, Any]:
    """The pod spec of ``role`` (module docstring), with the operator's ``options``
    (:mod:`airflow_k8s.infra.components.podoptions`) applied last."""
    spec = _base_pod(role, runtime, wiring)
    if options is None:
        return spec
    return customize(spec, options, image=runtime.image, pull_policy=runtime.image_pull_policy)


def _base_pod(role: Role, runtime: Runtime, wiring: PodWiring) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": role.name,
        "image": runtime.image,
        "imagePullPolicy": runtime.image_pull_policy,
        "args": list(role.args),
        "env": _env(role, wiring.secret),
        "resources": runtime.resources.to_k8s(),
        "securityContext": _security_context(),
        "volumeMounts": _mounts(role, wiring),
    }
    if role.ports:
        container["ports"] = [{"name": name, "containerPort": port, "protocol": "TCP"} for name, port in role.ports]
    container.update(role.probes)
    spec: dict[str, Any] = {
        "serviceAccountName": wiring.service_account,
        "automountServiceAccountToken": role.token,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": role.termination_grace_seconds,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": runtime.run_as_user,
            "runAsGroup": runtime.run_as_group,
            "fsGroup": runtime.run_as_group,
            "fsGroupChangePolicy": "OnRootMismatch",
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": _volumes(role, wiring),
    }
    if wiring.priority_class:
        spec["priorityClassName"] = wiring.priority_class
    if role.wait_for_migrations:
        spec["initContainers"] = [
            {
                "name": "wait-for-migrations",
                "image": runtime.image,
                "imagePullPolicy": runtime.image_pull_policy,
                "args": ["airflow", "db", "check-migrations", "--migration-wait-timeout", str(MIGRATION_WAIT_SECONDS)],
                "env": _env(Role(role.name, (), ("database-url",)), wiring.secret),
                "resources": runtime.resources.to_k8s(),
                "securityContext": _security_context(),
                "volumeMounts": _mounts(Role(role.name, (), ()), wiring),
            }
        ]
    return spec


def check_pod(kind: str, name: str, obj: dict[str, Any], *, token: bool) -> dict[str, Any]:
    """``obj`` if it passes PSS restricted and the hardening policy, else :class:`PodPolicyError`."""
    violations = security.restricted_violations(obj) + security.hardening_violations(obj, allow_token=token)
    if violations:
        lines = "\n".join(f"  - {v}" for v in violations)
        raise PodPolicyError(f"{kind} {name}: policy violations:\n{lines}")
    return obj
