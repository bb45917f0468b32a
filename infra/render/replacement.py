"""Which field changes make ``pulumi up`` *replace* an object instead of updating it.

The render writes, into every manifest's header, the field paths whose change forces a
replacement - so ``render --diff`` can say "replace" exactly where ``pulumi preview`` would.  Two
sources decide, as in the engine:

1. **pulumi-kubernetes' Diff** (``provider/pkg/provider/diff.go``, ``forceNewProperties``,
   v4.x): ``metadata.name``/``namespace`` of every object; Deployment/DaemonSet/StatefulSet
   ``spec.selector``; Job ``spec.template``, ``spec.selector``, ``spec.completions``,
   ``spec.parallelism``; PVC ``spec.accessModes``, ``spec.storageClassName``, ``spec.selector``,
   ``spec.volumeName``; Service ``spec.clusterIP``; (Cluster)RoleBinding ``roleRef``;
   ResourceQuota ``spec.scopes``; Secret ``type``; ConfigMap ``data``/``binaryData`` unless the
   provider has ``enableConfigMapMutable``; Secret ``data``/``stringData`` unless it has
   ``enableSecretMutable`` (an ``immutable: true`` object is replaced either way).  The provider
   replaces a pinned-name object delete-first, since both cannot exist at once.
2. **resource options**: ``replaceOnChanges`` adds paths (PriorityClass ``value``); the engine
   then replaces create-first unless ``deleteBeforeReplace`` is set.  A ``protect``-ed resource
   is never replaced: ``pulumi up`` stops with an error instead.

Paths are written Pulumi's way, from the object root with a leading dot and ``[*]`` for list
items (``.spec.containers[*].image``); a change at or below a path forces the replacement.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

_SELECTOR = (".spec.selector",)
_FORCE_NEW: dict[tuple[str, str], tuple[str, ...]] = {
    ("apps", "Deployment"): _SELECTOR,
    ("apps", "DaemonSet"): _SELECTOR,
    ("apps", "StatefulSet"): (
        ".spec.podManagementPolicy", ".spec.revisionHistoryLimit", ".spec.selector", ".spec.serviceName",
        ".spec.volumeClaimTemplates",
    ),
    ("batch", "Job"): (".spec.completions", ".spec.parallelism", ".spec.selector", ".spec.template"),
    ("", "PersistentVolumeClaim"): (
        ".spec.accessModes", ".spec.selector", ".spec.storageClassName", ".spec.volumeName",
    ),
    ("", "ResourceQuota"): (".spec.scopes",),
    ("", "Service"): (".spec.clusterIP",),
    ("", "Secret"): (".type",),
    ("rbac.authorization.k8s.io", "RoleBinding"): (".roleRef",),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): (".roleRef",),
    ("storage.k8s.io", "StorageClass"): (".parameters", ".provisioner"),
}  # fmt: skip
METADATA = (".metadata.name", ".metadata.namespace")


@dataclass(frozen=True)
class ProviderFlags:
    """The provider settings that change its replace list."""

    config_map_mutable: bool = False
    secret_mutable: bool = False

    @classmethod
    def from_config(cls, config: Mapping[str, Any], prefix: str = "") -> ProviderFlags:
        def flag(key: str) -> bool:
            return str(config.get(f"{prefix}{key}", "")).strip().lower() == "true"

        return cls(flag("enableConfigMapMutable"), flag("enableSecretMutable"))


def provider_force_new(obj: Mapping[str, Any], flags: ProviderFlags) -> tuple[str, ...]:
    """The paths pulumi-kubernetes' Diff replaces ``obj`` on (module docstring, source 1)."""
    group = str(obj.get("apiVersion", "")).rpartition("/")[0]
    kind = str(obj.get("kind"))
    paths = list(METADATA) + list(_FORCE_NEW.get((group, kind), ()))
    immutable = obj.get("immutable") is True
    if (group, kind) == ("", "Secret") and (immutable or not flags.secret_mutable):
        paths += [".stringData", ".data"]
    if (group, kind) == ("", "ConfigMap") and (immutable or not flags.config_map_mutable):
        paths += [".binaryData", ".data"]
    return tuple(paths)


def option_paths(replace_on_changes: Iterable[str]) -> tuple[str, ...]:
    """``replaceOnChanges`` entries as paths (``"*"`` means every field)."""
    return tuple("" if path == "*" else "." + path.lstrip(".") for path in replace_on_changes)


def leaf_paths(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Paths (Pulumi style) at which ``old`` and ``new`` differ."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        out = []
        for key in sorted(set(old) | set(new), key=str):
            out += leaf_paths(old.get(key), new.get(key), f"{prefix}.{key}")
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        out = []
        for a, b in zip(old, new, strict=True):
            out += leaf_paths(a, b, f"{prefix}[*]")
        return out
    return [] if old == new else [prefix or "(root)"]


def _covers(rule: str, path: str) -> bool:
    return rule in ("", path) or path.startswith((rule + ".", rule + "["))


def replacing_changes(old: Any, new: Any, rules: Iterable[str]) -> list[str]:
    """The changed paths that force a replacement under ``rules`` (deduplicated, in order)."""
    rules = tuple(rules)
    found = [path for path in leaf_paths(old, new) if any(_covers(rule, path) for rule in rules)]
    return list(dict.fromkeys(found))
