"""The platform's PersistentVolumeClaims: the DAGs volume and the scheduler's task intake spool.

Both are declared by :func:`volume_claim` from a :class:`~airflow_k8s.infra.config.args.ClaimSettings` (size,
storage class - None for the cluster default - and access mode).

DAGs (:class:`DagsVolume`): one claim that every task pod mounts read-only.  Task pods run on
many nodes at once, so the claim normally needs ``ReadWriteMany`` (or ``ReadOnlyMany`` when
DAGs are loaded by other means) and a storage class that offers it (EFS, Filestore, Azure
Files, NFS).  ``ReadWriteOnce`` only works while all task pods share a node.

Task intake spool (declared by :class:`~airflow_k8s.infra.components.scheduler.SchedulerDeployment`, whose state it
is): a ``ReadWriteOnce`` claim mounted by the single scheduler replica at airflow.cfg's
``task_intake_dir``.  A block-storage class (EBS, PD, Azure Disk) fits; such volumes are zonal,
so the scheduler pod follows its volume's zone.  Changing the claim's storage class replaces the
claim and loses what it holds: let the spool drain first.

``pulumi.com/skipAwait`` on every claim: with a ``WaitForFirstConsumer`` storage class a claim
binds only once a pod that uses it is scheduled.  Nothing Pulumi manages mounts the DAGs claim
(task pods do, at task time), and the scheduler Deployment is created *after* the intake claim
(it needs the claim's name), so waiting for either to become Bound could only time out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from airflow_k8s.infra.components.k8s import TOKEN_PREFIX, child, metadata, name_of, raw
from airflow_k8s.infra.config.args import ClaimSettings, DagsStorageSpec

SKIP_AWAIT = {"pulumi.com/skipAwait": "true"}


def claim_spec(spec: ClaimSettings) -> dict[str, Any]:
    out: dict[str, Any] = {
        "accessModes": [spec.access_mode],
        "resources": {"requests": {"storage": spec.size}},
    }
    if spec.storage_class is not None:
        out["storageClassName"] = spec.storage_class
    return out


def volume_claim(
    resource_name: str,
    claim_name: str,
    namespace: pulumi.Input[str],
    spec: ClaimSettings,
    labels: dict[str, str],
    parent: pulumi.Resource,
) -> k8s.core.v1.PersistentVolumeClaim:
    """One PersistentVolumeClaim ``claim_name`` (not awaited: module docstring), child of ``parent``."""
    return k8s.core.v1.PersistentVolumeClaim(
        resource_name,
        metadata=raw(metadata(claim_name, namespace, labels, annotations=dict(SKIP_AWAIT))),
        spec=raw(claim_spec(spec)),
        opts=child(parent),
    )


@dataclass(frozen=True)
class DagsVolumeArgs:
    namespace: pulumi.Input[str]
    claim_name: str
    spec: DagsStorageSpec
    labels: dict[str, str]


class DagsVolume(pulumi.ComponentResource):
    claim_name: pulumi.Output[str]

    def __init__(self, name: str, args: DagsVolumeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TOKEN_PREFIX}DagsVolume", name, None, opts)
        pvc = volume_claim(f"{name}-claim", args.claim_name, args.namespace, args.spec, args.labels, self)
        self.claim_name = name_of(pvc)
        self.register_outputs({"claimName": self.claim_name})
