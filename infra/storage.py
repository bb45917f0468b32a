"""The DAGs volume: one PersistentVolumeClaim that every task pod mounts read-only.

Task pods run on many nodes at once, so the claim normally needs ``ReadWriteMany`` (or
``ReadOnlyMany`` when DAGs are loaded by other means) and a storage class that offers it (EFS,
Filestore, Azure Files, NFS).  ``ReadWriteOnce`` only works while all task pods share a node.

``pulumi.com/skipAwait``: nothing Pulumi manages mounts this claim - task pods do, at task
time - so waiting for it to become Bound buys nothing, and with a ``WaitForFirstConsumer``
storage class it could only time out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.args import DagsStorageSpec
from infra.k8s import TOKEN_PREFIX, child, metadata, name_of, raw


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


class DagsVolume(pulumi.ComponentResource):
    claim_name: pulumi.Output[str]

    def __init__(self, name: str, args: DagsVolumeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TOKEN_PREFIX}DagsVolume", name, None, opts)
        pvc = k8s.core.v1.PersistentVolumeClaim(
            f"{name}-claim",
            metadata=raw(
                metadata(args.claim_name, args.namespace, args.labels, annotations={"pulumi.com/skipAwait": "true"})
            ),
            spec=raw(claim_spec(args.spec)),
            opts=child(self),
        )
        self.claim_name = name_of(pvc)
        self.register_outputs({"claimName": self.claim_name})
