"""What the operator adds to a control-plane pod, applied to the spec the platform built - and hardened.

:func:`customize` takes a role's pod spec (:func:`~airflow_k8s.infra.components.airflowpod.control_plane_pod`)
and :class:`PodOptions`, and returns the spec with, in this order:

0. add-ons of one role: the dag-processor's ``git-sync`` sidecar (:mod:`.addons.gitsync`) and the
   api-server's ``admin-password`` init container (the simple auth manager's Admin, from the Secret);
1. the logs ``emptyDir`` sized by ``logsVolumeSize``, and on long-running roles a ``log-groomer``
   sidecar (``python -m airflow_k8s.executor groom-logs``: files older than ``logRetentionDays``,
   then the oldest down to 80% of the volume - :mod:`airflow_k8s.executor.reports.logfiles`) so
   the kubelet never evicts the pod for outgrowing it;
2. credentials from the operator's existing Secrets instead of the platform Secret
   (``existing*Secret``), and the remote-logging Secret as ``envFrom`` of the roles that read or
   write remote logs (``remoteLogSecret``);
3. extra env, envFrom, volumes and mounts (main container), sidecars and init containers, node
   selector, tolerations, affinity and PriorityClass (``extra*``, ``nodeSelectors``...).

Extra containers are **hardened, or refused** with an error naming the stack key: a container
that asks for less than the platform's pods have - ``privileged``, privilege escalation, running as
root, a writable root filesystem, added capabilities other than ``NET_BIND_SERVICE``, an
``Unconfined`` seccomp or AppArmor profile, host ports - is refused; one that says nothing gets the
platform's settings (non-root, read-only root, no privilege escalation, all capabilities
dropped).  Each must state requests and limits (the quota check counts them) and may mount only
its pod's volumes.  The whole pod is then checked against PSS restricted and the hardening policy
as before.  Task pods are never customized here.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_k8s.executor.contract.errors import PodPolicyError
from airflow_k8s.executor.reports.logfiles import probe_command
from airflow_k8s.infra.components.addons.gitsync import with_git_sync
from airflow_k8s.infra.components.airflowcfg import (
    AIRFLOW_KEYS,
    FORBIDDEN,
    LOGS_FOLDER,
    SIMPLE_AUTH_PASSWORDS,
    WRITE_PASSWORDS_SCRIPT,
)
from airflow_k8s.infra.components.secrets import ADMIN_PASSWORD_KEY
from airflow_k8s.infra.config.addons import GitSyncSpec
from airflow_k8s.infra.config.args import ResourcesSpec
from airflow_k8s.infra.config.pods import LogsSpec, RolePods, SecretRef

GROOMER = "log-groomer"
#: roles whose pods carry the log groomer (the Jobs end before their logs matter)
GROOMED = ("scheduler", "api-server", "dag-processor", "triggerer")
#: roles that read or write remote logs, and so get the remote-logging Secret's env
REMOTE_LOG_ROLES = ("scheduler", "api-server", "dag-processor", "triggerer")
PLATFORM_VOLUMES = ("airflow-cfg", "logs", "tmp", "dags", "pod-templates")
_SAFE_CAPABILITIES = ("NET_BIND_SERVICE",)  # the one PSS restricted allows adding
INIT_RESOURCES = ResourcesSpec("10m", "64Mi", "200m", "128Mi")


@dataclass(frozen=True)
class PodOptions:
    """The customization of one role (module docstring); ``role`` is the pods' component name."""

    role: str
    role_key: str  # its stack-key name (scheduler, apiServer...), used in error messages
    additions: RolePods = field(default_factory=RolePods)
    logs: LogsSpec = field(default_factory=LogsSpec)
    secret_refs: Mapping[str, SecretRef] = field(default_factory=dict)
    remote_log_secret: str | None = None
    git_sync: GitSyncSpec | None = None  # the dag-processor's git-sync sidecar (addons/gitsync.py)
    admin_user: str | None = None  # the simple auth manager's Admin, whose password the api-server gets
    platform_secret: str = ""  # the platform Secret's name (its admin-password key)


def groomer_container(image: str, pull_policy: str, logs: LogsSpec) -> dict[str, Any]:
    return {
        "name": GROOMER,
        "image": image,
        "imagePullPolicy": pull_policy,
        "command": ["python", "-m", "airflow_k8s.executor", "groom-logs", "--dir", LOGS_FOLDER],
        "args": [
            "--max-age-days",
            str(logs.retention_days),
            "--max-bytes",
            str(logs.max_bytes),
            "--every-minutes",
            str(logs.every_minutes),
        ],
        "env": [{"name": "PYTHONDONTWRITEBYTECODE", "value": "1"}, {"name": "PYTHONUNBUFFERED", "value": "1"}],
        "resources": logs.groomer.to_k8s(),
        **_groomer_probes(logs),
        "securityContext": _hardened_context({}),
        "volumeMounts": [{"name": "logs", "mountPath": LOGS_FOLDER}],
    }


