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

3. **the live object**, for a Job annotated ``pulumi.com/replaceUnready: "true"``: the provider's
   Diff (pulumi-kubernetes >= 3.1, ``provider.go``) reads the live Job and, when it is not
   *ready* by the Job await's own rule (``cloud-ready-checks`` ``job.NewJobChecker``:
   ``status.startTime`` set and condition ``Complete=True``, not ``Failed=True`` with reason
   ``BackoffLimitExceeded``/``DeadlineExceeded``), replaces it even though no input changed -
   delete-first, as the name is pinned.  Without it a failed Job stays failed: the engine sends
   an empty update, the await sees ``Failed=True`` again, and everything that depends on the
   Job is never created.  A render cannot see the live Job, so :func:`unready_replacement`
   takes its status as an argument, and ``render --diff`` says which objects carry the rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from airflow_k8s.infra.components.k8s import REPLACE_UNREADY

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
# The Job await fails at once on these Failed reasons (cloud-ready-checks, collectJobConditionErrors).
FATAL_JOB_REASONS = ("BackoffLimitExceeded", "DeadlineExceeded")


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


def replaces_when_unready(obj: Mapping[str, Any]) -> bool:
    """Does ``obj`` carry ``pulumi.com/replaceUnready: "true"`` on a kind the provider honours it for?

    The provider reads the annotation on Jobs only (any other kind gets a warning and nothing else).
    """
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    return obj.get("kind") == "Job" and str(annotations.get(REPLACE_UNREADY, "")).lower() == "true"


def _conditions(live: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    status = live.get("status") or {}
    return {str(c.get("type")): c for c in status.get("conditions") or [] if isinstance(c, Mapping)}


def job_ready(live: Mapping[str, Any]) -> bool:
    """The Job await's readiness (module docstring, source 3): started and Complete, not failed for good."""
    status = live.get("status") or {}
    conditions = _conditions(live)
    failed = conditions.get("Failed") or {}
    if failed.get("status") == "True" and failed.get("reason") in FATAL_JOB_REASONS:
        return False
    complete = conditions.get("Complete") or {}
    return bool(status.get("startTime")) and complete.get("status") == "True"


def unready_replacement(obj: Mapping[str, Any], live: Mapping[str, Any] | None) -> str | None:
    """Why ``pulumi up`` replaces ``obj`` given its ``live`` state (None: not in the cluster), or None."""
    if live is None or not replaces_when_unready(obj) or job_ready(live):
        return None
    conditions = _conditions(live)
    failed = conditions.get("Failed") or {}
    if failed.get("status") == "True":
        state = f"failed ({failed.get('reason') or 'Failed'})"
    elif not (live.get("status") or {}).get("startTime"):
        state = "not started"
    else:
        state = "not complete"
    return f"the live Job is {state} and carries {REPLACE_UNREADY}: replaced, delete-first, so it runs again"
