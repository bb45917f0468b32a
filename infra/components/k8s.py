"""Small helpers shared by the components.

Manifests are built as plain camelCase dicts - exactly what the API server receives, and what
:mod:`~airflow_k8s.executor.pods.schema` / :mod:`~airflow_k8s.executor.pods.security` validate - and handed to
pulumi-kubernetes,
which passes dict inputs through unchanged.  Its Python signatures are typed with snake_case
TypedDicts, so :func:`raw` tells the type checker that a camelCase dict is intended.
"""

from __future__ import annotations

from typing import Any

import pulumi

TOKEN_PREFIX = "airflow-k8s:index:"  # noqa: S105 - a Pulumi type token, not a password
# pulumi-kubernetes: replace a Job on the next update when the live one is not ready (render.replacement)
REPLACE_UNREADY = "pulumi.com/replaceUnready"


def raw(value: Any) -> Any:
    """A camelCase manifest fragment (dict, or Output of one) passed to a typed SDK argument."""
    return value


def child(parent: pulumi.Resource, **kwargs: Any) -> pulumi.ResourceOptions:
    """Options for a component's child: ``parent`` set, provider inherited from it."""
    return pulumi.ResourceOptions(parent=parent, **kwargs)


def _name(meta: Any) -> str:
    name = meta.get("name") if isinstance(meta, dict) else getattr(meta, "name", None)
    if not name:
        raise ValueError("a Kubernetes object without metadata.name (all platform objects are named explicitly)")
    return str(name)


def name_of(resource: Any) -> pulumi.Output[str]:
    """The created object's ``metadata.name`` (an Output: using it makes a dependency)."""
    return resource.metadata.apply(_name)


def metadata(name: str, namespace: pulumi.Input[str] | None, labels: dict[str, str], **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "labels": dict(labels)}
    if namespace is not None:
        out["namespace"] = namespace
    out.update(extra)
    return out
