"""For DAG authors: a task's ``executor_config`` from typed arguments, checked where the DAG is written.

The source document wrote ``@task(kubernetes_config={...})``; Airflow 3's decorator refuses that keyword
(``TypeError``).  The one-line equivalent::

    from airflow_k8s.executor.tasks.dag import kubernetes_config

    @task(executor_config=kubernetes_config(
        pod_template_file="heavy_computation.yaml",
        resources={"requests": {"cpu": "2", "memory": "4Gi"}, "limits": {"cpu": "4", "memory": "8Gi"}},
    ))
    def heavy_computation(): ...

Every argument is keyword-only and typed (``TypedDict`` shapes for resources and tolerations), so an
editor completes and checks them; the values are validated by the executor's own parser as the DAG
file is imported - a misspelt tier name or ``"500x"`` fails there, with the field named - and the
result is the plain dict the executor reads (``{"kubernetes_config": {...}}``), so a DAG using it
runs unchanged wherever this package is installed next to Airflow.  Merge semantics: docs/executor.md.
No Airflow import: the module is as cheap to import as the dict it returns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypedDict

from airflow_k8s.executor.tasks.task import parse_overrides

ResourceAmounts = Mapping[str, str]  # {"cpu": "500m", "memory": "1Gi", "nvidia.com/gpu": "1"}


class Resources(TypedDict, total=False):
    """Container ``resources``: requests and limits per resource, as Kubernetes quantities."""

    requests: ResourceAmounts
    limits: ResourceAmounts


class Toleration(TypedDict, total=False):
    """A pod toleration, as in the Kubernetes API."""

    key: str
    operator: Literal["Equal", "Exists"]
    value: str
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]
    tolerationSeconds: int


def kubernetes_config(
    *,
    pod_template_file: str | None = None,
    tier: str | None = None,
    image: str | None = None,
    resources: Resources | None = None,
    node_selector: Mapping[str, str] | None = None,
    tolerations: Sequence[Toleration] | None = None,
    env: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    pod_override: Mapping[str, Any] | None = None,
) -> dict[str, dict[str, Any]]:
    """``executor_config`` for ``@task``: ``{"kubernetes_config": {...}}`` with the arguments that are set.

    ``pod_template_file``: a template's file name in ``[kubernetes_executor] pod_template_dir`` (or its path
    there); ``tier``: a tier name, or ``"auto"`` for the largest that fits free capacity at launch;
    ``image``: the base container's image; ``resources``: requests/limits of the base container (per key);
    ``node_selector``, ``tolerations``: placement within the platform's pools; ``env``: the base
    container's environment; ``labels``, ``annotations``: added to the pod; ``pod_override``: a partial
    Pod manifest (camelCase) merged last.  Raises ``TaskSpecError`` naming the field for a bad value.
    """
    values: dict[str, Any] = {
        "pod_template_file": pod_template_file,
        "tier": tier,
        "image": image,
        "resources": _plain(resources),
        "node_selector": _plain(node_selector),
        "tolerations": [dict(t) for t in tolerations] if tolerations is not None else None,
        "env": _plain(env),
        "labels": _plain(labels),
        "annotations": _plain(annotations),
        "pod_override": _plain(pod_override),
    }
    config = {name: value for name, value in values.items() if value is not None}
    parse_overrides(config, source="kubernetes_config")
    return {"kubernetes_config": config}


def _plain(value: Mapping[str, Any] | None) -> Any:
    """Mappings (TypedDicts, frozen views) as the plain dicts the executor's parser and Airflow's serialiser take."""
    if value is None:
        return None
    return {key: _plain(item) if isinstance(item, Mapping) else item for key, item in value.items()}
