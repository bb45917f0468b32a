"""Strict validation of Kubernetes objects against one pinned Kubernetes version.

Every manifest the project produces or accepts (pod templates, task pods, rendered infra objects)
is checked against the OpenAPI schema of :data:`KUBERNETES_VERSION`, in *strict* mode: a field
the API does not know (``spec.containers[0].resource`` for ``resources``) is an error, not a
silently dropped typo.  The schemas come from ``kubernetes-validate``, so no cluster is needed.

On top of the schema, resource quantities are checked for real: the OpenAPI type of a quantity
is just "string or number", so the schema accepts ``"500x"``.  Every ``resources.requests`` and
``resources.limits`` of containers and init containers (and pod-level ``spec.resources``) is
parsed with :func:`airflow_k8s.executor.contract.quantity.for_resource`, requests may not exceed limits, and
non-overcommittable resources (GPUs and other extended resources, hugepages) need
requests == limits, as the API server demands.

Errors are short on purpose: ``kubernetes_validate``'s ``str(exc)`` embeds the whole schema
(tens of kilobytes).  :class:`~airflow_k8s.executor.contract.errors.SchemaError` names the caller's ``where``, the
object's kind/name, the JSON path of the offending field and jsonschema's one-line message;
the original exception stays chained as ``__cause__``.
"""

from __future__ import annotations

import json
import re
import reprlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import jsonschema.exceptions
import kubernetes_validate
import kubernetes_validate.utils

from airflow_k8s.executor.contract import quantity
from airflow_k8s.executor.contract.errors import QuantityError, SchemaError

KUBERNETES_VERSION = "1.34.0"
"""The one Kubernetes version the whole project targets (schemas, PSS version labels)."""

KUBERNETES_MINOR = ".".join(KUBERNETES_VERSION.split(".")[:2])
"""``"1.34"``: the major.minor form (Pod Security Standards labels want ``v1.34``)."""

# API groups served by Kubernetes itself.  Custom resources always live in a dotted group, so
# every undotted group is built in; the dotted built-in groups are listed.  A kind missing from
# the schemas in one of these groups is a typo or a removed API, never a custom resource.
_BUILTIN_DOTTED_GROUPS = frozenset(
    {
        "admissionregistration.k8s.io",
        "apiextensions.k8s.io",
        "apiregistration.k8s.io",
        "authentication.k8s.io",
        "authorization.k8s.io",
        "certificates.k8s.io",
        "coordination.k8s.io",
        "discovery.k8s.io",
        "events.k8s.io",
        "flowcontrol.apiserver.k8s.io",
        "internal.apiserver.k8s.io",
        "networking.k8s.io",
        "node.k8s.io",
        "rbac.authorization.k8s.io",
        "resource.k8s.io",
        "scheduling.k8s.io",
        "storage.k8s.io",
        "storagemigration.k8s.io",
    }
)

# Where the pod template sits in the workload kinds that have one, by (API group, kind).
_POD_TEMPLATE_LOCATIONS: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "Pod"): (),
    ("", "PodTemplate"): ("template",),
    ("", "ReplicationController"): ("spec", "template"),
    ("apps", "Deployment"): ("spec", "template"),
    ("apps", "ReplicaSet"): ("spec", "template"),
    ("apps", "StatefulSet"): ("spec", "template"),
    ("apps", "DaemonSet"): ("spec", "template"),
    ("batch", "Job"): ("spec", "template"),
    ("batch", "CronJob"): ("spec", "jobTemplate", "spec", "template"),
}

_RESOURCE_CONTAINER_LISTS = ("initContainers", "containers")
_OVERCOMMITTABLE = frozenset({"cpu", "memory", "ephemeral-storage"})
_MAX_MESSAGE = 240
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")

_short_repr = reprlib.Repr()
_short_repr.maxstring = 60
_short_repr.maxother = 60
_short_repr.maxdict = 4
_short_repr.maxlist = 4
_short_repr.maxlevel = 2


@dataclass(frozen=True)
class PodTemplateRef:
    """Where an object keeps its pod: ``path`` of the object holding ``metadata`` and ``spec``.

    ``path`` is ``""`` for a Pod itself, ``"spec.template"`` for a Deployment,
    ``"spec.jobTemplate.spec.template"`` for a CronJob.  ``spec_path`` is the path of ``spec``.
    """

    path: str
    metadata: dict[str, Any]
    spec: dict[str, Any]

    @property
    def spec_path(self) -> str:
        return f"{self.path}.spec" if self.path else "spec"


def api_group(api_version: str) -> str:
    """``"apps"`` for ``"apps/v1"``, ``""`` for the core group's ``"v1"``."""
    group, _, _ = api_version.rpartition("/")
    return group


def is_builtin_group(group: str) -> bool:
    """True when ``group`` is served by Kubernetes itself (not a CustomResourceDefinition)."""
    return "." not in group or group in _BUILTIN_DOTTED_GROUPS


