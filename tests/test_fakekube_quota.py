"""ResourceQuota in the fake API server: the objects, admission with the real messages, charging at create,
release only on recalculation, and the deterministic 409 Conflict knob."""

from __future__ import annotations

import json
import math

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.fakekube import FakeKubeServer
from tests.fakekube.manifests import control, pod_manifest

NS = "quota"


def quota(hard: dict[str, str], name: str = "compute") -> dict:
    return {"metadata": {"name": name}, "spec": {"hard": hard}}


def refusal(exc: ApiException) -> dict:
    return json.loads(exc.body)


def used(core: client.CoreV1Api, name: str = "compute") -> dict[str, str]:
    return core.read_namespaced_resource_quota(name, NS).status.used


@pytest.fixture
def server(fake_kube_factory) -> FakeKubeServer:
    return fake_kube_factory()


@pytest.fixture
def core(server) -> client.CoreV1Api:
    return client.CoreV1Api(server.api_client())


@pytest.fixture
def held_server(fake_kube_factory) -> FakeKubeServer:
    """Usage is released only by an explicit recalculation."""
    return fake_kube_factory(quota_release_delay=math.inf)


@pytest.fixture
def held_core(held_server) -> client.CoreV1Api:
    return client.CoreV1Api(held_server.api_client())


def test_a_quota_is_served_with_canonical_hard_limits_and_computed_usage(core):
    core.create_namespaced_pod(NS, pod_manifest("before", requests={"cpu": "250m"}, outcome="hang"))
    created = core.create_namespaced_resource_quota(
        NS, quota({"requests.cpu": "1000m", "requests.memory": "1024Mi", "pods": "5"})
    )
    assert created.spec.hard == {"pods": "5", "requests.cpu": "1", "requests.memory": "1Gi"}
    assert created.status.hard == created.spec.hard
    assert created.status.used == {"pods": "1", "requests.cpu": "250m", "requests.memory": "0"}
    assert [q.metadata.name for q in core.list_namespaced_resource_quota(NS).items] == ["compute"]
    assert core.read_namespaced_resource_quota_status("compute", NS).status.used["pods"] == "1"
    core.delete_namespaced_resource_quota("compute", NS)
    assert core.list_namespaced_resource_quota(NS).items == []


def test_a_quota_with_a_malformed_quantity_is_422(core):
    with pytest.raises(ApiException) as info:
        core.create_namespaced_resource_quota(NS, quota({"pods": "lots"}))
    assert info.value.status == 422
    assert refusal(info.value)["details"]["causes"][0]["field"] == "spec.hard[pods]"


def test_a_pod_exceeding_cpu_is_forbidden_with_the_apiservers_message(core, server):
    core.create_namespaced_resource_quota(NS, quota({"requests.cpu": "2", "limits.cpu": "4", "pods": "10"}))
    first = pod_manifest("a", requests={"cpu": "1500m"}, limits={"cpu": "3"}, outcome="hang")
    core.create_namespaced_pod(NS, first)
    with pytest.raises(ApiException) as info:
        core.create_namespaced_pod(NS, pod_manifest("b", requests={"cpu": "1"}, limits={"cpu": "2"}))
    body = refusal(info.value)
    assert (info.value.status, body["reason"], body["details"]) == (403, "Forbidden", {"name": "b", "kind": "pods"})
    assert body["message"] == (
        'pods "b" is forbidden: exceeded quota: compute, requested: limits.cpu=2,requests.cpu=1, '
        "used: limits.cpu=3,requests.cpu=1500m, limited: limits.cpu=4,requests.cpu=2"
    )
    assert server.cluster.pod(NS, "b") is None
    assert used(core) == {"limits.cpu": "3", "pods": "1", "requests.cpu": "1500m"}  # the refusal charged nothing


def test_only_the_exceeded_resources_are_named(core):
    core.create_namespaced_resource_quota(NS, quota({"requests.memory": "1Gi", "pods": "1"}))
    core.create_namespaced_pod(NS, pod_manifest("a", requests={"memory": "512Mi"}, outcome="hang"))
    with pytest.raises(ApiException) as info:
        core.create_namespaced_pod(NS, pod_manifest("b", requests={"memory": "256Mi"}))
    assert refusal(info.value)["message"].endswith("requested: pods=1, used: pods=1, limited: pods=1")


