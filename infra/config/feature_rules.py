"""Cross-key rules and warnings of the day-2 and Helm-chart-parity settings (:mod:`.platform_keys`).

:func:`feature_checks` appends a :class:`~airflow_k8s.infra.config.problem.Problem` per violation,
:func:`feature_warnings` what a preview and a render print for settings that work but are not
production-ready.  Called by :func:`airflow_k8s.infra.config.stack_config.parse_stack_config` next
to :mod:`airflow_k8s.infra.config.rules`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_k8s.infra.config import args as a
from airflow_k8s.infra.config.problem import Problem
from airflow_k8s.infra.config.stack_keys import PROJECT


def feature_warnings(c: a.PlatformConfig) -> list[str]:
    out = []
    if c.control_plane.api_server_replicas < 2:
        out.append(
            f"{PROJECT}:apiServerReplicas is 1: a node drain, an eviction or a rollout restart takes the UI and the "
            "Execution API task pods call down at once (its disruption budget cannot block with one pod); "
            "production stacks run 2 or more"
        )
    return out


def feature_checks(c: a.PlatformConfig, v: Mapping[str, Any], problems: list[Problem]) -> None:
    k = c.control_plane.scheduler_replicas
    if k > 1 and c.executor.worker_pods_max < k:
        problems.append(
            Problem(
                "workerPodsMax",
                c.executor.worker_pods_max,
                f"is shared by {PROJECT}:schedulerReplicas = {k} schedulers: each needs at least one task pod",
            )
        )
