"""Free capacity and the automatic tier choice: the seed's arithmetic, done right."""

from __future__ import annotations

from decimal import Decimal

from airflow_k8s.executor.contract.config import DEFAULT_TIERS
from airflow_k8s.executor.pods.capacity import (
    Node,
    Placement,
    choose_tier,
    eligible,
    free_capacity,
    nodes_from_api,
    pod_requests,
)

WORKER = Placement(
    {"node-type": "worker"}, ({"key": "dedicated", "operator": "Equal", "value": "worker", "effect": "NoSchedule"},)
)
COMPUTE = Placement(
    {"node-type": "compute-optimized"},
    ({"key": "workload", "operator": "Equal", "value": "heavy", "effect": "NoSchedule"},),
)
PLACEMENTS = {"light": WORKER, "medium": WORKER, "heavy": COMPUTE}


def node(name, cpu, memory, labels=None, taints=()):
    return {
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"taints": list(taints)},
        "status": {"allocatable": {"cpu": cpu, "memory": memory, "pods": "110"}},
    }


def pod(node_name, cpu, memory, phase="Running", init=None):
    spec = {
        "nodeName": node_name,
        "containers": [{"name": "base", "resources": {"requests": {"cpu": cpu, "memory": memory}}}],
    }
    if init:
        spec["initContainers"] = [{"name": "init", "resources": {"requests": init}}]
    return {"spec": spec, "status": {"phase": phase}}


def test_allocatable_in_millicores_and_kibibytes_parses_exactly():
    [n] = nodes_from_api([node("n", "3920m", "15991348Ki")])
    assert n.allocatable["cpu"] == Decimal("3.92")
    assert n.allocatable["memory"] == Decimal(15991348 * 1024)


def test_free_capacity_is_allocatable_minus_requests_of_live_pods():
    nodes = nodes_from_api([node("n", "4", "8Gi")])
    pods = [pod("n", "500m", "1Gi"), pod("n", "1", "512Mi"), pod("n", "2", "4Gi", phase="Succeeded")]
    free = free_capacity(nodes, pods)["n"]
    assert free["cpu"] == Decimal("2.5")  # the seed computed total - (0 - requests): more than the node has
    assert free["memory"] == Decimal(8 * 1024**3 - 1024**3 - 512 * 1024**2)


def test_init_containers_count_as_the_scheduler_counts_them():
    assert pod_requests(pod("n", "500m", "1Gi", init={"cpu": "2"}))["cpu"] == Decimal(2)
    assert pod_requests(pod("n", "500m", "1Gi", init={"cpu": "100m"}))["cpu"] == Decimal("0.5")


def test_malformed_quantities_on_live_objects_do_not_break_the_estimate():
    assert pod_requests(pod("n", "lots", "1Gi")) == {"memory": Decimal(1024**3)}


def test_eligibility_follows_node_selectors_and_hard_taints():
    worker = Node("w", {"node-type": "worker"}, ({"key": "dedicated", "value": "worker", "effect": "NoSchedule"},))
    soft = Node("s", {"node-type": "worker"}, ({"key": "x", "effect": "PreferNoSchedule"},))
    assert eligible(worker, WORKER)
    assert not eligible(worker, Placement({"node-type": "worker"}))  # taint not tolerated
    assert not eligible(worker, COMPUTE)
    assert eligible(soft, Placement({"node-type": "worker"}))  # PreferNoSchedule does not block
    assert not eligible(Node("c", {"node-type": "worker"}, schedulable=False), Placement({"node-type": "worker"}))


def _cluster(compute_cpu: str):
    nodes = nodes_from_api(
        [
            node(
                "w",
                "8",
                "32Gi",
                {"node-type": "worker"},
                [{"key": "dedicated", "value": "worker", "effect": "NoSchedule"}],
            ),
            node(
                "c",
                compute_cpu,
                "64Gi",
                {"node-type": "compute-optimized"},
                [{"key": "workload", "value": "heavy", "effect": "NoSchedule"}],
            ),
        ]
    )
    return nodes, free_capacity(nodes, [])


def test_the_largest_tier_that_fits_is_chosen():
    nodes, free = _cluster("16")
    assert choose_tier(DEFAULT_TIERS, nodes, free, PLACEMENTS).name == "heavy"


def test_a_full_heavy_pool_falls_back_to_the_next_tier_that_fits():
    nodes, free = _cluster("1")
    assert choose_tier(DEFAULT_TIERS, nodes, free, PLACEMENTS).name == "medium"


def test_pods_not_yet_bound_reserve_capacity_first():
    nodes, free = _cluster("2")
    assert choose_tier(DEFAULT_TIERS, nodes, free, PLACEMENTS).name == "heavy"
    heavy = {"cpu": Decimal(2), "memory": Decimal(4 * 1024**3)}
    assert choose_tier(DEFAULT_TIERS, nodes, free, PLACEMENTS, unbound=[(heavy, COMPUTE)]).name == "medium"


def test_when_nothing_fits_the_smallest_auto_tier_waits_for_room():
    nodes = nodes_from_api([node("tiny", "100m", "64Mi", {"node-type": "worker"})])
    assert choose_tier(DEFAULT_TIERS, nodes, free_capacity(nodes, []), PLACEMENTS).name == "light"


def test_gpu_tiers_are_never_chosen_automatically():
    nodes = nodes_from_api([node("g", "64", "512Gi", {"node-type": "gpu"})])
    choice = choose_tier(DEFAULT_TIERS, nodes, free_capacity(nodes, []), {"gpu": Placement({"node-type": "gpu"})})
    assert choice.name != "gpu"


def test_no_auto_tiers_means_no_choice():
    assert choose_tier([t for t in DEFAULT_TIERS if not t.auto], [], {}, {}) is None
