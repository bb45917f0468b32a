"""Fault injection: throttling, server errors, create-then-fail, cut connections, latency; request statistics.

Note on the stock client: urllib3's default ``Retry`` (which kubernetes==37 uses unless ``Configuration.retries``
is set) transparently retries *idempotent* requests (GET, PUT, DELETE...) answered 429/503 with a ``Retry-After``
header, sleeping for it; POST and PATCH are never retried, so they surface ``ApiException`` with the header.
"""

from __future__ import annotations

import json
import time

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException
from urllib3.exceptions import MaxRetryError, ProtocolError

from tests.fakekube import FaultRule
from tests.fakekube.manifests import pod_manifest

NS = "f"
PODS = r"/namespaces/f/pods$"


def no_retries(server) -> client.CoreV1Api:
    cfg = client.Configuration()
    cfg.host = server.url
    cfg.retries = False
    return client.CoreV1Api(client.ApiClient(cfg))


def test_throttled_create_is_429_with_retry_after_visible_to_the_client(fake_kube, core_v1):
    fake_kube.faults.throttle("POST", PODS, retry_after=2)
    with pytest.raises(ApiException) as info:
        core_v1.create_namespaced_pod(NS, pod_manifest("p"))
    assert info.value.status == 429
    assert info.value.headers["Retry-After"] == "2"
    body = json.loads(info.value.body)
    assert (body["reason"], body["details"]["retryAfterSeconds"]) == ("TooManyRequests", 2)
    assert fake_kube.cluster.pod(NS, "p") is None
    core_v1.create_namespaced_pod(NS, pod_manifest("p"))  # only the next request was throttled
    assert fake_kube.stats.count("POST", "pods", 429) == 1 and fake_kube.stats.count("POST", "pods", 201) == 1


def test_throttled_get_is_retried_by_urllib3_after_retry_after(fake_kube, core_v1):
    core_v1.create_namespaced_pod(NS, pod_manifest("p"))
    fake_kube.faults.throttle("GET", r"/pods/p$", retry_after=1)
    started = time.monotonic()
    assert core_v1.read_namespaced_pod("p", NS).metadata.name == "p"
    assert time.monotonic() - started >= 1.0
    assert fake_kube.stats.count("GET", "pods", 429) == 1


def test_with_retries_disabled_a_throttled_get_raises_with_the_header(fake_kube):
    core = no_retries(fake_kube)
    fake_kube.faults.throttle("GET", r"/pods/p$")
    with pytest.raises(ApiException) as info:
        core.read_namespaced_pod("p", NS)
    assert info.value.status == 429 and info.value.headers["Retry-After"] == "1"


@pytest.mark.parametrize(("status", "reason"), [(500, "InternalError"), (503, "ServiceUnavailable"), (504, "Timeout")])
def test_injected_server_errors_carry_status_bodies(fake_kube, core_v1, status, reason):
    fake_kube.faults.fail_next("POST", PODS, status=status)
    with pytest.raises(ApiException) as info:
        core_v1.create_namespaced_pod(NS, pod_manifest("p"))
    assert info.value.status == status
    assert json.loads(info.value.body)["reason"] == reason
    assert fake_kube.cluster.pod(NS, "p") is None


def test_create_that_fails_after_storing_leaves_the_pod_behind(fake_kube, core_v1):
    fake_kube.faults.fail_after_store(status=500)
    with pytest.raises(ApiException) as info:
        core_v1.create_namespaced_pod(NS, pod_manifest("p"))
    assert info.value.status == 500
    assert fake_kube.cluster.pod(NS, "p") is not None
    with pytest.raises(ApiException) as retry:
        core_v1.create_namespaced_pod(NS, pod_manifest("p"))  # a naive retry
    assert retry.value.status == 409
    assert fake_kube.stats.creates() == {(NS, "p"): 1}


def test_create_whose_connection_is_cut_after_storing_is_a_protocol_error(fake_kube, core_v1):
    fake_kube.faults.fail_after_store(status=None)
    with pytest.raises(ProtocolError):
        core_v1.create_namespaced_pod(NS, pod_manifest("p"))
    assert fake_kube.cluster.pod(NS, "p") is not None
    assert fake_kube.stats.count("POST", "pods", 0) == 1


def test_cut_connection_before_serving_stores_nothing(fake_kube):
    core = no_retries(fake_kube)
    fake_kube.faults.add(FaultRule(method="GET", path=r"/pods$", mode="close"))
    with pytest.raises((ProtocolError, MaxRetryError)):
        core.list_namespaced_pod(NS)
    assert core.list_namespaced_pod(NS).items == []


def test_injected_latency_delays_matching_requests_only(fake_kube, core_v1):
    fake_kube.faults.add_latency(0.3, method="GET", path=r"/pods$", times=1)
    started = time.monotonic()
    core_v1.list_namespaced_pod(NS)
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    core_v1.list_namespaced_pod(NS)
    assert time.monotonic() - started < 0.3


def test_latency_beyond_the_client_read_timeout_is_a_client_timeout(fake_kube, core_v1):
    fake_kube.faults.add_latency(1.0, method="GET", path=r"/pods$", times=1)
    core = no_retries(fake_kube)
    with pytest.raises(Exception, match=r"(?i)timed out"):
        core.list_namespaced_pod(NS, _request_timeout=(1, 0.2))


def test_probabilistic_faults_are_reproducible_with_a_seed(fake_kube, core_v1):
    def run() -> list[int]:
        fake_kube.faults.seed(7)
        rule = fake_kube.faults.add(method="GET", path=r"/version$", status=503, probability=0.5, times=None)
        codes = []
        for _ in range(20):
            response = core_v1.api_client.call_api(*core_v1.api_client.param_serialize("GET", "/version"))
            codes.append(response.status)
        fake_kube.faults.remove(rule)
        return codes

    first, second = run(), run()  # 503 without Retry-After: urllib3 does not retry
    assert first == second and 503 in first and 200 in first


def test_query_regex_targets_watches_only(fake_kube, core_v1):
    fake_kube.faults.add(method="GET", path=r"/pods$", query=r"watch=(true|1)", status=500, times=None)
    assert core_v1.list_namespaced_pod(NS).items == []
    with pytest.raises(ApiException):
        core_v1.list_namespaced_pod(NS, watch=True, timeout_seconds=1, _preload_content=False)
    assert fake_kube.stats.count(method="WATCH", code=500) == 1


def test_stats_count_requests_by_method_resource_and_code(fake_kube, core_v1):
    core_v1.create_namespaced_pod(NS, pod_manifest("a"))
    core_v1.read_namespaced_pod("a", NS)
    with pytest.raises(ApiException):
        core_v1.read_namespaced_pod("missing", NS)
    stats = fake_kube.stats
    assert stats.count("POST", "pods", 201) == 1
    assert stats.count("GET", "pods", 200) == 1
    assert stats.count("GET", "pods", 404) == 1
    assert stats.count(resource="pods") == 3
    fake_kube.cluster.wait_for_phase(NS, "a", "Succeeded")
    core_v1.delete_namespaced_pod("a", NS)
    records = stats.pods()
    assert [(r.name, r.phase) for r in records] == [("a", "Succeeded")]
    assert records[0].deleted_at is not None and records[0].node == "fakekube-node"
    assert stats.duplicate_creates() == {}
