"""Node pool backends: Karpenter NodePools, patched existing nodes, or none."""

from __future__ import annotations

import copy

from airflow_k8s.infra.components.nodepools import karpenter_nodepool, nodepool_problems
from airflow_k8s.infra.config.args import DEFAULT_NODE_POOLS
from airflow_k8s.infra.render.offline import Evaluation

from .conftest import objects, one


def test_karpenter_nodepools(karpenter_eval: Evaluation) -> None:
    workers = one(karpenter_eval, "NodePool", "airflow-workers")
    assert workers["apiVersion"] == "karpenter.sh/v1"
    assert "namespace" not in workers["metadata"]
    template = workers["spec"]["template"]
    assert template["metadata"]["labels"] == {"node-type": "worker"}
    assert template["spec"]["taints"] == [{"effect": "NoSchedule", "key": "dedicated", "value": "worker"}]
    assert template["spec"]["nodeClassRef"] == {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"}
    assert template["spec"]["requirements"] == [
        {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["m6i.large", "m6i.xlarge"]},
        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot", "on-demand"]},
    ]
    assert workers["spec"]["limits"] == {"cpu": "32", "memory": "128Gi"}
    assert workers["spec"]["disruption"]["consolidationPolicy"] == "WhenEmpty"
    gpu = one(karpenter_eval, "NodePool", "airflow-gpu")
    assert gpu["spec"]["template"]["spec"]["taints"] == [{"effect": "NoSchedule", "key": "nvidia.com/gpu"}]
    assert gpu["spec"]["limits"]["nvidia.com/gpu"] == "2"
    compute = one(karpenter_eval, "NodePool", "airflow-compute")
    assert compute["spec"]["template"]["metadata"]["labels"] == {"node-type": "compute-optimized"}
    assert all(nodepool_problems(o) == [] for o in objects(karpenter_eval, "NodePool"))


def test_node_class_and_instance_types_from_config(stack) -> None:
    evaluation = stack(
        nodePoolBackend="karpenter",
        karpenterNodeClass="gpu-al2023",
        nodePoolInstanceTypes=["workers=t3.large", "compute=c7i.xlarge", "gpu=p4d.24xlarge"],
        nodePoolCapacityTypes=["workers=spot"],
    )
    pool = one(evaluation, "NodePool", "airflow-workers")
    assert pool["spec"]["template"]["spec"]["nodeClassRef"]["name"] == "gpu-al2023"
    assert pool["spec"]["template"]["spec"]["requirements"][0]["values"] == ["t3.large"]
    assert pool["spec"]["template"]["spec"]["requirements"][1]["values"] == ["spot"]
    compute = one(evaluation, "NodePool", "airflow-compute")
    assert compute["spec"]["template"]["spec"]["requirements"][1]["values"] == ["on-demand"]  # default


def test_existing_nodes_backend_patches_named_nodes(stack) -> None:
    evaluation = stack(nodePoolBackend="existing-nodes", existingNodes=["workers=kind-worker", "gpu=kind-worker2"])
    assert objects(evaluation, "NodePool") == []
    patches = {p["metadata"]["name"]: p for p in objects(evaluation, "NodePatch")}
    assert set(patches) == {"kind-worker", "kind-worker2"}
    assert patches["kind-worker"] == {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"labels": {"node-type": "worker"}, "name": "kind-worker"},
        "spec": {"taints": [{"effect": "NoSchedule", "key": "dedicated", "value": "worker"}]},
    }
    assert patches["kind-worker2"]["spec"]["taints"] == [{"effect": "NoSchedule", "key": "nvidia.com/gpu"}]
    assert evaluation.plain_outputs()["nodePoolNames"] == ["workers", "compute", "gpu"]


def test_none_backend_declares_pools_only(stack) -> None:
    evaluation = stack(nodePoolBackend="none")
    assert objects(evaluation, "NodePool") == objects(evaluation, "NodePatch") == []
    assert evaluation.plain_outputs()["nodePoolBackend"] == "none"


def test_structural_check_catches_broken_nodepools() -> None:
    good = karpenter_nodepool("p", DEFAULT_NODE_POOLS[0], "default", {})
    assert nodepool_problems(good) == []
    bad = copy.deepcopy(good)
    del bad["spec"]["template"]["spec"]["nodeClassRef"]["group"]
    bad["spec"]["template"]["spec"]["requirements"][0]["operator"] = "Equals"
    bad["spec"]["template"]["spec"]["taints"][0]["effect"] = "Sometimes"
    bad["spec"]["limits"]["cpu"] = "lots"
    bad["spec"]["disruption"]["consolidateAfter"] = "five minutes"
    problems = nodepool_problems(bad)
    assert len(problems) == 5, problems
    assert problems[0] == "spec.template.spec.nodeClassRef.group is required"
