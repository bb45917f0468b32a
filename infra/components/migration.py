"""``airflow db migrate``, once per release, before the control plane starts: a Job ordered by Pulumi.

Why a Job, and how it behaves across ``pulumi up`` runs:

* pulumi-kubernetes waits for a Job to complete before it reports it created, and every
  control-plane Deployment ``depends_on`` it: the scheduler, api-server, dag-processor and
  triggerer of a new release are rolled only after the schema is migrated (their init container
  ``airflow db check-migrations`` guards restarts that happen outside Pulumi);
* a Job's pod template is immutable in Kubernetes, and pulumi-kubernetes replaces a Job whose
  ``spec.template`` changed.  The template holds the image, so a new release (``airflowImage``)
  replaces the Job - which runs the migration again - and so does a change of a Secret value the
  migration reads (the database URL, the Fernet key: the template's ``airflow-k8s/secrets-hmac``,
  :mod:`airflow_k8s.infra.components.rollout`), so a new database is migrated before the roles
  that read its URL roll onto it - their ``check-migrations`` would otherwise wait on an empty
  schema forever.  airflow.cfg changes do not re-run it.  The name is pinned, so the replacement
  deletes the old Job first (``delete_before_replace``; create-then-delete would collide on the name);
* ``airflow db migrate`` is idempotent, so a re-run (``pulumi up --replace``, a changed resource
  setting) is harmless; ``backoffLimit: 2`` retries a transient database error, and
  ``activeDeadlineSeconds`` bounds a hung migration below Pulumi's own create timeout;
* it starts after the NetworkPolicies exist: under default-deny, its database egress must be
  allowed before its pod tries to connect;
* no ``ttlSecondsAfterFinished``: Kubernetes would garbage-collect the finished Job, and the next
  ``pulumi up`` would see it missing and run it again;
* ``pulumi.com/replaceUnready: "true"``: a migration that failed (database unreachable, wrong
  password or CIDR) or never finished is **re-run by the next** ``pulumi up`` once the cause is
  fixed.  Without it the provider keeps the failed Job (its inputs did not change), the await sees
  ``Failed=True`` again and the Deployments are never created - only ``pulumi up --replace`` got
  out.  The provider reads the live Job in its Diff and replaces it (delete-first) unless it has
  completed (:func:`airflow_k8s.infra.render.replacement.unready_replacement` spells the rule out);
  a completed migration is left alone, so a later ``up`` does not migrate again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from airflow_k8s.infra.components.airflowpod import PodWiring, Runtime, check_pod, control_plane_pod
from airflow_k8s.infra.components.controlplane import pod_labels
from airflow_k8s.infra.components.k8s import REPLACE_UNREADY, TOKEN_PREFIX, child, metadata, name_of, raw
from airflow_k8s.infra.components.names import MIGRATION, PlatformNames
from airflow_k8s.infra.components.podoptions import PodOptions
from airflow_k8s.infra.components.roles import migration
from airflow_k8s.infra.components.rollout import SECRETS_HMAC_ANNOTATION

DEADLINE_SECONDS = 1800
PULUMI_TIMEOUT = "40m"  # above the deadline: the Job fails first, with its own reason


@dataclass(frozen=True)
class MigrationArgs:
    names: PlatformNames
    runtime: Runtime
    namespace: pulumi.Input[str]
    service_account: pulumi.Input[str]
    airflow_config_map: pulumi.Input[str]
    secret: pulumi.Input[str]
    after: Sequence[pulumi.Resource] = ()  # the NetworkPolicies: its database egress must exist first
    options: PodOptions | None = None  # the operator's additions (podoptions.py)
    priority_class: pulumi.Input[str] = ""  # the control plane's PriorityClass (priority.py); empty: none
    secrets_hmac: pulumi.Input[str] | None = None  # AirflowSecret.fingerprint of the keys the migration reads


def job_spec(
    names: PlatformNames,
    runtime: Runtime,
    wiring: PodWiring,
    options: PodOptions | None = None,
    secrets_hmac: str | None = None,
) -> dict[str, Any]:
    role = migration()
    pod = control_plane_pod(role, runtime, wiring, options)
    pod["restartPolicy"] = "Never"
    template: dict[str, Any] = {"metadata": {"labels": pod_labels(names, MIGRATION)}, "spec": pod}
    if secrets_hmac is not None:
        template["metadata"]["annotations"] = {SECRETS_HMAC_ANNOTATION: secrets_hmac}
    spec = {"backoffLimit": 2, "activeDeadlineSeconds": DEADLINE_SECONDS, "template": template}
    obj = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": names.migration_job}, "spec": spec}
    check_pod("Job", names.migration_job, obj, token=False)
    return spec


class DatabaseMigration(pulumi.ComponentResource):
    """The migration Job (module docstring); ``job`` is what the Deployments wait for."""

    job: k8s.batch.v1.Job
    job_name: pulumi.Output[str]

    def __init__(self, name: str, args: MigrationArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TOKEN_PREFIX}DatabaseMigration", name, None, opts)
        n = args.names
        spec = pulumi.Output.all(
            args.service_account, args.airflow_config_map, args.secret, args.priority_class, args.secrets_hmac
        ).apply(lambda v: job_spec(n, args.runtime, PodWiring(v[0], v[1], "", "", v[2], "", v[3]), args.options, v[4]))
        self.job = k8s.batch.v1.Job(
            f"{name}-job",
            metadata=raw(
                metadata(
                    n.migration_job, args.namespace, n.common_labels(MIGRATION), annotations={REPLACE_UNREADY: "true"}
                )
            ),
            spec=raw(spec),
            opts=child(
                self,
                depends_on=list(args.after),
                delete_before_replace=True,
                custom_timeouts=pulumi.CustomTimeouts(create=PULUMI_TIMEOUT, update=PULUMI_TIMEOUT),
            ),
        )
        self.job_name = name_of(self.job)
        self.register_outputs({"jobName": self.job_name})
