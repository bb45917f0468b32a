"""The fake's simulated apiserver restart: connections cut, downtime, 410 for old versions, then an RBAC window.

A real kube-apiserver refuses valid credentials with RBAC 403s for 0.1-0.6 s after it restarts
(its authorizer's caches are not synced); ``rbac_sync_delay`` models it (strict: 0.6 s).  The
windows here are long, so no assertion depends on how fast the test runs; that a window ends is
waited for, with a generous deadline.
"""

from __future__ import annotations

import json
import urllib.request

import pytest
import urllib3
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.fakekube import ClusterConfig, FakeKubeServer
from tests.fakekube.cluster import wait_for
from tests.fakekube.manifests import pod_manifest

NS = "airflow"


def core_for(server: FakeKubeServer) -> client.CoreV1Api:
    return client.CoreV1Api(server.api_client())


def test_after_a_restart_valid_requests_get_the_rbac_403_of_an_unsynced_authorizer(fake_kube_factory):
    server = fake_kube_factory(rbac_sync_delay=3600)
    core = core_for(server)
    core.create_namespaced_pod(NS, pod_manifest("before"))
    server.restart()
    with pytest.raises(ApiException) as create:
        core.create_namespaced_pod(NS, pod_manifest("during"))
    assert create.value.status == 403
    body = json.loads(create.value.body)
    assert body["reason"] == "Forbidden" and body["message"] == (
        'pods is forbidden: User "system:serviceaccount:airflow:airflow-scheduler" cannot create resource "pods" '
        'in API group "" in the namespace "airflow"'
    )
    with pytest.raises(ApiException) as get:
        core.read_namespaced_pod("before", NS)
    assert json.loads(get.value.body)["message"].startswith('pods "before" is forbidden: User ')
    with pytest.raises(ApiException) as nodes:
        core.list_node()
    assert (
        'cannot list resource "nodes" in API group "" at the cluster scope' in json.loads(nodes.value.body)["message"]
    )
    # Health and version stay open (the apiserver's always-allowed paths); nothing was created meanwhile.
    with urllib.request.urlopen(f"{server.url}/readyz", timeout=10) as answer:  # noqa: S310 - loopback http
        assert answer.status == 200
    assert server.cluster.pod(NS, "during") is None and server.restarts.denied == 3


def test_the_rbac_window_ends_and_requests_are_served_again(fake_kube_factory):
    server = fake_kube_factory(rbac_sync_delay=0.5)
    core = core_for(server)
    server.restart()

    def served() -> bool:
        try:
            core.list_namespaced_pod(NS)
        except ApiException as exc:
            assert exc.status == 403
            return False
        return True

    wait_for(served, 60, interval=0.05, message="the RBAC window never ended")
    core.create_namespaced_pod(NS, pod_manifest("after"))


def test_a_restart_cuts_connections_and_watches_and_old_versions_are_gone(fake_kube_factory):
    server = fake_kube_factory()
    core = core_for(server)
    rv = core.list_namespaced_pod(NS).metadata.resource_version
    core.create_namespaced_pod(NS, pod_manifest("p"))
    stream = core.list_namespaced_pod(NS, watch=True, resource_version=rv, _preload_content=False, timeout_seconds=30)
    server.restart(downtime=3600)
    with pytest.raises(urllib3.exceptions.ProtocolError):
        stream.read()  # cut, without the stream's terminating chunk
    with pytest.raises(urllib3.exceptions.HTTPError):  # no answer at all while it is down
        core.list_namespaced_pod(NS, _request_timeout=5)
    server.restarts.begin(0, 0)  # up again
    again = core.list_namespaced_pod(NS, watch=True, resource_version=rv, timeout_seconds=1, _preload_content=False)
    assert b'"code":410' in again.read()  # the rebuilt watch cache no longer has the old version


def test_the_strict_preset_has_the_longest_rbac_window_measured_and_the_kind_default_none():
    assert ClusterConfig.strict().rbac_sync_delay == 0.6 and ClusterConfig().rbac_sync_delay == 0


def test_restart_is_reachable_from_the_control_api(fake_kube_factory):
    server = fake_kube_factory(rbac_sync_delay=3600)
    request = urllib.request.Request(  # noqa: S310 - loopback http
        f"{server.url}/_fake/restart",
        data=b'{"downtime": 0}',
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - loopback http
        assert json.loads(answer.read()) == {"restarts": 1}
    with pytest.raises(ApiException) as denied:
        core_for(server).list_namespaced_pod(NS)
    assert denied.value.status == 403
