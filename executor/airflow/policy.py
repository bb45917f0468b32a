"""Airflow cluster policy: a DAG whose ``executor_config`` this executor would refuse does not import.

Without it a DAG author learns of a typo in ``executor_config`` only when the task runs - and then
from a failed task whose log says nothing useful.  With it, the DAG shows as an **import error**
in Airflow's UI (and ``airflow dags list-import-errors``), naming the DAG, the task, the field and
the rule, before any run is scheduled::

    AirflowClusterPolicyViolation: 2 tasks of DAG 'etl' have an executor_config this platform's
    executor refuses:
      - task 'load': executor_config: unknown key(s) ['kubernetes_confg']; did you mean 'kubernetes_config'? ...
      - task 'train': executor_config.pod_override violates the task pod policy: spec.volumes[4] (host): ...

The check is the executor's own (:func:`airflow_k8s.executor.pods.preflight.check_task`): the
same parsing of both ``executor_config`` forms (unknown keys with a did-you-mean, tiers,
quantities), the pod it would build from the same templates and airflow.cfg, the task pod policy,
Pod Security Standards and the platform hardening.  Only what needs the cluster is left to queue
time (a request larger than any node: the DAG processor has no API access).

Installed with the package: ``pyproject.toml`` registers this module under Airflow's
``airflow.policy`` entry point, so every Airflow process where the package is installed (the
platform's image: the dag-processor included) loads it; no ``airflow_local_settings`` is needed.
It checks only tasks this executor runs - when ``[core] executor`` lists it, the tasks whose
``executor`` is it (or unset, when it is the default) - so installing the package beside another
executor changes nothing.  ``dag_policy`` reports every broken task of a DAG in one import error;
``task_policy`` applies the same check to a single task.  When the executor's settings cannot be
read here the check is skipped with a warning (a broken airflow.cfg stops the scheduler, not every
DAG); when the pod templates are not mounted in this process, only the ``executor_config`` itself
is checked.
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass
from typing import Any

from airflow.exceptions import AirflowClusterPolicyViolation
from airflow.policies import hookimpl

from airflow_k8s.executor.airflow.settings import load_settings
from airflow_k8s.executor.airflow.workloads import overrides_from_executor_config
from airflow_k8s.executor.contract.config import ExecutorConfig
from airflow_k8s.executor.contract.config_loader import EXECUTOR_CLASS_NAME
from airflow_k8s.executor.contract.errors import ExecutorError
from airflow_k8s.executor.pods import preflight
from airflow_k8s.executor.pods.podfactory import resolve_tier
from airflow_k8s.executor.pods.templates import TemplateStore
from airflow_k8s.executor.tasks.key import TaskKey
from airflow_k8s.executor.tasks.task import Task

log = logging.getLogger(__name__)
RUN_ID = "cluster-policy-check"  # the run id of the task key the check builds (no run exists at parse time)


@dataclass(frozen=True)
class Checker:
    """What the check needs, read once per process: the executor's settings and, if mounted, its templates."""

    config: ExecutorConfig
    templates: TemplateStore | None
    names: frozenset[str]  # how a task's ``executor`` may name this executor
    default: bool  # this executor is [core] executor's first entry: tasks without ``executor`` run on it


@functools.lru_cache(maxsize=1)
def checker() -> Checker | None:
    """The :class:`Checker`, or None when this executor is not configured (or its settings cannot be read)."""
    from airflow.configuration import conf
    from airflow.executors.base_executor import get_execution_api_server_url

    entries = [entry.strip() for entry in (conf.get("core", "executor", fallback="") or "").split(",")]
    ours = [entry for entry in entries if entry.rpartition(":")[2].rsplit(".", 1)[-1] == EXECUTOR_CLASS_NAME]
    if not ours:
        return None
    try:
        config = load_settings(conf, execution_api_server_url=get_execution_api_server_url(conf))
    except ExecutorError as exc:
        log.warning("executor_config of DAGs is not checked: the executor's settings are invalid: %s", exc)
        return None
    templates = None
    if os.path.isdir(config.pod_template_dir):
        templates = TemplateStore(config.pod_template_dir, logical_dir=config.pod_template_dir)
    else:
        log.warning(
            "pod templates are not mounted at %s here: executor_config is checked without building pods",
            config.pod_template_dir,
        )
    names: set[str] = set()
    for entry in ours:
        alias, _, path = entry.rpartition(":")
        names.update(filter(None, (alias, path, path.rsplit(".", 1)[-1])))
    return Checker(config, templates, frozenset(names), default=entries[0] in ours)


def runs_here(task: Any, check: Checker) -> bool:
    """Whether this executor runs ``task``: its ``executor`` names it, or it has none and this is the default."""
    executor = getattr(task, "executor", None)
    return check.default if not executor else str(executor) in check.names


def task_problem(task: Any, check: Checker) -> str | None:
    """Why this executor would refuse ``task``'s ``executor_config`` ("field: rule"), or None."""
    executor_config = getattr(task, "executor_config", None)
    if not executor_config:
        return None
    dag_id = getattr(task, "dag_id", None) or "dag"
    key = TaskKey(dag_id=str(dag_id), task_id=str(task.task_id), run_id=RUN_ID)
    try:
        overrides = overrides_from_executor_config(executor_config, source="executor_config")
        candidate = Task(key=key, command=("true",), overrides=overrides)
        if check.templates is not None:
            preflight.check_task(candidate, check.config, check.templates)
        elif overrides.tier not in (None, "auto"):
            resolve_tier(candidate, check.config)
    except ExecutorError as exc:
        return str(exc).replace(f"{key}: ", "")
    return None


@hookimpl
def dag_policy(dag: Any) -> None:
    """Every task of ``dag`` this executor runs must have an ``executor_config`` it accepts."""
    check = checker()
    if check is None:
        return
    problems = []
    for task in dag.tasks:
        if runs_here(task, check):
            problem = task_problem(task, check)
            if problem is not None:
                problems.append(f"task {task.task_id!r}: {problem}".replace("\n", "\n    "))
    if problems:
        lines = "\n".join(f"  - {problem}" for problem in problems)
        raise AirflowClusterPolicyViolation(
            f"{len(problems)} task(s) of DAG {dag.dag_id!r} have an executor_config that "
            f"{EXECUTOR_CLASS_NAME} refuses:\n{lines}"
        )


@hookimpl
def task_policy(task: Any) -> None:
    """The same check for one task (Airflow calls it for each task after ``dag_policy``)."""
    check = checker()
    if check is None or not runs_here(task, check):
        return
    problem = task_problem(task, check)
    if problem is not None:
        dag_id = getattr(task, "dag_id", None)
        raise AirflowClusterPolicyViolation(
            f"DAG {dag_id!r}, task {task.task_id!r}: an executor_config {EXECUTOR_CLASS_NAME} refuses: {problem}"
        )
