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
from airflow_k8s.infra.config.network import inside, is_open
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
    from airflow_k8s.infra.config.addons_parse import addons_checks

    task_egress_checks(c, problems)
    addons_checks(c, problems)
    k = c.control_plane.scheduler_replicas
    if k > 1 and c.executor.worker_pods_max < k:
        problems.append(
            Problem(
                "workerPodsMax",
                c.executor.worker_pods_max,
                f"is shared by {PROJECT}:schedulerReplicas = {k} schedulers: each needs at least one task pod",
            )
        )


def task_egress_checks(c: a.PlatformConfig, problems: list[Problem]) -> None:
    """Task egress names its destinations: never 0.0.0.0/0 unless said so, never the Kubernetes API."""
    n = c.network
    named: list[tuple[str, str]] = [("taskEgressCidrs", cidr) for cidr in n.task_egress_cidrs]
    if c.logging.remote:
        if not n.remote_log_cidr:
            problems.append(
                Problem(
                    "remoteLogCidr",
                    "",
                    f"is needed with {PROJECT}:remoteBaseLogFolder: task pods upload their logs to the store; set "
                    "its CIDR (an S3 prefix-list range, the storage account's range...)",
                )
            )
        else:
            named.append(("remoteLogCidr", n.remote_log_cidr))
    for key, cidr in named:
        if is_open(cidr) and not n.allow_open_task_egress:
            problems.append(
                Problem(
                    key,
                    cidr,
                    "opens task pods to every address: the internet and, on port 443, the Kubernetes API of any "
                    f"cluster; name the destinations, or set {PROJECT}:allowOpenTaskEgress true to allow it explicitly",
                )
            )
        elif not is_open(n.api_server_cidr) and inside(cidr, n.api_server_cidr):
            problems.append(
                Problem(
                    key,
                    cidr,
                    f"lies inside {PROJECT}:apiServerCidr = {n.api_server_cidr!r}: task pods would reach the "
                    "Kubernetes API; narrow apiServerCidr to the API server's endpoints",
                )
            )
