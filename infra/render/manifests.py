"""From recorded resources to reviewable manifests: normalized, redacted, stably named.

* Numbers: the mock round trip through protobuf turns every number into a float
  (``replicas: 1.0``); whole-number floats become ints again.
* Secrets: ``data``/``stringData`` values of a Secret become :data:`REDACTED`.  A secret value
  anywhere else (a ConfigMap, an env ``value``, an annotation) is a leak: it is redacted too and
  reported in :attr:`Manifest.leaks`, which the render check turns into a failure.
* File names: ``<kind>-<namespace>-<name>.yaml``, lowercase, ``cluster`` for cluster-scoped
  objects; the kind is the Pulumi type's (``nodepatch`` for a Node patch), so one object always
  lands in the same file and a diff between two renders is per object.
* Header comments: the Pulumi type and name, the fields whose change makes ``pulumi up`` replace
  the object (``# pulumi-replace-on:``, :mod:`airflow_k8s.infra.render.replacement`) and the
  lifecycle options in force (``# pulumi-options: protect retainOnDelete deleteBeforeReplace``),
  which ``render --diff`` reads to tell an update from a replacement.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from airflow_k8s.infra.render import yamlio
from airflow_k8s.infra.render.offline import Evaluation, Recorded, is_secret_value, unwrap, walk_secrets
from airflow_k8s.infra.render.replacement import ProviderFlags, option_paths, provider_force_new

REDACTED = "<redacted>"
REPLACE_ON_HEADER = "# pulumi-replace-on:"
OPTIONS_HEADER = "# pulumi-options:"
KUBERNETES_PROVIDER = "pulumi:providers:kubernetes"
DEFAULT_FLAGS = ProviderFlags()
_SAFE = re.compile(r"[^a-z0-9.-]+")


@dataclass
class Manifest:
    file_name: str
    kind: str  # the Pulumi type's kind: Deployment, NodePool, NodePatch...
    obj: dict[str, Any]
    resource: Recorded
    leaks: list[str] = field(default_factory=list)
    replace_on: tuple[str, ...] = ()

    @property
    def is_patch(self) -> bool:
        return self.kind.endswith("Patch")

    @property
    def options(self) -> tuple[str, ...]:
        r = self.resource
        flags = (("protect", r.protect), ("retainOnDelete", r.retain_on_delete),
                 ("deleteBeforeReplace", r.delete_before_replace))  # fmt: skip
        return tuple(name for name, on in flags if on)

    def text(self) -> str:
        r = self.resource
        header = [
            f"# pulumi: {r.type} {r.name} (parent {r.parent_name})",
            f"{REPLACE_ON_HEADER} {' '.join(self.replace_on) or '-'}",
            f"{OPTIONS_HEADER} {' '.join(self.options) or '-'}",
        ]
        return "\n".join(header) + "\n" + yamlio.dump(self.obj)


def normalize_numbers(value: Any) -> Any:
    """Whole-number floats -> ints, recursively (bools untouched)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: normalize_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [normalize_numbers(item) for item in value]
    return value


def sort_keys(value: Any) -> Any:
    """Mapping keys sorted recursively, as ``kubectl get -o yaml`` shows them (lists keep order).

    The mock's protobuf round trip does not preserve key order, so sorting is what makes two
    renders of the same program byte-identical.
    """
    if isinstance(value, dict):
        return {key: sort_keys(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [sort_keys(item) for item in value]
    return value


def _redact_all(value: Any) -> Any:
    if is_secret_value(value):
        return REDACTED
    if isinstance(value, dict):
        return {key: _redact_all(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_redact_all(item) for item in value]
    return value


def to_manifest(resource: Recorded, flags: ProviderFlags = DEFAULT_FLAGS) -> Manifest:
    kind = resource.type.rsplit(":", 1)[-1]
    inputs = dict(resource.inputs)
    leaks: list[str] = []
    if inputs.get("kind") == "Secret" and inputs.get("apiVersion") == "v1":
        for key in ("data", "stringData"):
            if isinstance(unwrap(inputs.get(key)), dict):
                inputs[key] = dict.fromkeys(unwrap(inputs[key]), REDACTED)
    else:
        leaks = list(walk_secrets(inputs))
    obj = sort_keys(normalize_numbers(_redact_all(inputs)))
    ordered = {k: obj[k] for k in ("apiVersion", "kind", "metadata") if k in obj}
    ordered.update({k: v for k, v in obj.items() if k not in ordered})
    meta = ordered.get("metadata") or {}
    namespace = meta.get("namespace") or "cluster"
    stem = "-".join(_SAFE.sub("-", part.lower()) for part in (kind, namespace, str(meta.get("name") or resource.name)))
    replace_on = provider_force_new(ordered, flags) + option_paths(resource.replace_on_changes)
    return Manifest(f"{stem}.yaml", kind, ordered, resource, leaks, tuple(dict.fromkeys(replace_on)))


def provider_flags(evaluation: Evaluation, resource: Recorded) -> ProviderFlags:
    """The replace-relevant settings of the provider ``resource`` is managed by."""
    for provider in evaluation.of_type(KUBERNETES_PROVIDER):
        if resource.provider and resource.provider.startswith(provider.urn + "::"):
            return ProviderFlags.from_config(unwrap(provider.inputs))
    return ProviderFlags.from_config(evaluation.provider_flags, prefix="kubernetes:")


def manifests(evaluation: Evaluation) -> list[Manifest]:
    """Every Kubernetes object of ``evaluation``, sorted by file name (names must be unique)."""
    out = sorted(
        (to_manifest(r, provider_flags(evaluation, r)) for r in evaluation.kubernetes()), key=lambda m: m.file_name
    )
    seen: dict[str, Manifest] = {}
    for manifest in out:
        if manifest.file_name in seen:
            raise ValueError(
                f"two resources render to {manifest.file_name}: {seen[manifest.file_name].resource.urn} "
                f"and {manifest.resource.urn}"
            )
        seen[manifest.file_name] = manifest
    return out
