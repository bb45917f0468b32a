"""The DAGs volume: one PersistentVolumeClaim every DAG-reading pod mounts read-only.

Task pods, the dag-processor and the triggerer run on many nodes at once, so the claim normally
needs ``ReadWriteMany`` (or ``ReadOnlyMany`` when DAGs are loaded by other means) and a storage
class that offers it (EFS, Filestore, Azure Files, NFS).  ``ReadWriteOnce`` only works while all
of them share a node.  Nothing in the platform writes DAGs: a CI job or a sync sidecar outside
it does.

Data protection: a claim's storage class and access mode are immutable, and pulumi-kubernetes
replaces a claim when they change - deleting it (and, with the usual ``Delete`` reclaim policy,
the DAGs on it) before creating the new one.  With ``protectDagsVolume`` (the default) the claim
gets Pulumi ``protect``, so such a change fails ``pulumi preview``/``up`` with the claim named
instead of silently replacing it, and ``retain_on_delete``, so removing it from the program never
deletes the Kubernetes object.  (A size increase is an in-place update: claims can grow.)

``pulumi.com/skipAwait``: with a ``WaitForFirstConsumer`` storage class a claim binds only once a
pod that uses it is scheduled; waiting for Bound before any such pod exists could only time out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from airflow_k8s.infra.components.k8s import TOKEN_PREFIX, child, metadata, name_of, raw
from airflow_k8s.infra.config.args import DagsStorageSpec

SKIP_AWAIT = {"pulumi.com/skipAwait": "true"}


def claim_spec(spec: DagsStorageSpec) -> dict[str, Any]:
    out: dict[str, Any] = {
        "accessModes": [spec.access_mode],
        "resources": {"requests": {"storage": spec.size}},
    }
    if spec.storage_class is not None:
        out["storageClassName"] = spec.storage_class
    return out


@dataclass(frozen=True)
class DagsVolumeArgs:
    namespace: pulumi.Input[str]
    claim_name: str
    spec: DagsStorageSpec
    labels: dict[str, str]
    protect: bool = True


class DagsVolume(pulumi.ComponentResource):
    claim_name: pulumi.Output[str]

    def __init__(self, name: str, args: DagsVolumeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TOKEN_PREFIX}DagsVolume", name, None, opts)
        pvc = k8s.core.v1.PersistentVolumeClaim(
            f"{name}-claim",
            metadata=raw(metadata(args.claim_name, args.namespace, args.labels, annotations=dict(SKIP_AWAIT))),
            spec=raw(claim_spec(args.spec)),
            opts=child(self, protect=args.protect, retain_on_delete=args.protect),
        )
        self.claim_name = name_of(pvc)
        self.register_outputs({"claimName": self.claim_name})
