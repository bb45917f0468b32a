"""What the kubelet works out before it starts a container: which container, its argv and its environment.

Used by the process kubelet mode (:mod:`.processes`).  Kubernetes semantics:

* **argv**: ``command`` replaces the image's entrypoint and ``args`` its CMD; the fake does not know the image, so
  ``command + args`` runs, or ``args`` alone when there is no ``command`` (its first word is then the program).
  ``$(VAR)`` in them expands to the container's variables, ``$$`` is a literal ``$``, unknown references stay.
* **environment**, later sources overriding earlier ones: the mode's base environment (standing in for the
  image's ``ENV``), ``HOSTNAME`` (the pod name), ``envFrom`` (ConfigMaps/Secrets, with ``prefix``), then ``env``:
  literal values (with ``$(VAR)`` expansion over what is defined so far), ``fieldRef`` (``metadata.name``,
  ``metadata.namespace``, ``metadata.uid``, ``metadata.labels['k']``, ``metadata.annotations['k']``,
  ``spec.nodeName``, ``spec.serviceAccountName``, ``status.hostIP``, ``status.podIP``), ``secretKeyRef`` and
  ``configMapKeyRef``.  A missing Secret/ConfigMap or key that is not ``optional`` raises :class:`ConfigError`
  with the kubelet's message (the container then waits in ``CreateContainerConfigError``).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping
from typing import Any

Lookup = Callable[[str, str, str], dict[str, Any] | None]  # (kind, namespace, name) -> stored object
_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")
_KINDS = {"secretKeyRef": ("secrets", "Secret", "secret"), "configMapKeyRef": ("configmaps", "ConfigMap", "configmap")}
_FROM_KINDS = {"secretRef": _KINDS["secretKeyRef"], "configMapRef": _KINDS["configMapKeyRef"]}


class ConfigError(Exception):
    """The container cannot be configured (``CreateContainerConfigError``); the message is the kubelet's."""


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes ``$(VAR)`` expansion: defined names are replaced, ``$$`` escapes, anything else is left as is."""

    def replace(match: re.Match[str]) -> str:
        if match[0] == "$$":
            return "$"
        return env.get(match[1], match[0])

    return _REFERENCE.sub(replace, text)


def main_container(pod: Mapping[str, Any]) -> dict[str, Any] | None:
    """The container named ``base``, or the pod's only container (None: neither exists)."""
    containers = (pod.get("spec") or {}).get("containers") or []
    named = [c for c in containers if c.get("name") == "base"]
    if named:
        return named[0]
    return containers[0] if len(containers) == 1 else None


def argv(container: Mapping[str, Any], env: Mapping[str, str]) -> list[str]:
    words = [*(container.get("command") or []), *(container.get("args") or [])]
    return [expand(str(word), env) for word in words]


def _data(obj: Mapping[str, Any], kind: str) -> dict[str, str]:
    if kind == "secrets":
        return {k: base64.b64decode(v).decode("utf-8", "replace") for k, v in (obj.get("data") or {}).items()}
    binary = {k: base64.b64decode(v).decode("utf-8", "replace") for k, v in (obj.get("binaryData") or {}).items()}
    return {**binary, **{k: str(v) for k, v in (obj.get("data") or {}).items()}}


def _field(pod: Mapping[str, Any], path: str) -> str:
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.hostIP": status.get("hostIP"),
        "status.podIP": status.get("podIP"),
    }
    if path in simple:
        return str(simple[path] or "")
    match = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
    if match:
        return str((meta.get(match[1]) or {}).get(match[2], ""))
    raise ConfigError(f'unsupported fieldPath: "{path}"')


def _key_ref(namespace: str, source: str, ref: Mapping[str, Any], lookup: Lookup) -> str | None:
    kind, kind_name, noun = _KINDS[source]
    name, key = str(ref.get("name", "")), str(ref.get("key", ""))
    obj = lookup(kind, namespace, name)
    if obj is None:
        if ref.get("optional"):
            return None
        raise ConfigError(f'{noun} "{name}" not found')
    data = _data(obj, kind)
    if key not in data:
        if ref.get("optional"):
            return None
        raise ConfigError(f"couldn't find key {key} in {kind_name} {namespace}/{name}")
    return data[key]


def environment(
    pod: Mapping[str, Any], container: Mapping[str, Any], lookup: Lookup, base: Mapping[str, str]
) -> dict[str, str]:
    """The process environment for ``container`` (see the module docstring); raises :class:`ConfigError`."""
    meta = pod.get("metadata") or {}
    namespace = str(meta.get("namespace", ""))
    own: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        for ref_kind, (kind, _, noun) in _FROM_KINDS.items():
            ref = source.get(ref_kind)
            if not isinstance(ref, dict):
                continue
            obj = lookup(kind, namespace, str(ref.get("name", "")))
            if obj is None:
                if ref.get("optional"):
                    continue
                raise ConfigError(f'{noun} "{ref.get("name", "")}" not found')
            prefix = str(source.get("prefix") or "")
            own.update({prefix + k: v for k, v in _data(obj, kind).items()})
    for var in container.get("env") or []:
        name = str(var.get("name", ""))
        value_from = var.get("valueFrom") or {}
        if "value" in var or not value_from:
            own[name] = expand(str(var.get("value") or ""), own)
        elif "fieldRef" in value_from:
            own[name] = _field(pod, str(value_from["fieldRef"].get("fieldPath", "")))
        else:
            source = next((s for s in _KINDS if s in value_from), None)
            if source is None:
                raise ConfigError(f"unsupported valueFrom for {name}: {sorted(value_from)}")
            value = _key_ref(namespace, source, value_from[source], lookup)
            if value is not None:
                own[name] = value
    return {**base, "HOSTNAME": str(meta.get("name", "")), **own}