def _groomer_probes(logs: LogsSpec) -> dict[str, Any]:
    """A pass must have finished within three intervals; liveness restarts a wedged groomer long before
    readiness would take the role's pod out of its Service."""
    check = {
        "exec": {"command": probe_command(LOGS_FOLDER, 3 * logs.every_minutes * 60)},  # no package import
        "periodSeconds": 300,
        "timeoutSeconds": 60,
    }
    return {"livenessProbe": {**check, "failureThreshold": 2}, "readinessProbe": {**check, "failureThreshold": 6}}


ADMIN_INIT = "admin-password"


def admin_password_init(image: str, pull_policy: str, user: str, secret: str) -> dict[str, Any]:
    """Writes the simple auth manager's passwords file (``/tmp``, the api-server's emptyDir) from the Secret.

    Airflow's simple auth manager opens that file read-write and generates (and logs) a password for
    any configured user it does not list; written first, the Admin's password is the Secret's, never
    a log line, and a Secret mount (read-only) would make the manager fail.
    """
    return {
        "name": ADMIN_INIT,
        "image": image,
        "imagePullPolicy": pull_policy,
        "command": ["python", "-c", WRITE_PASSWORDS_SCRIPT],
        "env": [
            {"name": "PASSWORDS_FILE", "value": SIMPLE_AUTH_PASSWORDS},
            {"name": "ADMIN_USER", "value": user},
            {"name": "ADMIN_PASSWORD", "valueFrom": {"secretKeyRef": {"name": secret, "key": ADMIN_PASSWORD_KEY}}},
            {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
        ],
        "resources": INIT_RESOURCES.to_k8s(),
        "securityContext": _hardened_context({}),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],  # noqa: S108 - the pod's emptyDir
    }


