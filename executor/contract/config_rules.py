"""Rules that span several airflow.cfg keys, checked after every key parsed on its own.

Each failure is a :class:`ConfigError` naming the key that has to change (where it came from,
its section and value) and the other key it conflicts with; :func:`cross_field_problems` returns
every one of them, so an operator fixes a file in one pass.  Settings Airflow would ignore
rather than reject (``config_file`` while ``in_cluster`` is true) only log a warning, so an
existing Airflow configuration keeps loading.
"""

from __future__ import annotations

import logging
import posixpath
from collections.abc import Mapping
from typing import TYPE_CHECKING

from airflow_k8s.executor.contract import quantity
from airflow_k8s.executor.contract.config import ExecutorConfig, Tier
from airflow_k8s.executor.contract.errors import ConfigError

if TYPE_CHECKING:
    from airflow_k8s.executor.contract.config_loader import Setting

log = logging.getLogger(__name__)
TIER_PREFIX = "kubernetes_tier:"


def cross_field_problems(config: ExecutorConfig, origin: Mapping[str, Setting], source: str) -> list[ConfigError]:
    """Every rule ``config`` breaks, as :class:`ConfigError` values; ``origin`` says where keys came from."""
    problems: list[ConfigError] = []

    def fail(key: str, message: str) -> None:
        setting = origin.get(key)
        problems.append(
            ConfigError(
                message,
                source=setting.source if setting else source,
                section=setting.section if setting else "kubernetes_executor",
                key=key,
                value=getattr(config, key),
            )
        )

    resource = request_over_limit(config.default_requests(), config.default_limits())
    if resource is not None:
        fail(
            f"worker_resource_request_{resource}",
            f"request is greater than worker_resource_limit_{resource} = {config.default_limits()[resource]!r}",
        )
    if config.worker_pods_creation_burst is not None and config.worker_pods_creation_qps is None:
        fail(
            "worker_pods_creation_burst",
            "a burst is part of an explicit creation cap: set worker_pods_creation_qps too, or remove it "
            "(unset, the API server's own pushback paces creations)",
        )
    if config.execution_api_retry_wait_min > config.execution_api_retry_wait_max:
        key = (
            "execution_api_retry_wait_min"
            if "execution_api_retry_wait_min" in origin
            else "execution_api_retry_wait_max"
        )
        fail(key, f"execution_api_retry_wait_min is greater than execution_api_retry_wait_max = "
             f"{config.execution_api_retry_wait_max!r}")  # fmt: skip
    if config.worker_pods_min > config.worker_pods_max:
        fail("worker_pods_min", f"N_min is greater than worker_pods_max = {config.worker_pods_max}")
    directory = posixpath.normpath(config.pod_template_dir)
    template = posixpath.normpath(config.pod_template_file)
    if posixpath.dirname(template) != directory:
        fail(
            "pod_template_file",
            f"the default template must be a file directly inside pod_template_dir = {config.pod_template_dir!r}",
        )
    if config.in_cluster and (config.config_file or config.cluster_context):
        key = "config_file" if config.config_file else "cluster_context"
        log.warning("[kubernetes_executor] %s is ignored while in_cluster = True (as in Airflow)", key)
    listed = config.multi_namespace_mode_namespace_list
    if config.multi_namespace_mode and listed and config.namespace not in listed:
        fail(
            "multi_namespace_mode_namespace_list",
            f"must include the default namespace {config.namespace!r}: task pods without a namespace land there",
        )
    names = [tier.name for tier in config.tiers]
    if len(set(names)) != len(names):
        fail("default_tier", f"tier names must be unique (defined: {', '.join(names)})")
    elif config.default_tier not in names:
        fail("default_tier", f"no such tier (defined: {', '.join(names)})")
    for tier in config.tiers:
        problem = tier_limit_problem(tier, source)
        if problem is not None:
            problems.append(problem)
    return problems


def check_cross_fields(config: ExecutorConfig, origin: Mapping[str, Setting], source: str) -> None:
    """Raise the first of :func:`cross_field_problems` (one :class:`ConfigError`)."""
    problems = cross_field_problems(config, origin, source)
    if problems:
        raise problems[0]


def tier_limit_problem(tier: Tier, source: str) -> ConfigError | None:
    limits = tier.limits()
    resource = request_over_limit(tier.requests(), limits)
    if resource is not None:
        return ConfigError(
            f"request is greater than limit_{resource} = {limits[resource]!r}",
            source=source,
            section=f"{TIER_PREFIX}{tier.name}",
            key=f"request_{resource}",
            value=tier.requests()[resource],
        )
    return None


def request_over_limit(requests: Mapping[str, str], limits: Mapping[str, str]) -> str | None:
    """The first resource whose request exceeds its limit (compared by value), or None."""
    for resource, request in requests.items():
        if resource in limits and quantity.parse(request) > quantity.parse(limits[resource]):
            return resource
    return None
