"""Node pools for task pods, with interchangeable backends.

A pool is a :class:`~airflow_k8s.infra.config.args.NodePoolSpec`: the labels templates select and the taints they
tolerate (``workers``: node-type=worker + dedicated=worker:NoSchedule; ``compute``:
node-type=compute-optimized + workload=heavy:NoSchedule; ``gpu``: node-type=gpu +
nvidia.com/gpu:NoSchedule).  The taint keeps every other workload off the pool; the label steers
the executor's pods onto it.  Backends (stack config ``nodePoolBackend``):

``karpenter``
    One ``karpenter.sh/v1`` NodePool per pool (``<platform>-<pool>``): template labels and
    taints, requirements on ``node.kubernetes.io/instance-type`` and ``karpenter.sh/capacity-type``,
    ``nodeClassRef`` to an ``EC2NodeClass``, ``limits`` (the cost ceiling of the pool) and
    disruption ``WhenEmpty`` - task pods cannot be restarted mid-run, so only empty nodes are
    consolidated (``consolidateAfter`` keeps them warm for a while), at most 10% at a time.
``existing-nodes``
    A ``NodePatch`` (server-side apply) per named node, adding the pool's labels and taints.
    Destroying the stack removes exactly those fields again.  Taints are an atomic list in
    server-side apply: a node whose taints another manager owns makes the patch conflict, which
    is reported rather than overwritten.
``none``
    Pools are provided out of band (managed node groups...); only declared, for the placement
    check.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from airflow_k8s.executor.contract import k8snames, quantity
from airflow_k8s.executor.contract.config import TAINT_EFFECTS
from airflow_k8s.executor.contract.errors import QuantityError
from airflow_k8s.infra.components.k8s import TOKEN_PREFIX, child, raw
from airflow_k8s.infra.config.args import NodePoolSpec, NodePoolsSpec

KARPENTER_API = "karpenter.sh/v1"
NODE_CLASS_GROUP = "karpenter.k8s.aws"
NODE_CLASS_KIND = "EC2NodeClass"
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
CAPACITY_TYPE_LABEL = "karpenter.sh/capacity-type"
CONSOLIDATION_POLICIES = ("WhenEmpty", "WhenEmptyOrUnderutilized")
REQUIREMENT_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt")
_DURATION = re.compile(r"^(Never|([0-9]+(s|m|h))+)$")


def nodepool_name(platform: str, pool: NodePoolSpec) -> str:
    return f"{platform}-{pool.name}"


def karpenter_nodepool(name: str, pool: NodePoolSpec, node_class: str, labels: Mapping[str, str]) -> dict[str, Any]:
    """The NodePool object (apiVersion karpenter.sh/v1) for ``pool``."""
    requirements = [
        {"key": INSTANCE_TYPE_LABEL, "operator": "In", "values": list(pool.instance_types)},
        {"key": CAPACITY_TYPE_LABEL, "operator": "In", "values": list(pool.capacity_types)},
    ]
    return {
        "apiVersion": KARPENTER_API,
        "kind": "NodePool",
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": {
            "template": {
                "metadata": {"labels": pool.label_dict()},
                "spec": {
                    "nodeClassRef": {"group": NODE_CLASS_GROUP, "kind": NODE_CLASS_KIND, "name": node_class},
                    "taints": [taint.to_k8s() for taint in pool.taints],
                    "requirements": requirements,
                    "expireAfter": pool.expire_after,
                },
            },
            "limits": dict(pool.limits),
            "disruption": {
                "consolidationPolicy": pool.consolidation_policy,
                "consolidateAfter": pool.consolidate_after,
                "budgets": [{"nodes": "10%"}],
            },
        },
    }


def nodepool_problems(obj: Mapping[str, Any]) -> list[str]:
    """Structural problems of a karpenter.sh/v1 NodePool (no CRD schema is available offline).

    Checks the fields Karpenter requires (nodeClassRef group/kind/name, requirements) and the
    shape of the ones set here: labels, taints, durations, limits quantities, disruption.
    """
    out: list[str] = []
    spec = _m(obj.get("spec"))
    template = _m(spec.get("template"))
    tspec = _m(template.get("spec"))
    ref = _m(tspec.get("nodeClassRef"))
    for field in ("group", "kind", "name"):
        if not isinstance(ref.get(field), str) or not ref.get(field):
            out.append(f"spec.template.spec.nodeClassRef.{field} is required")
    requirements = tspec.get("requirements")
    if not isinstance(requirements, list) or not requirements:
        out.append("spec.template.spec.requirements must be a non-empty list")
    for i, raw_req in enumerate(requirements if isinstance(requirements, list) else []):
        req = _m(raw_req)
        where = f"spec.template.spec.requirements[{i}]"
        if not k8snames.is_label_key(str(req.get("key", ""))):
            out.append(f"{where}.key {req.get('key')!r} is not a label key")
        if req.get("operator") not in REQUIREMENT_OPERATORS:
            out.append(f"{where}.operator {req.get('operator')!r} is not one of {REQUIREMENT_OPERATORS}")
        if req.get("operator") == "In" and not req.get("values"):
            out.append(f"{where}.values must not be empty for operator In")
    for key, value in _m(_m(template.get("metadata")).get("labels")).items():
        problem = k8snames.label_key_problem(key) or k8snames.label_value_problem(value)
        if problem:
            out.append(f"spec.template.metadata.labels: {problem}")
    for i, raw_taint in enumerate(tspec.get("taints") or []):
        taint = _m(raw_taint)
        if not k8snames.is_label_key(str(taint.get("key", ""))) or taint.get("effect") not in TAINT_EFFECTS:
            out.append(f"spec.template.spec.taints[{i}] needs a label-key key and an effect in {TAINT_EFFECTS}")
    if "expireAfter" in tspec and not _DURATION.match(str(tspec["expireAfter"])):
        out.append(f"spec.template.spec.expireAfter {tspec['expireAfter']!r} is not a duration")
    for resource, amount in _m(spec.get("limits")).items():
        try:
            quantity.for_resource(str(resource), amount)
        except QuantityError as exc:
            out.append(f"spec.limits[{resource!r}]: {exc}")
    disruption = _m(spec.get("disruption"))
    if disruption.get("consolidationPolicy", "WhenEmptyOrUnderutilized") not in CONSOLIDATION_POLICIES:
        out.append(f"spec.disruption.consolidationPolicy must be one of {CONSOLIDATION_POLICIES}")
    if "consolidateAfter" in disruption and not _DURATION.match(str(disruption["consolidateAfter"])):
        out.append(f"spec.disruption.consolidateAfter {disruption['consolidateAfter']!r} is not a duration")
    return out


def _m(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


@dataclass(frozen=True)
class NodePoolsArgs:
    platform: str
    spec: NodePoolsSpec
    labels: dict[str, str]


class NodePools(pulumi.ComponentResource):
    """The pools of ``args.spec`` via the chosen backend; ``pool_names`` names what was declared.

    ``pool_names`` holds the NodePool object names for Karpenter, the logical pool names for
    the other backends; ``nodes`` maps pool -> patched node names (existing-nodes backend).
    """

    pool_names: list[str]
    nodes: dict[str, list[str]]

    def __init__(self, name: str, args: NodePoolsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TOKEN_PREFIX}NodePools", name, None, opts)
        spec = args.spec
        self.pool_names = []
        self.nodes = {}
        for pool in spec.pools:
            if spec.backend == "karpenter":
                object_name = nodepool_name(args.platform, pool)
                manifest = karpenter_nodepool(object_name, pool, spec.node_class, args.labels)
                problems = nodepool_problems(manifest)
                if problems:
                    raise ValueError(f"NodePool {object_name}: " + "; ".join(problems))
                k8s.apiextensions.CustomResource(
                    f"{name}-{pool.name}",
                    api_version=KARPENTER_API,
                    kind="NodePool",
                    metadata=raw(manifest["metadata"]),
                    spec=manifest["spec"],
                    opts=child(self),
                )
                self.pool_names.append(object_name)
                continue
            self.pool_names.append(pool.name)
            if spec.backend == "existing-nodes":
                self.nodes[pool.name] = list(pool.nodes)
                for node in pool.nodes:
                    k8s.core.v1.NodePatch(
                        f"{name}-{pool.name}-{node}",
                        metadata=raw({"name": node, "labels": pool.label_dict()}),
                        spec=raw({"taints": [taint.to_k8s() for taint in pool.taints]}),
                        opts=child(self),
                    )
        self.register_outputs({"poolNames": self.pool_names, "nodes": self.nodes})
