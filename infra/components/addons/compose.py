"""The add-ons a platform runs, children of :class:`~airflow_k8s.infra.components.platform.AirflowK8sPlatform`.

Kept apart so the platform module stays a list of its core parts; each add-on exists only when its
stack keys turn it on (``dbCleanEnabled``, ``uiHost``, ``airflowMetrics: statsd``).  git-sync and
the admin-password init container are pod additions, applied where the pods are built
(:mod:`airflow_k8s.infra.components.podoptions`).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from airflow_k8s.infra.components.addons.access import UiAccess, UiAccessArgs
from airflow_k8s.infra.components.addons.dbclean import DatabaseCleanup, DbCleanArgs
from airflow_k8s.infra.components.addons.statsd import StatsdArgs, StatsdExporter
from airflow_k8s.infra.components.airflowpod import Runtime
from airflow_k8s.infra.components.k8s import child
from airflow_k8s.infra.components.names import PlatformNames
from airflow_k8s.infra.components.preflight import pod_options
from airflow_k8s.infra.config.args import PlatformConfig


@dataclass(frozen=True)
class AddonInputs:
    namespace: pulumi.Input[str]
    control_plane_service_account: pulumi.Input[str]
    airflow_config_map: pulumi.Input[str]
    secret: pulumi.Input[str]
    api_server_service: pulumi.Input[str]
    migration_job: pulumi.Resource


@dataclass(frozen=True)
class AddonOutputs:
    db_clean_cronjob: pulumi.Output[str | None]
    ui_route: pulumi.Output[str | None]
    statsd_service: pulumi.Output[str | None]


def create_addons(parent: pulumi.Resource, name: str, config: PlatformConfig, inputs: AddonInputs) -> AddonOutputs:
    names, addons, cp = PlatformNames(name), config.addons, config.control_plane
    none: pulumi.Output[str | None] = pulumi.Output.from_input(None)
    db_clean, ui_route, statsd = none, none, none
    if addons.db_clean.enabled:
        db_clean = DatabaseCleanup(
            f"{name}-db-clean",
            DbCleanArgs(
                names, addons.db_clean,
                Runtime(cp.image, cp.image_pull_policy, cp.resources_of("migration"),
                        config.identity.run_as_user, config.identity.run_as_group),
                inputs.namespace, inputs.control_plane_service_account, inputs.airflow_config_map, inputs.secret,
                options=pod_options(config, "dbClean", names.secret), after=[inputs.migration_job],
            ),
            opts=child(parent),
        ).cronjob_name  # fmt: skip
    if addons.access.host:
        ui_route = UiAccess(
            f"{name}-ui",
            UiAccessArgs(names, addons.access, inputs.namespace, inputs.api_server_service),
            opts=child(parent),
        ).route_name
    if addons.metrics.statsd:
        statsd = StatsdExporter(
            f"{name}-statsd",
            StatsdArgs(names, addons.metrics, inputs.namespace, inputs.control_plane_service_account),
            opts=child(parent),
        ).service_name
    return AddonOutputs(db_clean, ui_route, statsd)
