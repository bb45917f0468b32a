"""Stack keys -> :class:`~airflow_k8s.infra.config.pods.PodSettings` and :class:`ExistingSecrets`.

Every per-role key is an array of ``"<role>:<value>"`` strings (Pulumi project config has no
object type); a container or an affinity is the JSON of the Kubernetes object.  Each bad item is a
:class:`~airflow_k8s.infra.config.problem.Problem` naming the key and the item; containers are
checked strictly against the Kubernetes schema here, and hardened (or refused) when the platform
builds the pods (:mod:`airflow_k8s.infra.components.podoptions`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from airflow_k8s.executor.contract import config_keys, k8snames, quantity
from airflow_k8s.executor.contract.errors import ExecutorError, QuantityError
from airflow_k8s.executor.pods import schema
from airflow_k8s.infra.config import pods as p
from airflow_k8s.infra.config.problem import Problem

ROLE_NAMES = ", ".join([*p.ROLES, p.ALL])


def _split_role(key: str, item: str, problems: list[Problem], sep: str = ":") -> tuple[str, str] | None:
    role, found, rest = item.partition(sep)
    if not found or not rest:
        problems.append(Problem(key, item, f'expected "<role>{sep}<value>" (role: {ROLE_NAMES})'))
        return None
    if role not in p.ROLES and role != p.ALL:
        problems.append(Problem(key, item, f"unknown role {role!r} (roles: {ROLE_NAMES})"))
        return None
    return role, rest


def _json_object(key: str, item: str, text: str, problems: list[Problem]) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        problems.append(Problem(key, item, f"not JSON: {exc.msg} at character {exc.pos}"))
        return None
    if not isinstance(value, dict):
        problems.append(Problem(key, item, "expected a JSON object"))
        return None
    return value


def _container(key: str, item: str, text: str, problems: list[Problem]) -> dict[str, Any] | None:
    container = _json_object(key, item, text, problems)
    if container is None:
        return None
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "check"}, "spec": {"containers": [container]}}
    try:
        schema.validate_manifest(pod, where=f"{key} container")
        config_keys.image(str(container.get("image", "")))
    except (ExecutorError, ValueError) as exc:
        problems.append(Problem(key, item, str(exc)))
        return None
    return container


def _env(key: str, item: str, text: str, problems: list[Problem]) -> tuple[str, str] | None:
    name, found, value = text.partition("=")
    if not found or not k8snames.is_env_name(name):
        problems.append(Problem(key, item, 'expected "<role>:<NAME>=<value>" with a valid variable name'))
        return None
    return name, value


def _env_from(key: str, item: str, text: str, problems: list[Problem]) -> tuple[str, str] | None:
    kind, found, name = text.partition(":")
    if not found or kind not in p.ENV_FROM_KINDS or not k8snames.is_dns1123_subdomain(name):
        problems.append(Problem(key, item, 'expected "<role>:secret:<name>" or "<role>:configMap:<name>"'))
        return None
    return kind, name


def _volume(key: str, item: str, text: str, problems: list[Problem]) -> p.Volume | None:
    name, found, source = text.partition("=")
    kind, found_kind, what = source.partition(":")
    if not found or not found_kind or not k8snames.is_dns1123_label(name) or kind not in p.VOLUME_KINDS:
        problems.append(
            Problem(key, item, f'expected "<role>:<volume>=<kind>:<name or size>" with kind one of {p.VOLUME_KINDS}')
        )
        return None
    if kind == "emptyDir":
        try:
            quantity.memory(what)
        except QuantityError as exc:
            problems.append(Problem(key, item, f"emptyDir size: {exc}"))
            return None
    elif not k8snames.is_dns1123_subdomain(what):
        problems.append(Problem(key, item, f"{what!r} is not a valid object name"))
        return None
    return p.Volume(name, kind, what)


def _mount(key: str, item: str, text: str, problems: list[Problem]) -> p.VolumeMount | None:
    volume, found, path = text.partition("=")
    read_only = True
    if path.endswith(":rw"):
        path, read_only = path[: -len(":rw")], False
    if not found or not k8snames.is_dns1123_label(volume) or not path.startswith("/") or ":" in path:
        problems.append(Problem(key, item, 'expected "<role>:<volume>=<absolute path>[:rw]"'))
        return None
    return p.VolumeMount(volume, path, read_only)


def _toleration(key: str, item: str, text: str, problems: list[Problem]) -> p.Toleration | None:
    body, _, effect = text.partition(":")
    name, has_value, value = body.partition("=")
    if not k8snames.is_label_key(name) or (has_value and not k8snames.is_label_value(value)):
        problems.append(Problem(key, item, 'expected "<role>:<key>[=<value>][:<effect>]"'))
        return None
    if effect and effect not in p.EFFECTS:
        problems.append(Problem(key, item, f"effect must be one of {', '.join(p.EFFECTS)}"))
        return None
    return p.Toleration(name, effect or None, value if has_value else None)


def _node_label(key: str, item: str, text: str, problems: list[Problem]) -> tuple[str, str] | None:
    name, found, value = text.partition("=")
    if not found or not k8snames.is_label_key(name) or not k8snames.is_label_value(value):
        problems.append(Problem(key, item, 'expected "<role>:<label key>=<label value>"'))
        return None
    return name, value


def _affinity(key: str, item: str, text: str, problems: list[Problem]) -> dict[str, Any] | None:
    affinity = _json_object(key, item, text, problems)
    if affinity is None:
        return None
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "check"}, "spec": {"containers": [
        {"name": "c", "image": "c"}], "affinity": affinity}}  # fmt: skip
    try:
        schema.validate_manifest(pod, where=f"{key} affinity")
    except ExecutorError as exc:
        problems.append(Problem(key, item, str(exc)))
        return None
    return affinity


def _priority_class(key: str, item: str, text: str, problems: list[Problem]) -> str | None:
    if not k8snames.is_dns1123_subdomain(text):
        problems.append(Problem(key, item, "not a valid PriorityClass name"))
        return None
    if text.startswith("system-"):
        problems.append(Problem(key, item, "system-* PriorityClasses belong to the cluster's own components"))
        return None
    return text


_LISTS: dict[str, tuple[str, Callable[[str, str, str, list[Problem]], Any]]] = {
    "extraEnv": ("env", _env),
    "extraEnvFrom": ("env_from", _env_from),
    "extraVolumes": ("volumes", _volume),
    "extraVolumeMounts": ("volume_mounts", _mount),
    "extraContainers": ("sidecars", _container),
    "extraInitContainers": ("init_containers", _container),
    "nodeSelectors": ("node_selector", _node_label),
    "tolerations": ("tolerations", _toleration),
}
_SINGLE: dict[str, tuple[str, Callable[[str, str, str, list[Problem]], Any]]] = {
    "affinities": ("affinity", _affinity),
    "priorityClassNames": ("priority_class_name", _priority_class),
}


def pod_settings(values: Mapping[str, Any], problems: list[Problem]) -> p.PodSettings:
    collected: dict[str, dict[str, Any]] = {}
    for key, (attr, parse) in _LISTS.items():
        for item in values[key]:
            split = _split_role(key, item, problems)
            if split is None:
                continue
            parsed = parse(key, item, split[1], problems)
            if parsed is not None:
                collected.setdefault(split[0], {}).setdefault(attr, []).append(parsed)
    for key, (attr, parse) in _SINGLE.items():
        for item in values[key]:
            split = _split_role(key, item, problems)
            if split is None:
                continue
            if attr in collected.get(split[0], {}):
                problems.append(Problem(key, item, f"role {split[0]!r} is given more than once"))
                continue
            parsed = parse(key, item, split[1], problems)
            if parsed is not None:
                collected.setdefault(split[0], {})[attr] = parsed
    roles = tuple((role, _role_pods(fields)) for role, fields in collected.items())
    pull = []
    for name in values["imagePullSecrets"]:
        if k8snames.is_dns1123_subdomain(name):
            pull.append(name)
        else:
            problems.append(Problem("imagePullSecrets", name, "not a valid Secret name"))
    logs = p.LogsSpec(volume_size=values["logsVolumeSize"], retention_days=values["logRetentionDays"])
    return p.PodSettings(roles=roles, image_pull_secrets=tuple(pull), logs=logs)


def _role_pods(fields: Mapping[str, Any]) -> p.RolePods:
    values: dict[str, Any] = {k: (tuple(v) if isinstance(v, list) else v) for k, v in fields.items()}
    return p.RolePods(**values)


def existing_secrets(values: Mapping[str, Any], problems: list[Problem]) -> p.ExistingSecrets:
    refs = []
    for secret_key, (stack_key, default_key) in p.EXISTING_SECRET_KEYS.items():
        text = values[stack_key]
        if not text:
            continue
        name, found, key = text.partition(":")
        key = key if found else default_key
        if not k8snames.is_dns1123_subdomain(name) or not _secret_data_key(key):
            problems.append(Problem(stack_key, text, 'expected "<secret name>[:<key>]"'))
            continue
        refs.append((secret_key, p.SecretRef(name, key)))
    remote = values["remoteLogSecret"] or None
    if remote is not None and not k8snames.is_dns1123_subdomain(remote):
        problems.append(Problem("remoteLogSecret", remote, "not a valid Secret name"))
        remote = None
    return p.ExistingSecrets(tuple(refs), remote)


def _secret_data_key(key: str) -> bool:
    """A Secret data key: letters, digits, '-', '_', '.'."""
    return 0 < len(key) <= 253 and all(ch.isascii() and (ch.isalnum() or ch in "-_.") for ch in key)
