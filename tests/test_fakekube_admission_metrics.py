"""Admission (Pod Security "restricted", pod-count quota) and the metrics.k8s.io API of the fake server."""

from __future__ import annotations

import json

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.fakekube import Behavior
from tests.fakekube.manifests import pod_manifest, restricted

NS = "adm"


def forbidden_message(exc: ApiException) -> str:
    body = json.loads(exc.body)
    assert (exc.status, body["reason"], body["code"]) == (403, "Forbidden", 403)
    return body["message"]


def test_pod_security_restricted_rejects_a_default_pod(fake_kube, core_v1):
    fake_kube.admission.enforce_pod_security()
    with pytest.raises(ApiException) as info:
        core_v1.create_namespaced_pod(NS, pod_manifest("loose"))
    message = forbidden_message(info.value)
    assert message.startswith('pods "loose" is forbidden: violates PodSecurity "restricted:latest": ')
    for fragment in (
        'allowPrivilegeEscalation != false (container "base" must set securityContext.allowPrivilegeEscalation=false)',
        'unrestricted capabilities (container "base" must set securityContext.capabilities.drop=["ALL"])',
        'runAsNonRoot != true (pod or container "base" must set securityContext.runAsNonRoot=true)',
        'seccompProfile (pod or container "base" must set securityContext.seccompProfile.type to "RuntimeDefault"',
    ):
        assert fragment in message
    assert fake_kube.cluster.pod(NS, "loose") is None


def test_pod_security_restricted_admits_a_compliant_pod(fake_kube, core_v1):
    fake_kube.admission.enforce_pod_security()
    core_v1.create_namespaced_pod(NS, restricted(pod_manifest("tight")))


@pytest.mark.parametrize(
    ("tweak", "fragment"),
    [
        (lambda p: p["spec"].update(hostNetwork=True), "host namespaces (hostNetwork=true)"),
        (lambda p: p["spec"]["containers"][0]["securityContext"].update(privileged=True), "privileged ("),
        (lambda p: p["spec"]["securityContext"].update(runAsUser=0), "runAsUser=0 (pod must not set runAsUser=0)"),
        (
            lambda p: p["spec"]["containers"][0]["securityContext"]["capabilities"].update(add=["SYS_ADMIN"]),
            'must not include "SYS_ADMIN" in securityContext.capabilities.add',
        ),
        (
            lambda p: p["spec"].update(volumes=[{"name": "host", "hostPath": {"path": "/"}}]),
            'hostPath volumes (volume "host")',
        ),
    ],
)
def test_pod_security_names_each_violation(fake_kube, core_v1, tweak, fragment):
    fake_kube.admission.enforce_pod_security()
    pod = restricted(pod_manifest("p"))
    tweak(pod)
    with pytest.raises(ApiException) as info:
        core_v1.create_namespaced_pod(NS, pod)
    assert fragment in forbidden_message(info.value)


def test_pod_security_can_be_limited_to_some_namespaces(fake_kube, core_v1):
    fake_kube.admission.enforce_pod_security(namespaces=["locked"])
    core_v1.create_namespaced_pod("open", pod_manifest("p"))
    with pytest.raises(ApiException):
        core_v1.create_namespaced_pod("locked", pod_manifest("p"))


def test_pod_quota_rejects_creates_beyond_the_limit_and_ignores_finished_pods(fake_kube, core_v1):
    fake_kube.admission.set_quota(NS, 2)
    core_v1.create_namespaced_pod(NS, pod_manifest("a", outcome="hang"))
    core_v1.create_namespaced_pod(NS, pod_manifest("b"))
    with pytest.raises(ApiException) as info:
        core_v1.create_namespaced_pod(NS, pod_manifest("c"))
    assert forbidden_message(info.value) == (
        'pods "c" is forbidden: exceeded quota: pod-quota, requested: pods=1, used: pods=2, limited: pods=2'
    )
    fake_kube.cluster.wait_for_phase(NS, "b", "Succeeded")
    core_v1.create_namespaced_pod(NS, pod_manifest("c"))  # Succeeded pods no longer count
    core_v1.create_namespaced_pod("elsewhere", pod_manifest("d"))  # other namespaces are unaffected


def metrics(api: client.ApiClient, path: str):
    return api.call_api(*api.param_serialize("GET", f"/apis/metrics.k8s.io/v1beta1{path}"))


def test_pod_metrics_report_usage_as_a_fraction_of_requests(fake_kube, core_v1, kube_api_client):
    fake_kube.cluster.behavior = lambda pod: Behavior(outcome="hang", cpu_usage=0.25, memory_usage=0.5)
    requests = {"cpu": "1", "memory": "256Mi"}
    core_v1.create_namespaced_pod(NS, pod_manifest("busy", requests=requests, labels={"app": "x"}))
    core_v1.create_namespaced_pod(NS, pod_manifest("other", requests=requests))
    fake_kube.cluster.wait_for_phase(NS, "busy", "Running")
    fake_kube.cluster.wait_for_phase(NS, "other", "Running")
    custom = client.CustomObjectsApi(kube_api_client)
    listing = custom.list_namespaced_custom_object("metrics.k8s.io", "v1beta1", NS, "pods", label_selector="app=x")
    assert listing["kind"] == "PodMetricsList"
    [item] = listing["items"]
    assert item["metadata"]["name"] == "busy"
    assert item["containers"] == [{"name": "base", "usage": {"cpu": "250000000n", "memory": "131072Ki"}}]
    one = custom.get_namespaced_custom_object("metrics.k8s.io", "v1beta1", NS, "pods", "other")
    assert one["kind"] == "PodMetrics"
    nodes = json.loads(metrics(kube_api_client, "/nodes").read())
    assert nodes["kind"] == "NodeMetricsList" and nodes["items"][0]["usage"]["cpu"] == "600000000n"


def test_pods_that_are_not_running_have_no_metrics(fake_kube, core_v1, kube_api_client):
    fake_kube.cluster.pause()
    core_v1.create_namespaced_pod(NS, pod_manifest("pending"))
    assert json.loads(metrics(kube_api_client, f"/namespaces/{NS}/pods").read())["items"] == []
    assert metrics(kube_api_client, f"/namespaces/{NS}/pods/pending").status == 404


def test_metrics_api_can_be_switched_off(fake_kube, kube_api_client):
    fake_kube.configure(metrics_enabled=False)
    response = metrics(kube_api_client, f"/namespaces/{NS}/pods")
    assert response.status == 404
    assert json.loads(response.read())["message"] == "the server could not find the requested resource"
    with pytest.raises(ApiException) as info:
        client.CustomObjectsApi(kube_api_client).list_cluster_custom_object("metrics.k8s.io", "v1beta1", "nodes")
    assert info.value.status == 404
