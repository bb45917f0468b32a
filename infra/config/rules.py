"""Rules that span several stack keys, checked once each key is valid on its own.

:func:`cross_checks` appends a :class:`~airflow_k8s.infra.config.problem.Problem` per violation:
requests above limits (control plane, quota, LimitRange), limits above the LimitRange maximum,
tiers the LimitRange does not admit, extra task egress inside the database range, a remote log
connection without a remote folder, and the ResourceQuota check of
:mod:`airflow_k8s.infra.config.quota`.  :func:`open_cidr_warnings` lists the allowances left open
to the world: allowed, but said out loud in every preview and render.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from airflow_k8s.executor.contract import quantity
from airflow_k8s.executor.contract.config import DEFAULT_TIERS
from airflow_k8s.infra.config import args as a
from airflow_k8s.infra.config.network import is_open, without_database
from airflow_k8s.infra.config.problem import Problem
from airflow_k8s.infra.config.quota import quota_problems
from airflow_k8s.infra.config.stack_keys import PROJECT

OPEN = "0.0.0.0/0"


def open_cidr_warnings(c: a.PlatformConfig) -> list[str]:
    """Warnings for allowances left open to the world (fine to try a stack, not for production)."""
    out = []
    if c.network.database_cidr == OPEN:
        out.append(f"{PROJECT}:databaseCidr is {OPEN}: the control plane may reach any address on the database port; "
                   "production stacks set the database's CIDR")  # fmt: skip
    if c.network.api_server_cidr == OPEN:
        out.append(f"{PROJECT}:apiServerCidr is {OPEN}: the scheduler and api-server may reach any address on "
                   "TCP 443/6443; production stacks set the Kubernetes API server's CIDR")  # fmt: skip
    if c.logging.remote and c.network.remote_log_cidr and is_open(c.network.remote_log_cidr):
        out.append(
            f"{PROJECT}:remoteLogCidr is {c.network.remote_log_cidr} (allowOpenTaskEgress): task pods and the "
            "api-server may reach any address on TCP 443; set the log store's CIDR where it has one"
        )
    return out


def _not_above(
    problems: list[Problem], key: str, low: str, high: str, high_key: str, parse: Callable[[str], Any]
) -> None:
    if parse(low) > parse(high):
        problems.append(Problem(key, low, f"is greater than {PROJECT}:{high_key} = {high!r}"))


def cross_checks(c: a.PlatformConfig, v: Mapping[str, Any], problems: list[Problem]) -> None:
    e = c.executor
    if e.worker_pods_min > e.worker_pods_max:
        problems.append(
            Problem(
                "workerPodsMin",
                e.worker_pods_min,
                f"N_min is greater than {PROJECT}:workerPodsMax = {e.worker_pods_max}",
            )
        )
    cpu, mem = quantity.cpu, quantity.memory
    for role in a.CONTROL_PLANE_ROLES:
        r = c.control_plane.resources_of(role)
        for request, role_limit, suffix, parse, ceiling, ceiling_key in (
            (r.cpu_request, r.cpu_limit, "Cpu", cpu, c.limit_range.max_cpu, "limitMaxCpu"),
            (r.memory_request, r.memory_limit, "Memory", mem, c.limit_range.max_memory, "limitMaxMemory"),
        ):
            _not_above(problems, f"{role}{suffix}Request", request, role_limit, f"{role}{suffix}Limit", parse)
            _not_above(problems, f"{role}{suffix}Limit", role_limit, ceiling, ceiling_key, parse)
    for found in quota_problems(c):
        problems.append(Problem(found.key, found.value, found.reason))
    for cidr in c.network.task_egress_cidrs:
        if without_database(cidr, c.network.database_cidr) is None:
            problems.append(
                Problem(
                    "taskEgressCidrs",
                    cidr,
                    f"lies inside {PROJECT}:databaseCidr = {c.network.database_cidr!r}: task pods would reach the "
                    "database; narrow databaseCidr to the database's own range",
                )
            )
    if c.logging.remote_log_conn_id and not c.logging.remote:
        problems.append(
            Problem("remoteLogConnId", c.logging.remote_log_conn_id, f"only used with {PROJECT}:remoteBaseLogFolder")
        )
    q = c.quota
    _not_above(problems, "quotaRequestsCpu", q.requests_cpu, q.limits_cpu, "quotaLimitsCpu", cpu)
    _not_above(problems, "quotaRequestsMemory", q.requests_memory, q.limits_memory, "quotaLimitsMemory", mem)
    lr = c.limit_range
    _not_above(problems, "limitDefaultRequestCpu", lr.default_request_cpu, lr.default_cpu, "limitDefaultCpu", cpu)
    _not_above(
        problems, "limitDefaultRequestMemory", lr.default_request_memory, lr.default_memory, "limitDefaultMemory", mem
    )
    _not_above(problems, "limitDefaultCpu", lr.default_cpu, lr.max_cpu, "limitMaxCpu", cpu)
    _not_above(problems, "limitDefaultMemory", lr.default_memory, lr.max_memory, "limitMaxMemory", mem)
    for tier in DEFAULT_TIERS:
        for limit, key, ceiling, parse in (
            (tier.limit_cpu, "limitMaxCpu", lr.max_cpu, cpu),
            (tier.limit_memory, "limitMaxMemory", lr.max_memory, mem),
        ):
            if limit is not None and parse(limit) > parse(ceiling):
                problems.append(Problem(key, ceiling, f"does not admit tier {tier.name!r} (limit {limit})"))