def _hardened_context(context: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(context)
    out.setdefault("allowPrivilegeEscalation", False)
    out.setdefault("readOnlyRootFilesystem", True)
    out.setdefault("runAsNonRoot", True)
    capabilities = dict(out.get("capabilities") or {})
    capabilities["drop"] = ["ALL"]
    out["capabilities"] = capabilities
    return out


def _refusals(container: Mapping[str, Any]) -> list[str]:
    context = container.get("securityContext") or {}
    out = []
    for setting, bad in (("privileged", True), ("allowPrivilegeEscalation", True), ("runAsNonRoot", False),
                         ("readOnlyRootFilesystem", False)):  # fmt: skip
        if context.get(setting) is bad:
            out.append(f"securityContext.{setting}: {json.dumps(bad)}")
    if context.get("runAsUser") == 0:
        out.append("securityContext.runAsUser: 0 (root)")
    added = [c for c in (context.get("capabilities") or {}).get("add") or [] if c not in _SAFE_CAPABILITIES]
    if added:
        out.append(f"securityContext.capabilities.add: {added}")
    for profile in ("seccompProfile", "appArmorProfile"):
        if (context.get(profile) or {}).get("type") == "Unconfined":
            out.append(f"securityContext.{profile}: Unconfined")
    if any("hostPort" in port for port in container.get("ports") or []):
        out.append("ports[].hostPort")
    resources = container.get("resources") or {}
    for kind in ("requests", "limits"):
        missing = [r for r in ("cpu", "memory") if r not in (resources.get(kind) or {})]
        if missing:
            out.append(f"resources.{kind} without {', '.join(missing)} (the quota check counts every container)")
    return out


def harden(container: Mapping[str, Any], *, key: str, role_key: str, volumes: set[str]) -> dict[str, Any]:
    """``container`` with the platform's security context filled in; PodPolicyError naming ``key`` if it
    asks for less, states no resources, or mounts a volume its pod does not have."""
    name = container.get("name", "?")
    problems = _refusals(container)
    unknown = sorted({m.get("name") for m in container.get("volumeMounts") or []} - volumes)
    if unknown:
        problems.append(f"volumeMounts of volumes the pod does not have: {unknown} (its volumes: {sorted(volumes)})")
    if problems:
        raise PodPolicyError(f"airflow-k8s:{key}: container {name!r} of {role_key} is refused: " + "; ".join(problems))
    out = copy.deepcopy(dict(container))
    out["securityContext"] = _hardened_context(container.get("securityContext") or {})
    return out


_OWNED_ENV = frozenset(f"AIRFLOW__{section.upper()}__{key.upper()}" for section, key in AIRFLOW_KEYS | FORBIDDEN) | {
    "AIRFLOW__CORE__EXECUTOR",
    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
    "AIRFLOW_HOME",
    "AIRFLOW_CONFIG",
}


def platform_setting(env_name: str) -> bool:
    """Would ``env_name`` override a setting the platform renders (airflow.cfg's, the executor's section)?"""
    name = env_name.upper()
    forms = {name, name.removesuffix("_CMD"), name.removesuffix("_SECRET")}  # Airflow's _CMD/_SECRET variants
    return bool(forms & _OWNED_ENV) or name.startswith(("AIRFLOW__KUBERNETES_EXECUTOR__", "AIRFLOW__KUBERNETES__"))


def _main(spec: dict[str, Any], role: str) -> dict[str, Any]:
    return next(c for c in spec["containers"] if c["name"] == role)


def _use_existing_secrets(spec: dict[str, Any], refs: Mapping[str, SecretRef]) -> None:
    for container in [*spec.get("initContainers", []), *spec["containers"]]:
        for entry in container.get("env") or []:
            ref = ((entry.get("valueFrom") or {}).get("secretKeyRef")) or {}
            existing = refs.get(ref.get("key", ""))
            if existing is not None:
                entry["valueFrom"]["secretKeyRef"] = {"name": existing.name, "key": existing.key}


def customize(spec: Mapping[str, Any], options: PodOptions, *, image: str, pull_policy: str) -> dict[str, Any]:
    """The customized pod spec (module docstring); raises PodPolicyError naming the stack key."""
    out = copy.deepcopy(dict(spec))
    for volume in out["volumes"]:
        if volume["name"] == "logs":
            volume["emptyDir"] = {"sizeLimit": options.logs.volume_size}
    if options.role in GROOMED:
        out["containers"].append(groomer_container(image, pull_policy, options.logs))
    if options.git_sync is not None and options.git_sync.enabled and options.role == "dag-processor":
        out = with_git_sync(out, options.git_sync)
    if options.admin_user and options.role == "api-server":
        out.setdefault("initContainers", []).append(
            admin_password_init(image, pull_policy, options.admin_user, options.platform_secret)
        )
    _use_existing_secrets(out, options.secret_refs)
    main = _main(out, options.role)
    if options.remote_log_secret and options.role in REMOTE_LOG_ROLES:
        main.setdefault("envFrom", []).append({"secretRef": {"name": options.remote_log_secret}})
    add = options.additions
    taken = {v["name"] for v in out["volumes"]}
    for volume in add.volumes:
        if volume.name in taken:
            raise PodPolicyError(
                f"airflow-k8s:extraVolumes: volume {volume.name!r} of {options.role_key} is already a volume of its "
                f"pod (taken: {sorted(taken)})"
            )
        taken.add(volume.name)
        out["volumes"].append(volume.to_k8s())
    extra_names = {v.name for v in add.volumes}
    for mount in add.volume_mounts:
        if mount.volume not in extra_names:
            raise PodPolicyError(
                f"airflow-k8s:extraVolumeMounts: {mount.volume!r} is not an extra volume of {options.role_key} "
                f"(extraVolumes: {sorted(extra_names)})"
            )
        main.setdefault("volumeMounts", []).append(mount.to_k8s())
    reserved = {e["name"] for e in main.get("env") or []}
    for name, value in add.env:
        if platform_setting(name):
            raise PodPolicyError(
                f"airflow-k8s:extraEnv: {name} of {options.role_key} would override an airflow.cfg setting the "
                "platform owns (set it with its stack key instead)"
            )
        if name in reserved:
            raise PodPolicyError(
                f"airflow-k8s:extraEnv: {name} of {options.role_key} is set by the platform "
                f"(it sets {sorted(reserved)})"
            )
        main.setdefault("env", []).append({"name": name, "value": value})
    for kind, name in add.env_from:
        main.setdefault("envFrom", []).append({f"{kind}Ref": {"name": name}})
    taken_containers = {c["name"] for c in [*out["containers"], *out.get("initContainers", [])]}
    for key, target, items in (("extraContainers", "containers", add.sidecars),
                               ("extraInitContainers", "initContainers", add.init_containers)):  # fmt: skip
        for container in items:
            if container.get("name") in taken_containers:
                raise PodPolicyError(
                    f"airflow-k8s:{key}: container name {container.get('name')!r} of {options.role_key} is taken "
                    f"(by {sorted(taken_containers)})"
                )
            taken_containers.add(str(container.get("name")))
            out.setdefault(target, []).append(harden(container, key=key, role_key=options.role_key, volumes=taken))
    if add.node_selector:
        out["nodeSelector"] = dict(add.node_selector)
    if add.tolerations:
        out["tolerations"] = [t.to_k8s() for t in add.tolerations]
    if add.affinity is not None:
        out["affinity"] = copy.deepcopy(add.affinity)
    if add.priority_class_name:
        out["priorityClassName"] = add.priority_class_name
    return out
