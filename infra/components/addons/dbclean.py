"""``airflow db clean`` on a schedule: a batch/v1 CronJob (the chart's ``databaseCleanup``).

The metadata database grows with every DAG run, task instance, log line and XCom; ``airflow db
clean --clean-before-timestamp <now - dbCleanRetentionDays> --yes --skip-archive`` deletes what is
older (no archive tables: the point is to free the space).  The Job runs the platform image with the
migration Job's resources and pod (database URL and Fernet key only, no API token, PSS restricted,
the operator's ``dbClean`` additions), ``concurrencyPolicy: Forbid`` so a slow run is never
overlapped, one retry, and the last run of each outcome kept for ``kubectl logs``.  Its pods carry
the ``db-clean`` component label, which the database NetworkPolicy admits.

``batch/v1`` CronJob is served since Kubernetes 1.21; the platform renders for current clusters (the
1.20 test tier adapts the object in its own code).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from airflow_k8s.infra.components.airflowpod import PodWiring, Role, Runtime, check_pod, control_plane_pod
from airflow_k8s.infra.components.controlplane import pod_labels
from airflow_k8s.infra.components.k8s import TOKEN_PREFIX, child, metadata, name_of, raw
from airflow_k8s.infra.components.names import DB_CLEAN, PlatformNames
from airflow_k8s.infra.components.podoptions import PodOptions
from airflow_k8s.infra.components.secrets import DATABASE_URL_KEY, FERNET_KEY_KEY
from airflow_k8s.infra.config.addons import DbCleanSpec


def db_clean_role(retention_days: int) -> Role:
    script = (
        f'exec airflow db clean --clean-before-timestamp "$(date -u -d "-{retention_days} days" '
        '+%Y-%m-%dT%H:%M:%S+00:00)" --yes --skip-archive'
    )
    return Role(
        DB_CLEAN,
        ("bash", "-c", script),
        (DATABASE_URL_KEY, FERNET_KEY_KEY),
        wait_for_migrations=False,
        termination_grace_seconds=30,
    )


@dataclass(frozen=True)
class DbCleanArgs:
    names: PlatformNames
    spec: DbCleanSpec
    runtime: Runtime
    namespace: pulumi.Input[str]
    service_account: pulumi.Input[str]
    airflow_config_map: pulumi.Input[str]
    secret: pulumi.Input[str]
    options: PodOptions | None = None
    after: Sequence[pulumi.Resource] = ()


def cronjob_spec(args: DbCleanArgs, wiring: PodWiring) -> dict[str, Any]:
    n = args.names
    pod = control_plane_pod(db_clean_role(args.spec.retention_days), args.runtime, wiring, args.options)
    pod["restartPolicy"] = "Never"
    spec = {
        "schedule": args.spec.schedule,
        "timeZone": "Etc/UTC",
        "concurrencyPolicy": "Forbid",
        "successfulJobsHistoryLimit": 1,
        "failedJobsHistoryLimit": 1,
        "jobTemplate": {
            "spec": {
                "backoffLimit": 1,
                "activeDeadlineSeconds": 3 * 3600,
                "template": {"metadata": {"labels": pod_labels(n, DB_CLEAN)}, "spec": pod},
            }
        },
    }
    obj = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": n.db_clean}, "spec": spec}
    check_pod("CronJob", n.db_clean, obj, token=False)
    return spec


class DatabaseCleanup(pulumi.ComponentResource):
    """The CronJob (module docstring)."""

    cronjob_name: pulumi.Output[str]

    def __init__(self, name: str, args: DbCleanArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TOKEN_PREFIX}DatabaseCleanup", name, None, opts)
        n = args.names
        spec = pulumi.Output.all(args.service_account, args.airflow_config_map, args.secret).apply(
            lambda v: cronjob_spec(args, PodWiring(v[0], v[1], "", "", v[2], ""))
        )
        cronjob = k8s.batch.v1.CronJob(
            f"{name}-cronjob",
            metadata=raw(metadata(n.db_clean, args.namespace, n.common_labels(DB_CLEAN))),
            spec=raw(spec),
            opts=child(self, depends_on=list(args.after)),
        )
        self.cronjob_name = name_of(cronjob)
        self.register_outputs({"cronJobName": self.cronjob_name})