def find_pod_template(obj: Mapping[str, Any]) -> PodTemplateRef | None:
    """The pod (metadata + spec) inside ``obj``: a Pod, or a workload's pod template.

    Returns None for kinds that carry no pod (ConfigMap, Service, custom resources...).  Missing
    or null intermediate fields read as empty, so callers may inspect half-written objects.
    """
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return None
    location = _POD_TEMPLATE_LOCATIONS.get((api_group(api_version), kind))
    if location is None:
        return None
    node: Any = obj
    for key in location:
        node = node.get(key) if isinstance(node, Mapping) else None
        node = node if isinstance(node, Mapping) else {}
    metadata = node.get("metadata")
    spec = node.get("spec")
    return PodTemplateRef(
        path=".".join(location),
        metadata=metadata if isinstance(metadata, dict) else {},
        spec=spec if isinstance(spec, dict) else {},
    )


def format_path(parts: Iterable[object], prefix: str = "") -> str:
    """``spec.containers[0].resources.requests["nvidia.com/gpu"]`` from path components."""
    out = prefix
    for part in parts:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        elif isinstance(part, str) and _PLAIN_KEY.match(part):
            out = f"{out}.{part}" if out else part
        else:
            out += f"[{json.dumps(str(part))}]"
    return out


def describe(obj: Mapping[str, Any]) -> str:
    """``Pod/my-pod``, ``Pod (no name)`` for templates, ``? (no kind)`` for garbage."""
    kind = obj.get("kind") if isinstance(obj.get("kind"), str) else None
    metadata = obj.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    if not kind:
        kind = "? (no kind)"
    return f"{kind}/{name}" if isinstance(name, str) and name else f"{kind} (no name)"


def validate_manifest(obj: dict[str, Any], *, where: str, allow_custom: bool = False) -> None:
    """Validate ``obj`` strictly against the Kubernetes :data:`KUBERNETES_VERSION` schema.

    Raises :class:`SchemaError` (``where``, kind/name, field path, one-line reason) for unknown
    fields, wrong types, missing required fields, malformed quantities and requests above
    limits.  Kinds without a schema (custom resources such as ``karpenter.sh/v1`` NodePool) are
    errors too unless ``allow_custom`` is true; they are then only checked to have
    ``apiVersion``, ``kind`` and ``metadata.name`` (a built-in group with an unknown kind is
    still an error: that is a typo, not a custom resource).
    """
    if not isinstance(obj, Mapping):
        raise SchemaError(f"{where}: a Kubernetes object must be a mapping, got {type(obj).__name__}")
    what = describe(obj)
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    for field, value in (("apiVersion", api_version), ("kind", kind)):
        if not isinstance(value, str) or not value:
            raise SchemaError(f"{where}: {what}: {field} must be a non-empty string, got {value!r}")
    assert isinstance(api_version, str)
    assert isinstance(kind, str)
    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        path, message = _explain(exc)
        raise SchemaError(f"{where}: {what}: {path or '(top level)'}: {message}") from exc
    except kubernetes_validate.utils.SchemaNotFoundError as exc:
        group = api_group(api_version)
        if not allow_custom or is_builtin_group(group):
            reason = (
                "custom resources are not allowed here"
                if not is_builtin_group(group)
                else f"no such kind in {api_version!r}"
            )
            raise SchemaError(
                f"{where}: {what}: no Kubernetes {KUBERNETES_MINOR} schema for kind {kind!r} "
                f"in apiVersion {api_version!r} ({reason})"
            ) from exc
        _check_custom(obj, where=where, what=what)
        return
    except kubernetes_validate.utils.VersionNotSupportedError as exc:  # pragma: no cover - install problem
        raise SchemaError(f"{where}: kubernetes-validate has no schemas for Kubernetes {KUBERNETES_VERSION}") from exc
    problems = resource_problems(obj)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise SchemaError(f"{where}: {what}: {problems[0]}{more}")


def resource_problems(obj: Mapping[str, Any]) -> list[str]:
    """Quantity problems in the pod of ``obj`` (empty for kinds without a pod).

    Each entry is ``"<path>: <reason>"``: a malformed or non-positive quantity, a request above
    its limit, or a non-overcommittable resource whose request differs from its limit.
    """
    ref = find_pod_template(obj)
    if ref is None:
        return []
    problems: list[str] = []
    spec_path = ref.spec_path
    pod_resources = ref.spec.get("resources")
    if isinstance(pod_resources, Mapping):
        problems.extend(_resource_problems(pod_resources, f"{spec_path}.resources"))
    for list_name in _RESOURCE_CONTAINER_LISTS:
        for index, container in _items(ref.spec.get(list_name)):
            resources = container.get("resources")
            if isinstance(resources, Mapping):
                problems.extend(_resource_problems(resources, f"{spec_path}.{list_name}[{index}].resources"))
    return problems


