"""Every template (as published) schedules onto a node pool that exists; preflight enforces it."""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest
import yaml

from airflow_k8s.infra.components.placement import fits, pools_for, tolerates, unplaceable
from airflow_k8s.infra.components.platform import PlatformArgs, PreflightError, preflight
from airflow_k8s.infra.components.secrets import PlatformSecrets
from airflow_k8s.infra.config.args import DEFAULT_NODE_POOLS, NodePoolsSpec, PlatformConfig, Taint
from airflow_k8s.infra.render.offline import Evaluation

from .conftest import objects, one

EXPECTED = {
    "default_template.yaml": ["workers"],
    "light_task.yaml": ["workers"],
    "heavy_computation.yaml": ["compute"],
    "gpu_task.yaml": ["gpu"],
}


def _published(evaluation: Evaluation) -> dict[str, dict]:
    config_map = next(o for o in objects(evaluation, "ConfigMap") if o["metadata"]["name"].endswith("pod-templates"))
    return {key: yaml.safe_load(text) for key, text in config_map["data"].items()}


def _karpenter_pools(evaluation: Evaluation) -> dict[str, tuple[dict, list[dict]]]:
    """NodePool name -> (node labels, taints) as the deployed objects say."""
    out = {}
    for pool in objects(evaluation, "NodePool"):
        template = pool["spec"]["template"]
        out[pool["metadata"]["name"]] = (template["metadata"]["labels"], template["spec"]["taints"])
    return out


def _pod_fits(pod_spec: dict, labels: dict, taints: list[dict]) -> bool:
    selector_ok = all(labels.get(k) == v for k, v in (pod_spec.get("nodeSelector") or {}).items())
    blocking = [t for t in taints if t["effect"] in ("NoSchedule", "NoExecute")]
    taints_ok = all(
        any(tolerates(tol, Taint(t["key"], t["effect"], t.get("value"))) for tol in pod_spec.get("tolerations") or [])
        for t in blocking
    )
    return selector_ok and taints_ok


def test_every_published_template_fits_a_created_karpenter_pool(karpenter_eval: Evaluation) -> None:
    pools = _karpenter_pools(karpenter_eval)
    placement = {
        name: sorted(pool for pool, (labels, taints) in pools.items() if _pod_fits(t["spec"], labels, taints))
        for name, t in _published(karpenter_eval).items()
    }
    assert placement == {name: [f"airflow-{pool}" for pool in pools_] for name, pools_ in EXPECTED.items()}


def test_every_published_template_fits_patched_existing_nodes(stack) -> None:
    evaluation = stack(
        nodePoolBackend="existing-nodes",
        existingNodes=["workers=node-a", "compute=node-b", "gpu=node-c"],
    )
    nodes = {
        p["metadata"]["name"]: (p["metadata"]["labels"], p["spec"]["taints"]) for p in objects(evaluation, "NodePatch")
    }
    assert set(nodes) == {"node-a", "node-b", "node-c"}
    for name, template in _published(evaluation).items():
        fitting = sorted(
            node for node, (labels, taints) in nodes.items() if _pod_fits(template["spec"], labels, taints)
        )
        assert len(fitting) == 1, (name, fitting)


def test_pools_for_matches_the_node_pool_specs(default_eval: Evaluation) -> None:
    for name, template in _published(default_eval).items():
        assert pools_for(template, DEFAULT_NODE_POOLS) == EXPECTED[name]


@pytest.mark.parametrize(
    ("toleration", "taint", "expected"),
    [
        (
            {"key": "dedicated", "operator": "Equal", "value": "worker", "effect": "NoSchedule"},
            Taint("dedicated", "NoSchedule", "worker"),
            True,
        ),
        (
            {"key": "dedicated", "value": "worker"},
            Taint("dedicated", "NoExecute", "worker"),
            True,
        ),  # Equal by default, any effect
        (
            {"key": "dedicated", "operator": "Equal", "value": "other"},
            Taint("dedicated", "NoSchedule", "worker"),
            False,
        ),
        ({"key": "dedicated", "operator": "Exists"}, Taint("dedicated", "NoSchedule", "worker"), True),
        ({"operator": "Exists"}, Taint("anything", "NoSchedule", "x"), True),
        (
            {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
            Taint("nvidia.com/gpu", "NoSchedule"),
            True,
        ),
        (
            {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoExecute"},
            Taint("nvidia.com/gpu", "NoSchedule"),
            False,
        ),
        ({"key": "workload", "operator": "Equal", "value": "heavy"}, Taint("dedicated", "NoSchedule", "worker"), False),
    ],
)
def test_toleration_semantics(toleration: dict, taint: Taint, expected: bool) -> None:
    assert tolerates(toleration, taint) is expected


def test_prefer_no_schedule_never_blocks() -> None:
    pool = replace(DEFAULT_NODE_POOLS[0], taints=(Taint("soft", "PreferNoSchedule", "x"),))
    assert fits({"nodeSelector": {"node-type": "worker"}}, pool) == []


def test_unplaceable_names_each_pool_and_reason(default_eval: Evaluation) -> None:
    templates = _published(default_eval)
    without_gpu = [p for p in DEFAULT_NODE_POOLS if p.name != "gpu"]
    (message,) = unplaceable(templates, without_gpu)
    assert message.startswith("pod template gpu_task.yaml fits no node pool (workers: nodeSelector node-type=gpu")
    assert "taint workload=heavy:NoSchedule is not tolerated" in message


def test_preflight_refuses_a_template_without_a_pool(default_eval: Evaluation) -> None:
    templates = _published(default_eval)
    gpu = DEFAULT_NODE_POOLS[2]
    pools = (
        DEFAULT_NODE_POOLS[0],
        DEFAULT_NODE_POOLS[1],
        replace(gpu, taints=(*gpu.taints, Taint("team", "NoExecute", "ml"))),
    )
    config = PlatformConfig(node_pools=NodePoolsSpec(pools=pools))
    with pytest.raises(
        PreflightError, match=r"gpu_task.yaml fits no node pool .*taint team=ml:NoExecute is not tolerated"
    ):
        preflight("airflow", PlatformArgs(config, templates, PlatformSecrets("url")))


def test_preflight_refuses_limits_above_the_limit_range(default_eval: Evaluation) -> None:
    templates = copy.deepcopy(_published(default_eval))
    templates["heavy_computation.yaml"]["spec"]["containers"][0]["resources"]["limits"]["memory"] = "64Gi"
    with pytest.raises(PreflightError, match="limit memory=64Gi is above the LimitRange maximum 16Gi"):
        preflight("airflow", PlatformArgs(PlatformConfig(), templates, PlatformSecrets("url")))


def test_preflight_refuses_missing_tier_templates(default_eval: Evaluation) -> None:
    templates = _published(default_eval)
    del templates["light_task.yaml"]
    with pytest.raises(PreflightError, match=r"tier .light. uses template light_task\.yaml which is not published"):
        preflight("airflow", PlatformArgs(PlatformConfig(), templates, PlatformSecrets("url")))


def test_karpenter_pool_limits_come_from_config(stack) -> None:
    evaluation = stack(nodePoolBackend="karpenter",
                       nodePoolLimits=["workers.cpu=8", "workers.memory=32Gi", "compute.cpu=1", "compute.memory=1Gi",
                                       "gpu.cpu=4", "gpu.memory=16Gi", "gpu.nvidia.com/gpu=1"])  # fmt: skip
    gpu = one(evaluation, "NodePool", "airflow-gpu")
    assert gpu["spec"]["limits"] == {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1"}
