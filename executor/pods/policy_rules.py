"""Rules of the task pod policy for containers, volumes and security contexts.

Each rule takes the field's path, its value in the operator's pod (``MISSING`` when absent), its
value after the task's changes and a :class:`Ctx`, and returns one line per violation.  Only what
differs from the operator's pod is judged: an unchanged container, volume, env entry or mount is
the operator's.  A container or volume the task adds, or changes (lists are merged by name), is
judged as a whole.

* **containers** (``containers``, ``initContainers``): the template's cannot be removed; fields
  from :data:`~airflow_k8s.executor.contract.task_policy.CONTAINER_FIELDS` only (so no
  ``volumeDevices``); the base container's ``command``/``args`` are the executor's; images from
  allowed registries; ``env[].valueFrom`` only ``secretKeyRef`` / ``configMapKeyRef`` to allowed
  names, ``fieldRef`` and ``resourceFieldRef``; ``envFrom`` likewise; mounts only of the pod's
  volumes, claims read-only, no mount propagation.  Sidecars and init containers are allowed (a
  common Airflow pattern) under the same rules, and the final pod's PSS and hardening checks
  apply to them as to the base container.
* **volumes**: emptyDir, downwardAPI, configMap and secret (allowed names), projected (of those;
  never a ``serviceAccountToken``), persistentVolumeClaim (allowed claims, ``readOnly: true``).
  Everything else - hostPath, csi, ephemeral, image, NFS... - is refused.
* **security contexts** only get stricter: ``runAsNonRoot: true``, ``allowPrivilegeEscalation:
  false``, ``readOnlyRootFilesystem: true``, ``privileged: false``, seccomp ``RuntimeDefault``,
  more capabilities dropped, fewer added; ``runAsUser`` (not 0) and ``runAsGroup`` may change
  (they select the image's user; every volume a task can reach is read-only or its own).
  Groups, SELinux, AppArmor, sysctls, procMount and Windows options stay the operator's.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from airflow_k8s.executor.contract.parsers import image_repository
from airflow_k8s.executor.contract.policy_keys import registry_allows
from airflow_k8s.executor.contract.task_policy import CONTAINER_FIELDS
from airflow_k8s.executor.pods.allowances import Allowances
from airflow_k8s.executor.pods.templates import BASE_CONTAINER


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


@dataclass(frozen=True)
class Ctx:
    """What rules need besides the field: the allow-lists and the pod spec after the change."""

    allowed: Allowances
    spec: Mapping[str, Any]


Rule = Callable[[str, Any, Any, Ctx], list[str]]

_POD_STRICT: dict[str, object] = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
_CONTAINER_STRICT: dict[str, object] = {
    **_POD_STRICT,
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "privileged": False,
}
_VOLUME_REASONS = {
    "hostPath": "host paths expose the node's files",
    "csi": "inline CSI volumes (such as the Secrets Store driver) mount whatever the pod's identity can reach",
    "ephemeral": "it creates a PersistentVolumeClaim from any StorageClass; use emptyDir for scratch space",
}
_VOLUME_KINDS = "emptyDir, downwardAPI, configMap, secret, projected and the allowed claims (read-only)"


def show(value: object) -> str:
    """A value as an error message shows it: strings quoted, JSON otherwise, ``unset`` when absent."""
    if value is MISSING:
        return "unset"
    if isinstance(value, str):
        return repr(value)
    try:
        return json.dumps(value, sort_keys=True)
    except (TypeError, ValueError):
        return repr(value)


def mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def listed(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def objects(path: str, value: object, out: list[str]) -> Iterator[tuple[int, Mapping[str, Any]]]:
    """The object items of a list, by index; a ``null`` or scalar item is a violation in ``out``
    (the schema lets ``null`` through, the API server would reject it later)."""
    for index, item in enumerate(listed(value)):
        if isinstance(item, Mapping):
            yield index, item
        else:
            out.append(f"{path}[{index}]: must be an object, not {show(item)}")


def _listing(names: Collection[object]) -> str:
    return ", ".join(sorted(str(n) for n in names)) or "none"


def named(value: object) -> str | None:
    """``value`` if it is a name (a string), else None: never a key error on unhashable JSON."""
    return value if isinstance(value, str) else None


def secret_ref(path: str, name: object, ctx: Ctx) -> list[str]:
    if named(name) in ctx.allowed.secrets:
        return []
    return [
        f"{path}: Secret {show(name)} is not one a task may use (allowed: {_listing(ctx.allowed.secrets)}; "
        "task_allowed_secrets)"
    ]


def config_map_ref(path: str, name: object, ctx: Ctx) -> list[str]:
    if named(name) in ctx.allowed.config_maps:
        return []
    return [
        f"{path}: ConfigMap {show(name)} is not one a task may use (allowed: {_listing(ctx.allowed.config_maps)}; "
        "task_allowed_config_maps)"
    ]


def toleration_within(toleration: Mapping[str, Any], allowed: Mapping[str, Any]) -> bool:
    """Every taint ``toleration`` tolerates is tolerated by ``allowed`` (tolerationSeconds ignored:
    it only makes a pod leave sooner)."""
    effect = allowed.get("effect") or ""
    if effect and (toleration.get("effect") or "") != effect:
        return False
    key, allowed_key = toleration.get("key") or "", allowed.get("key") or ""
    if allowed.get("operator") == "Exists" and not allowed_key:
        return True
    if key != allowed_key:
        return False
    if allowed.get("operator") == "Exists":
        return True
    return toleration.get("operator", "Equal") == "Equal" and (toleration.get("value") or "") == (
        allowed.get("value") or ""
    )


# -- containers ------------------------------------------------------------------------------------
def containers_rule(*, init: bool) -> Rule:
    def rule(path: str, old: Any, new: Any, ctx: Ctx) -> list[str]:
        before = {named(mapping(c).get("name")): c for c in listed(old)}
        out = [] if new is MISSING or isinstance(new, list) else [f"{path}: must be a list"]
        seen = set()
        for index, container in objects(path, new, out):
            name = named(container.get("name"))
            seen.add(name)
            if before.get(name, MISSING) == container:
                continue
            where = f"{path}[{index}] ({name})"
            base = not init and name == BASE_CONTAINER
            out += _container(where, mapping(before.get(name)), container, ctx, base=base)
        out += [f"{path}: the template's container {show(n)} cannot be removed" for n in before if n not in seen]
        return out

    return rule


def _container(where: str, old: Mapping[str, Any], new: Mapping[str, Any], ctx: Ctx, *, base: bool) -> list[str]:
    out: list[str] = []
    for field in sorted(set(old) | set(new), key=str):
        before, after = old.get(field, MISSING), new.get(field, MISSING)
        if before == after:
            continue
        path = f"{where}.{field}"
        if field not in CONTAINER_FIELDS:
            out.append(f"{path}: not a container field a task may set")
        elif base and field in ("command", "args"):
            out.append(f"{path}: the executor runs the task's command here (as args); a task cannot replace it")
        elif field == "image":
            out += _image(path, after, ctx)
        elif field == "env":
            out += _env(path, before, after, ctx)
        elif field == "envFrom":
            out += _env_from(path, before, after, ctx)
        elif field == "volumeMounts":
            out += _mounts(path, before, after, ctx)
        elif field == "securityContext":
            out += security_context(path, before, after, _CONTAINER_STRICT)
    return out


def _image(path: str, value: object, ctx: Ctx) -> list[str]:
    if not isinstance(value, str):
        return [f"{path}: must be an image reference, not {show(value)}"]
    try:
        repository = image_repository(value)
    except ValueError as exc:
        return [f"{path}: {show(value)}: {exc}"]
    if any(registry_allows(entry, repository) for entry in ctx.allowed.registries):
        return []
    return [
        f"{path}: {show(value)} ({repository}) is not from a registry tasks may use "
        f"(allowed: {ctx.allowed.describe_registries()}; task_allowed_registries)"
    ]


def _env(path: str, old: object, new: object, ctx: Ctx) -> list[str]:
    before, out = listed(old), list[str]()
    for index, item in objects(path, new, out):
        if item in before:
            continue
        value_from = mapping(item.get("valueFrom"))
        for kind, ref in value_from.items():
            where = f"{path}[{index}] ({item.get('name')}).valueFrom.{kind}"
            if kind == "secretKeyRef":
                out += secret_ref(where, mapping(ref).get("name"), ctx)
            elif kind == "configMapKeyRef":
                out += config_map_ref(where, mapping(ref).get("name"), ctx)
            elif kind not in ("fieldRef", "resourceFieldRef"):
                out.append(f"{where}: not a source a task may use (secretKeyRef, configMapKeyRef, fieldRef)")
    return out


def _env_from(path: str, old: object, new: object, ctx: Ctx) -> list[str]:
    before, out = listed(old), list[str]()
    for index, item in objects(path, new, out):
        if item in before:
            continue
        for kind, ref in item.items():
            where = f"{path}[{index}].{kind}"
            if kind == "secretRef":
                out += secret_ref(where, mapping(ref).get("name"), ctx)
            elif kind == "configMapRef":
                out += config_map_ref(where, mapping(ref).get("name"), ctx)
    return out


def _mounts(path: str, old: object, new: object, ctx: Ctx) -> list[str]:
    before, out = listed(old), list[str]()
    volumes = {named(mapping(v).get("name")): mapping(v) for v in listed(ctx.spec.get("volumes"))}
    for index, mount in objects(path, new, out):
        if mount in before:
            continue
        where = f"{path}[{index}] ({mount.get('mountPath')})"
        volume = volumes.get(named(mount.get("name")))
        if volume is None:
            out.append(f"{where}: mounts volume {show(mount.get('name'))}, which the pod does not have")
        elif volume.get("persistentVolumeClaim") is not None and mount.get("readOnly") is not True:
            out.append(f"{where}: a task mounts claims read-only (readOnly: true)")
        if mount.get("mountPropagation") not in (None, "None"):
            out.append(f"{where}: mount propagation to or from the host is not allowed")
    return out


# -- security contexts -------------------------------------------------------------------------------
def pod_security_context(path: str, old: Any, new: Any, ctx: Ctx) -> list[str]:
    return security_context(path, old, new, _POD_STRICT)


def security_context(path: str, old: Any, new: Any, strict: Mapping[str, object]) -> list[str]:
    if new is not MISSING and not isinstance(new, Mapping):
        return [f"{path}: must be an object"]
    before, after = mapping(old), mapping(new)
    out = []
    for field in sorted(set(before) | set(after), key=str):
        was, now = before.get(field, MISSING), after.get(field, MISSING)
        if was == now or (field in strict and now == strict[field]):
            continue
        if _id_allowed(field, now):
            continue
        if field == "capabilities" and _fewer_capabilities(mapping(was), now):
            continue
        out.append(
            f"{path}.{field}: a task may only make the security context stricter "
            f"(the operator's pod has {show(was)}, the task sets {show(now)})"
        )
    return out


def _id_allowed(field: str, value: object) -> bool:
    """runAsUser (not root) and runAsGroup pick the image's user; PSS refuses user 0 anyway."""
    if field not in ("runAsUser", "runAsGroup") or not isinstance(value, int) or isinstance(value, bool):
        return False
    return value >= (1 if field == "runAsUser" else 0)


