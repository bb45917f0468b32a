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

import time
from collections.abc import Callable, Sequence
from typing import Any

from airflow_k8s.executor.contract import jsonfast
from airflow_k8s.executor.contract.config import ExecutorConfig
from airflow_k8s.executor.contract.errors import ExecutorError, TaskSpecError
from airflow_k8s.executor.pods import capacity
from airflow_k8s.executor.pods.podfactory import build_pod
from airflow_k8s.executor.pods.templates import TemplateStore
from airflow_k8s.executor.tasks.task import AUTO_TIER, Task, overrides_to_dict


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


class VerdictCache:
    """:func:`check_task` for many tasks of one DAG task: its verdict depends on the task's overrides, the
    config and the templates - not on the key - so each distinct ``kubernetes_config``/``pod_override`` is
    built once per ``ttl`` seconds (a ``pod_override`` costs milliseconds of schema validation, and the
    scheduler's thread checks every workload it queues).  The node check reruns every time (nodes change);
    a template edited meanwhile is seen at launch, where the pod is built again from scratch.
    """

    def __init__(self, *, ttl: float = 60.0, size: int = 1024, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl, self.size, self.clock = ttl, size, clock
        self._verdicts: dict[tuple[int, str], tuple[float, Task, dict[str, Any] | None, ExecutorError | None]] = {}

    def check(
        self, task: Task, config: ExecutorConfig, templates: TemplateStore, nodes: Sequence[capacity.Node] | None
    ) -> None:
        """Raise what :func:`check_task` would raise for ``task``."""
        key = (id(config), jsonfast.dumps(overrides_to_dict(task.overrides)).decode())
        now = self.clock()
        cached = self._verdicts.get(key)
        if cached is None or now - cached[0] > self.ttl:
            try:
                cached = (now, task, check_task(task, config, templates), None)
            except ExecutorError as exc:
                cached = (now, task, None, exc)
            self._verdicts[key] = cached
            while len(self._verdicts) > self.size:
                self._verdicts.pop(next(iter(self._verdicts)))
        _, checked, pod, error = cached
        if error is not None:
            if checked is task:
                raise error
            raise type(error)(str(error).replace(str(checked.key), str(task.key))) from error  # this task's key
        assert pod is not None
        check_pod(task, pod, nodes)
