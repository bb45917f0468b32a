"""Checking a task before it is queued: the pod it would get, judged as the launcher would judge it.

One function, three callers, so a DAG author meets the same rules wherever the task is checked:

* the **Airflow cluster policy** (:mod:`airflow_k8s.executor.airflow.policy`), when the DAG is
  parsed - no cluster access there, so ``nodes`` is None;
* the **executor at queue time** (``_process_workloads``), for DAGs parsed where the policy is not
  installed, with the nodes the scheduler has listed;
* the **launcher** (:mod:`airflow_k8s.executor.engine.scheduling`) builds the same pod and runs
  the same node check with the tier it chose.

Everything the pod factory refuses is refused here (unknown tier, template, quantities, the task
pod policy, Pod Security Standards, hardening), plus a request that no node the pod may run on
could ever hold (:func:`~airflow_k8s.executor.pods.capacity.unplaceable`).  ``tier: auto`` is
checked with the smallest auto tier: the scheduler falls back to it when nothing larger fits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow_k8s.executor.contract.config import ExecutorConfig
from airflow_k8s.executor.contract.errors import ExecutorError, TaskSpecError
from airflow_k8s.executor.pods import capacity
from airflow_k8s.executor.pods.podfactory import build_pod
from airflow_k8s.executor.pods.templates import TemplateStore
from airflow_k8s.executor.tasks.task import AUTO_TIER, Task


class Unplaceable(TaskSpecError):
    """No node the pod may run on has the allocatable capacity its requests ask for."""


def smallest_auto_tier(config: ExecutorConfig) -> str:
    auto = sorted((t for t in config.tiers if t.auto), key=lambda t: (t.cpu_cores(), t.memory_bytes(), t.gpu))
    return auto[0].name if auto else config.default_tier


def check_pod(task: Task, pod: dict[str, Any], nodes: Sequence[capacity.Node] | None) -> None:
    """Raise :class:`Unplaceable` when ``nodes`` are known and none can ever hold ``pod``."""
    problem = capacity.unplaceable(pod, nodes) if nodes else None
    if problem is not None:
        raise Unplaceable(f"{task.key}: {problem}")


def check_task(
    task: Task, config: ExecutorConfig, templates: TemplateStore, nodes: Sequence[capacity.Node] | None = None
) -> dict[str, Any]:
    """The pod ``task`` would get; raises the factory's errors or :class:`Unplaceable` (module docstring)."""
    tier = smallest_auto_tier(config) if task.overrides.tier == AUTO_TIER else None
    pod = build_pod(task, config, templates, tier_name=tier)
    check_pod(task, pod, nodes)
    return pod


def template_problems(config: ExecutorConfig, templates: TemplateStore) -> list[str]:
    """Everything wrong with the templates ``config`` relies on: every invalid file of the directory,
    the default template (``pod_template_file``, by default ``<pod_template_dir>/default_template.yaml``)
    and each tier's template - all of them, so one run of ``validate`` (or one failed start) lists all."""
    problems: list[str] = []
    try:
        loaded = set(templates.load_all())
    except ExecutorError as exc:
        problems.append(str(exc))
        loaded = set()
    try:
        templates.load(config.pod_template_file)
    except ExecutorError as exc:
        problems.append(f"[kubernetes_executor] pod_template_file = {config.pod_template_file!r}: {exc}")
    for tier in config.tiers:
        if tier.pod_template and tier.pod_template not in loaded:
            try:
                templates.load(tier.pod_template)
            except ExecutorError as exc:
                problems.append(f"[kubernetes_tier:{tier.name}] pod_template = {tier.pod_template!r}: {exc}")
    return problems