def _resource_problems(resources: Mapping[str, Any], path: str) -> list[str]:
    problems: list[str] = []
    parsed: dict[str, dict[str, Any]] = {}
    for part in ("requests", "limits"):
        amounts = resources.get(part)
        parsed[part] = {}
        if not isinstance(amounts, Mapping):
            continue
        for name, text in amounts.items():
            where = format_path([part, name], prefix=path)
            try:
                parsed[part][name] = quantity.for_resource(str(name), text)
            except QuantityError as exc:
                problems.append(f"{where}: {exc}")
    requests, limits = parsed["requests"], parsed["limits"]
    for name, request in requests.items():
        limit = limits.get(name)
        raw_request = resources["requests"][name]
        if limit is None:
            if not _overcommittable(name):
                problems.append(
                    f"{format_path(['limits', name], prefix=path)}: must be set when requests has "
                    f"{name!r} (extended resources and hugepages cannot be overcommitted)"
                )
            continue
        raw_limit = resources["limits"][name]
        if request > limit:
            problems.append(
                f"{format_path(['requests', name], prefix=path)}: request {raw_request!r} is greater than "
                f"limit {raw_limit!r}"
            )
        elif request != limit and not _overcommittable(name):
            problems.append(
                f"{format_path(['requests', name], prefix=path)}: request {raw_request!r} must equal "
                f"limit {raw_limit!r} (extended resources and hugepages cannot be overcommitted)"
            )
    return problems


def _overcommittable(name: str) -> bool:
    """cpu, memory, ephemeral-storage and ``kubernetes.io`` resources may have request < limit."""
    if name in _OVERCOMMITTABLE:
        return True
    if name.startswith("hugepages-"):
        return False
    domain, slash, _ = name.partition("/")
    if not slash:
        return True
    # Extended resources (``nvidia.com/gpu``) live outside the kubernetes.io domain.
    return domain == "kubernetes.io" or domain.endswith(".kubernetes.io")


def _check_custom(obj: Mapping[str, Any], *, where: str, what: str) -> None:
    metadata = obj.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    if not isinstance(name, str) or not name:
        raise SchemaError(f"{where}: {what}: metadata.name must be a non-empty string (custom resource)")


def _items(value: object) -> Iterator[tuple[int, Mapping[str, Any]]]:
    if isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, Mapping):
                yield index, item


def _explain(exc: jsonschema.exceptions.ValidationError) -> tuple[str, str]:
    """(field path, one-line message) for the most specific error under ``exc``."""
    error = exc
    while error.context:
        union = _type_union(error)
        if union is not None:
            return format_path(error.absolute_path), f"{_show(error.instance)} is not of type {union}"
        best = jsonschema.exceptions.best_match(error.context)
        if best is None:  # pragma: no cover - context is non-empty
            break
        error = best
    parts = list(error.absolute_path)
    message = error.message
    instance = error.instance
    if error.validator == "additionalProperties" and isinstance(instance, Mapping):
        extra = _unexpected(error.schema, instance)
        if len(extra) == 1:
            parts.append(extra[0])
    elif error.validator == "required" and isinstance(instance, Mapping):
        missing = [key for key in error.validator_value if key not in instance]
        if len(missing) == 1:
            parts.append(missing[0])
    elif error.validator == "type":
        expected = error.validator_value
        expected = expected if isinstance(expected, list) else [expected]
        names = [name for name in expected if name != "null"] or expected
        message = f"{_show(instance)} is not of type {' or '.join(names)}"
    elif error.validator == "oneOf" and instance is None:
        message = "null is not allowed here"
    message = " ".join(message.split())
    if len(message) > _MAX_MESSAGE:
        message = message[: _MAX_MESSAGE - 3] + "..."
    return format_path(parts), message


def _show(value: object) -> str:
    """A short rendering of a YAML value (``null``/``true`` as YAML writes them)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return _short_repr.repr(value)


def _type_union(error: jsonschema.exceptions.ValidationError) -> str | None:
    """For ``oneOf: [{type: string}, {type: number}]`` (quantities, IntOrString): "string or number"."""
    if error.validator not in ("oneOf", "anyOf"):
        return None
    if not all(sub.validator == "type" and not sub.relative_path for sub in error.context):
        return None
    names: list[str] = []
    for sub in error.context:
        value = sub.validator_value
        for name in value if isinstance(value, list) else [value]:
            if name != "null" and name not in names:
                names.append(name)
    return " or ".join(names) if names else None


def _unexpected(schema: Mapping[str, Any], instance: Mapping[str, Any]) -> list[str]:
    known = schema.get("properties") or {}
    patterns = list((schema.get("patternProperties") or {}).keys())
    if patterns:
        compiled = [re.compile(p) for p in patterns]
        return [k for k in instance if k not in known and not any(c.search(k) for c in compiled)]
    return [k for k in instance if k not in known]
