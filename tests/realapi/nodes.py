"""Node objects built from the platform's rendered NodePools, and the DAGs claim bound to a PersistentVolume.

Each Karpenter ``NodePool`` of the render becomes one Node with the labels and taints of its node template and,
as capacity, the pool's ``limits`` (the most the pool may ever hold: cpu, memory, ``nvidia.com/gpu``).  Nothing is
taken from the pod templates, so a template that asks for a label or misses a taint its pool does not have is
unschedulable here, as it would be on the cluster Karpenter builds.

The render's DAGs ``PersistentVolumeClaim`` is applied too, pre-bound to a PersistentVolume made for it (this
apiserver runs no volume binder or provisioner): the claim names the volume and carries
``pv.kubernetes.io/bind-completed``, the volume's ``claimRef`` names the claim, and both report ``Bound``, which is
what kube-scheduler's VolumeBinding plugin checks.  The volume is never mounted (no kubelet runs).
"""

from __future__ import annotations

import contextlib
import copy
from typing import Any

from airflow_k8s.executor.contract.errors import KubeApiError
from airflow_k8s.executor.kube.client import KubeClient
from tests.realapi.kubelet import NodePool

_MERGE = {"Accept": "application/json", "Content-Type": "application/merge-patch+json"}


def pools_from_render(objects: list[dict[str, Any]], suffix: str) -> list[NodePool]:
    """One :class:`NodePool` (and so one Node) per rendered Karpenter NodePool."""
    pools = []
    for obj in objects:
        if obj.get("kind") != "NodePool":
            continue
        template = obj["spec"]["template"]
        taints = tuple(
            {k: str(v) for k, v in taint.items() if k in ("key", "value", "effect")}
            for taint in (template.get("spec") or {}).get("taints") or []
        )
        limits = obj["spec"].get("limits") or {}
        pools.append(
            NodePool(
                name=f"{obj['metadata']['name']}-{suffix}",
                labels={k: str(v) for k, v in ((template.get("metadata") or {}).get("labels") or {}).items()},
                taints=taints,
                cpu=str(limits.get("cpu", "64")),
                memory=str(limits.get("memory", "256Gi")),
                gpus=int(limits.get("nvidia.com/gpu", 0)),
            )
        )
    if not pools:
        raise LookupError("the render has no Karpenter NodePool (the dev stack's nodePoolBackend is karpenter)")
    return pools


def bound_claim(claim: dict[str, Any], suffix: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The claim (pre-bound) and a PersistentVolume for it, ready to create."""
    claim = copy.deepcopy(claim)
    metadata = claim["metadata"]
    volume_name = f"{metadata['name']}-{suffix}"
    spec = claim["spec"]
    spec["volumeName"] = volume_name
    metadata.setdefault("annotations", {})["pv.kubernetes.io/bind-completed"] = "yes"
    volume = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": volume_name, "labels": {"airflow-k8s-tests/claim": metadata["name"]}},
        "spec": {
            "capacity": {"storage": spec["resources"]["requests"]["storage"]},
            "accessModes": list(spec["accessModes"]),
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": spec.get("storageClassName") or "",
            "hostPath": {"path": f"/tmp/airflow-k8s-tests/{volume_name}", "type": "DirectoryOrCreate"},
            "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": metadata["namespace"],
                         "name": metadata["name"]},
        },
    }  # fmt: skip
    return claim, volume


def bind(admin: KubeClient, claim: dict[str, Any], volume: dict[str, Any]) -> None:
    """Create ``volume`` and ``claim`` and report both Bound, as the volume binder would."""
    admin.request("POST", "/api/v1/persistentvolumes", body=volume)
    namespace, name = claim["metadata"]["namespace"], claim["metadata"]["name"]
    created = admin.request("POST", f"/api/v1/namespaces/{namespace}/persistentvolumeclaims", body=claim)
    ref = {"uid": created["metadata"]["uid"], "resourceVersion": created["metadata"]["resourceVersion"]}
    admin.request(
        "PATCH", f"/api/v1/persistentvolumes/{volume['metadata']['name']}", body={"spec": {"claimRef": ref}},
        headers=_MERGE,
    )  # fmt: skip
    admin.request(
        "PATCH", f"/api/v1/persistentvolumes/{volume['metadata']['name']}/status",
        body={"status": {"phase": "Bound"}}, headers=_MERGE,
    )  # fmt: skip
    status = {"phase": "Bound", "accessModes": volume["spec"]["accessModes"], "capacity": volume["spec"]["capacity"]}
    admin.request(
        "PATCH", f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/{name}/status", body={"status": status},
        headers=_MERGE,
    )  # fmt: skip


def unbind(admin: KubeClient, volume: dict[str, Any]) -> None:
    """Delete the volume (the namespace's deletion takes the claim)."""
    with contextlib.suppress(KubeApiError):
        admin.request("DELETE", f"/api/v1/persistentvolumes/{volume['metadata']['name']}", decode=False)
