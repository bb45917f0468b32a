"""Preflight: everything that can be known wrong about a platform before any resource exists.

It first holds the typed config to the same rules as a stack file (:mod:`airflow_k8s.infra.config.typed`:
every key's validator and every cross-key rule, each problem naming the stack key), so a consumer
building a :class:`~airflow_k8s.infra.config.args.PlatformConfig` in Python gets the same checks.

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
from airflow_k8s.infra.components.addons.gitsync import dags_folder
from airflow_k8s.infra.components.airflowcfg import ControlPlaneSettings, api_server_url
from airflow_k8s.infra.components.configmaps import (
    DEFAULT_TEMPLATE,
    ExecutorWiring,
    build_executor_config,
    render_airflow_cfg,
)
from airflow_k8s.infra.components.names import PlatformNames
from airflow_k8s.infra.components.placement import unplaceable
from airflow_k8s.infra.components.podoptions import PodOptions
from airflow_k8s.infra.components.podtemplates import TemplateWiring, render_template
from airflow_k8s.infra.components.secrets import PlatformSecrets
from airflow_k8s.infra.config.args import PlatformConfig
from airflow_k8s.infra.config.pods import ROLES
from airflow_k8s.infra.config.typed import config_problems


@dataclass(frozen=True)
class PlatformArgs:
    config: PlatformConfig
    templates: Mapping[str, Mapping[str, Any]]
    secrets: PlatformSecrets


class PreflightError(ValueError):
    """The configuration cannot work; raised before any resource is declared."""


def control_plane_settings(name: str, config: PlatformConfig) -> ControlPlaneSettings:
    names = PlatformNames(name)
    access, metrics = config.addons.access, config.addons.metrics
    base_url = (
        config.control_plane.api_base_url
        or access.base_url
        or api_server_url(names.api_server_service, config.namespace)
    )
    return ControlPlaneSettings(
        base_url=base_url,
        logging=config.logging,
        dags_folder=dags_folder(config.addons.git_sync),
        auth_manager=access.auth_manager_class,
        admin_user=access.admin_user if access.simple else None,
        statsd_host=f"{names.statsd}.{config.namespace}.svc.cluster.local" if metrics.statsd else None,
        schedulers=config.control_plane.scheduler_replicas,
    )


def pod_options(config: PlatformConfig, role_key: str, platform_secret: str = "") -> PodOptions:
    """The operator's additions to the pods of the role ``role_key`` (scheduler, apiServer...)."""
    return PodOptions(
        role=ROLES[role_key],
        role_key=role_key,
        additions=config.pods.for_role(role_key),
        logs=config.pods.logs,
        secret_refs=dict(config.existing_secrets.refs),
        remote_log_secret=config.existing_secrets.remote_logging,
        git_sync=config.addons.git_sync,
        admin_user=config.addons.access.admin_user if config.addons.access.simple else None,
        platform_secret=platform_secret,
    )


def role_pod_problems(config: PlatformConfig) -> list[str]:
    """Build every control-plane pod once, with the operator's additions: a refused extra container, a
    mount of a missing volume or a PSS violation is reported here, naming the stack key, not later."""
    from airflow_k8s.infra.components import roles
    from airflow_k8s.infra.components.airflowpod import PodWiring, Runtime, check_pod, control_plane_pod

    cp = config.control_plane
    built = {
        "scheduler": roles.scheduler(config.executor.metrics_port),
        "apiServer": roles.api_server(),
        "dagProcessor": roles.dag_processor(),
        "migration": roles.migration(),
        **({"triggerer": roles.triggerer()} if cp.triggerer else {}),
    }
    wiring = PodWiring("sa", "config", "templates", "dags", "secret", config.executor.pod_template_dir)
    problems = []
    for key, role in built.items():
        runtime = Runtime(
            cp.image,
            cp.image_pull_policy,
            cp.resources_of(key),
            config.identity.run_as_user,
            config.identity.run_as_group,
        )
        try:
            spec = control_plane_pod(role, runtime, wiring, pod_options(config, key))
            pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": role.name}, "spec": spec}
            check_pod("pod of", key, pod, token=role.token)
        except ExecutorError as exc:
            problems.append(str(exc))
    return problems


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
    problems: list[str] = [str(problem) for problem in config_problems(c, secrets_set=_secrets_set(args.secrets),
                                                                        platform_name=name)]  # fmt: skip
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
        executor = build_executor_config(c.executor, executor_wiring(name, c), c.control_plane.scheduler_replicas)
        render_airflow_cfg(executor, control_plane_settings(name, c))
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
    problems.extend(role_pod_problems(c))
    if problems:
        unique = list(dict.fromkeys(problems))
        raise PreflightError("platform preflight failed:\n" + "\n".join(f"  - {p}" for p in unique))


def _secrets_set(secrets: PlatformSecrets | None) -> set[str]:
    """The secret stack keys a :class:`PlatformSecrets` stands for (what the stack-key rules check)."""
    if secrets is None:
        return {"databaseUrl"}
    given = {
        "databaseUrl": secrets.database_url,
        "fernetKey": secrets.fernet_key,
        "jwtSecret": secrets.jwt_secret,
        "apiSecretKey": secrets.api_secret_key,
        "adminPassword": secrets.admin_password,
    }
    return {key for key, value in given.items() if value is not None}
