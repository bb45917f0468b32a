"""Stack keys -> :class:`~airflow_k8s.infra.config.addons.AddonsSpec`, and the rules across them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_k8s.infra.config import addons as ad
from airflow_k8s.infra.config.args import PlatformConfig
from airflow_k8s.infra.config.network import is_open
from airflow_k8s.infra.config.problem import Problem
from airflow_k8s.infra.config.stack_keys import PROJECT


def addons_spec(v: Mapping[str, Any]) -> ad.AddonsSpec:
    return ad.AddonsSpec(
        git_sync=ad.GitSyncSpec(
            repo=v["gitSyncRepo"],
            ref=v["gitSyncRef"],
            sub_path=v["gitSyncSubPath"],
            period_seconds=v["gitSyncPeriodSeconds"],
            credentials_secret=v["gitSyncCredentialsSecret"] or None,
            ssh_key_secret=v["gitSyncSshKeySecret"] or None,
            image=v["gitSyncImage"],
            cidrs=v["gitSyncCidrs"],
        ),
        db_clean=ad.DbCleanSpec(v["dbCleanEnabled"], v["dbCleanSchedule"], v["dbCleanRetentionDays"]),
        access=ad.AccessSpec(
            auth_manager=v["authManager"],
            admin_user=v["adminUser"],
            host=v["uiHost"],
            ingress_class=v["uiIngressClassName"],
            tls_secret=v["uiTlsSecret"],
            gateway=v["uiGateway"],
        ),
        metrics=ad.AirflowMetricsSpec(mode=v["airflowMetrics"], statsd_image=v["statsdImage"]),
    )


def addons_checks(c: PlatformConfig, problems: list[Problem]) -> None:
    git, access = c.addons.git_sync, c.addons.access
    if git.enabled:
        if not git.cidrs:
            problems.append(Problem("gitSyncCidrs", [], f"is needed with {PROJECT}:gitSyncRepo: where the git host is"))
        problems.extend(
            Problem("gitSyncCidrs", cidr, "opens the dag-processor to every address; name the git host's ranges")
            for cidr in git.cidrs
            if is_open(cidr)
        )
        if git.credentials_secret and git.ssh_key_secret:
            problems.append(Problem("gitSyncSshKeySecret", git.ssh_key_secret, "and gitSyncCredentialsSecret: set one"))
        ssh = not git.repo.startswith("https://")
        if ssh and git.credentials_secret:
            problems.append(
                Problem("gitSyncCredentialsSecret", git.credentials_secret, "is for an https:// repository")
            )
        if not ssh and git.ssh_key_secret:
            problems.append(Problem("gitSyncSshKeySecret", git.ssh_key_secret, "is for an SSH repository"))
        if c.storage.access_mode != "ReadWriteMany":
            problems.append(
                Problem(
                    "dagsAccessMode",
                    c.storage.access_mode,
                    f"git-sync ({PROJECT}:gitSyncRepo) writes the DAGs claim while the dag-processor, the triggerer "
                    "and task pods on other nodes read it: it needs ReadWriteMany",
                )
            )
    if (access.tls_secret or access.gateway or access.ingress_class) and not access.host:
        problems.append(Problem("uiHost", "", "is needed with uiTlsSecret, uiGateway or uiIngressClassName"))
    if access.gateway and (access.tls_secret or access.ingress_class):
        problems.append(
            Problem(
                "uiGateway",
                access.gateway,
                "an HTTPRoute takes no TLS Secret or IngressClass: TLS terminates at the Gateway's listener",
            )
        )
    if access.host and not c.network.ui_ingress_namespace:
        problems.append(
            Problem(
                "uiIngressNamespace",
                "",
                f"is needed with {PROJECT}:uiHost: the namespace of the ingress controller or Gateway whose pods "
                "reach the api-server (the NetworkPolicies deny everyone else)",
            )
        )