def _fewer_capabilities(before: Mapping[str, Any], after: object) -> bool:
    if not isinstance(after, Mapping) or set(after) - {"add", "drop"}:
        return False
    drop, add = set(map(str, listed(after.get("drop")))), set(map(str, listed(after.get("add"))))
    return drop >= set(map(str, listed(before.get("drop")))) and add <= set(map(str, listed(before.get("add"))))


# -- volumes --------------------------------------------------------------------------------------
def volumes(path: str, old: Any, new: Any, ctx: Ctx) -> list[str]:
    before = {named(mapping(v).get("name")): v for v in listed(old)}
    out = [] if new is MISSING or isinstance(new, list) else [f"{path}: must be a list"]
    seen = set()
    for index, volume in objects(path, new, out):
        seen.add(named(volume.get("name")))
        if before.get(named(volume.get("name")), MISSING) != volume:
            out += _volume(f"{path}[{index}] ({volume.get('name')})", volume, ctx)
    out += [f"{path}: the template's volume {show(n)} cannot be removed" for n in before if n not in seen]
    return out


def _volume(where: str, volume: Mapping[str, Any], ctx: Ctx) -> list[str]:
    out: list[str] = []
    for kind in sorted((k for k, v in volume.items() if k != "name" and v is not None), key=str):
        source = mapping(volume[kind])
        if kind in ("emptyDir", "downwardAPI"):
            continue
        if kind == "configMap":
            out += config_map_ref(f"{where}: configMap", source.get("name"), ctx)
        elif kind == "secret":
            out += secret_ref(f"{where}: secret", source.get("secretName"), ctx)
        elif kind == "persistentVolumeClaim":
            out += _claim(where, source, ctx)
        elif kind == "projected":
            for index, item in objects(f"{where}: projected.sources", source.get("sources"), out):
                out += _projected(f"{where}: projected.sources[{index}]", item, ctx)
        else:
            reason = _VOLUME_REASONS.get(kind, f"a task may add only {_VOLUME_KINDS}")
            out.append(f"{where}: {kind} volumes are not allowed: {reason}")
    return out


def _claim(where: str, source: Mapping[str, Any], ctx: Ctx) -> list[str]:
    name = source.get("claimName")
    if named(name) not in ctx.allowed.claims:
        return [
            f"{where}: persistentVolumeClaim {show(name)} is not allowed; a task may mount only the DAGs claim "
            f"read-only (allowed: {_listing(ctx.allowed.claims)}; task_allowed_claims)"
        ]
    if source.get("readOnly") is not True:
        return [f"{where}: persistentVolumeClaim {show(name)} must be read-only for a task (readOnly: true)"]
    return []


def _projected(where: str, source: Mapping[str, Any], ctx: Ctx) -> list[str]:
    out: list[str] = []
    for kind, value in source.items():
        if kind == "configMap":
            out += config_map_ref(where, mapping(value).get("name"), ctx)
        elif kind == "secret":
            out += secret_ref(where, mapping(value).get("name"), ctx)
        elif kind == "serviceAccountToken":
            out.append(f"{where}: serviceAccountToken: a task pod gets no service account token")
        elif kind != "downwardAPI":
            out.append(f"{where}: {kind} is not a projected source a task may use (configMap, secret, downwardAPI)")
    return out
