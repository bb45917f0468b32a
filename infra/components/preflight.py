"""Preflight: everything that can be known wrong about a platform before any resource exists.

:func:`preflight` runs synchronously at the top of
:class:`~airflow_k8s.infra.components.platform.AirflowK8sPlatform`, so a bad template or setting
fails with one readable message listing every problem - not later inside an Output callback, and
not at task time.  It renders airflow.cfg and every pod template once with the names the
platform will create, checks that every tier's template exists, fits a node pool and stays within
the LimitRange maximum, and that the ResourceQuota holds what may run at once
(:mod:`airflow_k8s.infra.config.quota`).  Pure of Pulumi resources: it declares nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow_k8s.executor.contract import quantity
from airflow_k8s.executor.contract.config import DEFAULT_TIERS
from airflow_k8s.executor.contract.errors import ExecutorError
from airflow_k8s.infra.components.airflowcfg import ControlPlaneSettings, api_server_url
from airflow_k8s.infra.components.configmaps import (
    DEFAULT_TEMPLATE,
    ExecutorWiring,
    build_executor_config,
    render_airflow_cfg,
)
from airflow_k8s.infra.components.names import PlatformNames
from airflow_k8s.infra.components.placement import unplaceable
from airflow_k8s.infra.components.podtemplates import TemplateWiring, render_template
from airflow_k8s.infra.components.secrets import PlatformSecrets
from airflow_k8s.infra.config.args import PlatformConfig
from airflow_k8s.infra.config.quota import quota_problems


@dataclass(frozen=True)
class PlatformArgs:
    config: PlatformConfig
    templates: Mapping[str, Mapping[str, Any]]
    secrets: PlatformSecrets


class PreflightError(ValueError):
    """The configuration cannot work; raised before any resource is declared."""


def control_plane_settings(name: str, config: PlatformConfig) -> ControlPlaneSettings:
    names = PlatformNames(name)
    base_url = config.control_plane.api_base_url or api_server_url(names.api_server_service, config.namespace)
    return ControlPlaneSettings(base_url=base_url, logging=config.logging)


def executor_wiring(name: str, config: PlatformConfig) -> ExecutorWiring:
    names = PlatformNames(name)
    return ExecutorWiring(
        config.namespace,
        names.worker_service_account,
        names.task_priority_class,
        names.placeholder_priority_class,
        name,
        names.api_server_service,
    )


def preflight(name: str, args: PlatformArgs) -> None:
    """Raise :class:`PreflightError` listing every problem found (module docstring).

    Also renders airflow.cfg and every template once with the names the platform will create,
    so a bad template or setting fails here, synchronously, with a readable message - not later
    inside an Output callback.
    """
    c, templates = args.config, args.templates
    names = PlatformNames(name)
    problems: list[str] = []
    wiring = TemplateWiring(
        config_map=names.airflow_config_map,
        pvc=names.dags_pvc,
        service_account=names.worker_service_account,
        run_as_user=c.identity.run_as_user,
        run_as_group=c.identity.run_as_group,
    )
    for template_name, template in sorted(templates.items()):
        try:
            render_template(template_name, template, wiring)
        except ExecutorError as exc:
            problems.append(str(exc))
    try:
        render_airflow_cfg(build_executor_config(c.executor, executor_wiring(name, c)), control_plane_settings(name, c))
    except ExecutorError as exc:
        problems.append(f"airflow.cfg: {exc}")
    if DEFAULT_TEMPLATE not in templates:
        problems.append(f"the default template {DEFAULT_TEMPLATE} is missing (templates: {sorted(templates)})")
    for tier in DEFAULT_TIERS:
        if tier.pod_template and tier.pod_template not in templates:
            problems.append(f"tier {tier.name!r} uses template {tier.pod_template} which is not published")
    problems.extend(unplaceable(templates, c.node_pools.pools))
    ceilings = {"cpu": (c.limit_range.max_cpu, quantity.cpu), "memory": (c.limit_range.max_memory, quantity.memory)}
    for template_name, template in sorted(templates.items()):
        for container in (template.get("spec") or {}).get("containers") or []:
            limits = (container.get("resources") or {}).get("limits") or {}
            for resource, (ceiling, parse) in ceilings.items():
                if resource in limits and parse(limits[resource]) > parse(ceiling):
                    problems.append(
                        f"pod template {template_name}: container {container.get('name')} limit "
                        f"{resource}={limits[resource]} is above the LimitRange maximum {ceiling} "
                        f"(raise limitMax{resource.capitalize()})"
                    )
    problems.extend(f"airflow-k8s:{p.key} = {p.value!r}: {p.reason}" for p in quota_problems(c))
    if problems:
        raise PreflightError("platform preflight failed:\n" + "\n".join(f"  - {p}" for p in problems))