def test_usage_sums_containers_and_takes_the_largest_init_container(core):
    core.create_namespaced_resource_quota(
        NS, quota({"requests.cpu": "10", "requests.memory": "10Gi", "limits.memory": "10Gi"})
    )
    pod = pod_manifest("multi", requests={"cpu": "500m", "memory": "256Mi"}, limits={"memory": "512Mi"})
    pod["spec"]["containers"].append(
        {"name": "side", "image": "busybox", "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}}}
    )
    pod["spec"]["containers"][1]["resources"]["limits"] = {"memory": "256Mi"}
    pod["spec"]["initContainers"] = [
        {"name": "init", "image": "busybox", "resources": {"requests": {"cpu": "1", "memory": "128Mi"}}}
    ]
    pod["spec"]["initContainers"][0]["resources"]["limits"] = {"memory": "128Mi"}
    core.create_namespaced_pod(NS, pod)
    assert used(core) == {"limits.memory": "768Mi", "requests.cpu": "1", "requests.memory": "512Mi"}


def test_bare_cpu_and_memory_are_aliases_of_their_requests_and_gpus_count_as_extended_requests(core):
    core.create_namespaced_resource_quota(NS, quota({"cpu": "4", "memory": "4Gi", "requests.nvidia.com/gpu": "1"}))
    core.create_namespaced_pod(
        NS, pod_manifest("gpu", requests={"cpu": "2", "memory": "1Gi", "nvidia.com/gpu": "1"}, outcome="hang")
    )
    assert used(core) == {"cpu": "2", "memory": "1Gi", "requests.nvidia.com/gpu": "1"}
    with pytest.raises(ApiException) as info:
        core.create_namespaced_pod(
            NS, pod_manifest("gpu2", requests={"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": "1"})
        )
    assert "requested: requests.nvidia.com/gpu=1, used: requests.nvidia.com/gpu=1" in refusal(info.value)["message"]


def test_a_cpu_quota_refuses_containers_that_do_not_request_cpu(core):
    core.create_namespaced_resource_quota(NS, quota({"requests.cpu": "4", "limits.cpu": "8"}))
    pod = pod_manifest("loose", requests={"cpu": "1"})
    pod["spec"]["initContainers"] = [{"name": "init", "image": "busybox"}]
    with pytest.raises(ApiException) as info:
        core.create_namespaced_pod(NS, pod)
    assert refusal(info.value)["message"] == (
        'pods "loose" is forbidden: failed quota: compute: must specify limits.cpu,requests.cpu'
    )


def test_limits_alone_satisfy_the_request_constraint_because_requests_default_to_limits(core):
    core.create_namespaced_resource_quota(NS, quota({"requests.cpu": "4", "limits.cpu": "8"}))
    core.create_namespaced_pod(NS, pod_manifest("limited", limits={"cpu": "1"}))
    assert used(core) == {"limits.cpu": "1", "requests.cpu": "1"}


def test_a_gpu_only_quota_does_not_force_other_pods_to_request_gpus(core):
    core.create_namespaced_resource_quota(NS, quota({"requests.nvidia.com/gpu": "1"}))
    core.create_namespaced_pod(NS, pod_manifest("cpu-only"))


def test_by_default_a_finished_pod_frees_its_share_at_once(core, server):
    core.create_namespaced_resource_quota(NS, quota({"requests.cpu": "1"}))
    core.create_namespaced_pod(NS, pod_manifest("first", requests={"cpu": "1"}))
    server.cluster.wait_for_phase(NS, "first", "Succeeded")
    core.create_namespaced_pod(NS, pod_manifest("second", requests={"cpu": "1"}))


def test_usage_is_charged_at_create_and_released_only_by_a_recalculation(held_core, held_server):
    held_core.create_namespaced_resource_quota(NS, quota({"requests.cpu": "1", "count/pods": "10"}))
    held_core.create_namespaced_pod(NS, pod_manifest("first", requests={"cpu": "1"}))
    held_server.cluster.wait_for_phase(NS, "first", "Succeeded")
    with pytest.raises(ApiException) as info:
        held_core.create_namespaced_pod(NS, pod_manifest("second", requests={"cpu": "1"}))
    assert "used: requests.cpu=1" in refusal(info.value)["message"]
    assert held_server.cluster.resync_quotas(NS) == 1
    assert used(held_core) == {"count/pods": "1", "requests.cpu": "0"}  # terminal pods still exist as objects
    held_core.create_namespaced_pod(NS, pod_manifest("second", requests={"cpu": "1"}))
    assert used(held_core) == {"count/pods": "2", "requests.cpu": "1"}


def test_a_deleted_pod_is_released_by_the_quota_controller_after_the_delay(fake_kube_factory):
    server = fake_kube_factory(quota_release_delay=3600)
    core = client.CoreV1Api(server.api_client())
    core.create_namespaced_resource_quota(NS, quota({"pods": "1"}))
    server.cluster.pause()
    core.create_namespaced_pod(NS, pod_manifest("first"))
    core.delete_namespaced_pod("first", NS)
    with pytest.raises(ApiException):
        core.create_namespaced_pod(NS, pod_manifest("second"))
    server.cluster.flush()  # time passes on the simulation's clock: the controller's recalculation runs
    assert used(core) == {"pods": "0"}
    core.create_namespaced_pod(NS, pod_manifest("second"))


def test_every_nth_quota_charging_create_conflicts_and_stores_nothing(fake_kube_factory):
    server = fake_kube_factory(quota_conflict_every=3)
    core = client.CoreV1Api(server.api_client())
    core.create_namespaced_resource_quota(NS, quota({"pods": "100"}))
    core.create_namespaced_pod(NS, pod_manifest("p1"))
    core.create_namespaced_pod(NS, pod_manifest("p2"))
    with pytest.raises(ApiException) as info:
        core.create_namespaced_pod(NS, pod_manifest("p3"))
    body = refusal(info.value)
    assert (info.value.status, body["reason"]) == (409, "Conflict")
    assert body["message"] == (
        'Operation cannot be fulfilled on resourcequotas "compute": the object has been modified; please apply your '
        "changes to the latest version and try again"
    )
    assert body["details"] == {"name": "compute", "kind": "resourcequotas"}
    assert server.cluster.pod(NS, "p3") is None
    core.create_namespaced_pod(NS, pod_manifest("p3"))  # the retry goes through
    core.create_namespaced_pod("no-quota-here", pod_manifest("free"))  # namespaces without quota never conflict


def test_forced_conflicts_hit_exactly_the_next_creates(core, server):
    core.create_namespaced_resource_quota(NS, quota({"pods": "100"}))
    server.admission.quotas.conflict_next(2, namespace=NS)
    codes = []
    for i in range(4):
        try:
            core.create_namespaced_pod(NS, pod_manifest(f"p{i}"))
            codes.append(201)
        except ApiException as exc:
            codes.append(exc.status)
    assert codes == [409, 409, 201, 201]


def test_the_default_pod_count_shorthand_is_a_resource_quota_object(core, server):
    server.admission.set_quota(NS, 3)
    assert core.read_namespaced_resource_quota("pod-quota", NS).spec.hard == {"pods": "3"}
    server.admission.set_quota(NS, None)
    assert core.list_namespaced_resource_quota(NS).items == []


def test_recalculation_and_conflicts_can_be_driven_through_the_control_api(held_core, held_server):
    api = held_server.api_client()
    held_core.create_namespaced_resource_quota(NS, quota({"pods": "1"}))
    held_core.create_namespaced_pod(NS, pod_manifest("first"))
    held_server.cluster.wait_for_phase(NS, "first", "Succeeded")
    assert control(api, "POST", "quotas/resync", {"namespace": NS}) == {"changed": 1}
    control(api, "POST", "quotas/conflicts", {"times": 1})
    with pytest.raises(ApiException) as info:
        held_core.create_namespaced_pod(NS, pod_manifest("second"))
    assert info.value.status == 409
    held_core.create_namespaced_pod(NS, pod_manifest("second"))
    assert control(api, "GET", "admission")["quotas"] == {
        NS: {"compute": {"hard": {"pods": "1"}, "used": {"pods": "1"}}}
    }
