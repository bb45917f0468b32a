"""The fake's overloaded-server mode: a concurrency and rate budget, queueing, then 429 with Retry-After."""

from __future__ import annotations

import threading

import pytest

from airflow_k8s.executor.contract.errors import KubeApiError
from airflow_k8s.executor.kube.client import KubeClient
from tests.fakekube import ClusterConfig
from tests.fakekube.errors import ApiError
from tests.fakekube.manifests import pod_manifest
from tests.fakekube.overload import Overload

WAIT = 60.0


def overload(**knobs: object) -> Overload:
    config = ClusterConfig.strict(**knobs)
    return Overload(lambda: config)


def test_it_is_off_unless_a_budget_is_set():
    assert not overload().guards("POST")
    assert not ClusterConfig.strict().overload_concurrency and not ClusterConfig.strict().overload_rate


def test_requests_beyond_the_seats_and_the_queue_get_429_with_retry_after():
    gate = overload(overload_concurrency=2, overload_queue=0, overload_retry_after=3)
    seats = [gate.admit("POST"), gate.admit("DELETE")]
    with pytest.raises(ApiError) as info:
        gate.admit("POST")
    assert info.value.code == 429 and ("Retry-After", "3") in info.value.headers
    assert gate.figures()["rejected"] == 1 and gate.figures()["peak_executing"] == 2
    gate.release(seats[0])
    assert gate.admit("PATCH") is not None  # a freed seat is taken again


def test_a_queued_request_waits_for_a_seat_and_a_full_queue_refuses():
    gate = overload(overload_concurrency=1, overload_queue=1)
    first = gate.admit("POST")
    admitted = threading.Event()
    waiter = threading.Thread(target=lambda: (gate.admit("POST"), admitted.set()))
    waiter.start()
    while gate._waiting == 0:  # the second request is queued behind the first
        assert waiter.is_alive()
        threading.Event().wait(0.005)
    with pytest.raises(ApiError):  # seat taken, queue full
        gate.admit("POST")
    assert not admitted.is_set()
    gate.release(first)
    assert admitted.wait(WAIT)
    waiter.join(WAIT)
    assert gate.figures()["admitted"] == 2 and gate.figures()["rejected"] == 1


def test_a_rate_budget_refuses_once_its_burst_is_spent():
    gate = overload(overload_rate=0.001, overload_burst=3)
    for _ in range(3):
        gate.release(gate.admit("POST"))
    with pytest.raises(ApiError):
        gate.admit("POST")


def test_reads_pass_unless_every_verb_is_guarded():
    assert not overload(overload_concurrency=1).guards("GET")
    assert overload(overload_concurrency=1, overload_verbs="all").guards("GET")
    with pytest.raises(ValueError, match="overload_verbs"):
        ClusterConfig.strict(overload_verbs="some")


def test_over_http_the_429_carries_retry_after_and_the_connection_stays_usable(fake_kube_factory):
    server = fake_kube_factory(strict=True, overload_rate=0.001, overload_burst=2)
    kube = KubeClient.for_host(server.url)
    try:
        for name in ("a", "b"):
            kube.create_pod("ns", pod_manifest(name))
        with pytest.raises(KubeApiError) as info:
            kube.create_pod("ns", pod_manifest("c"))
        assert (info.value.status, info.value.retry_after, info.value.reason) == (429, 1.0, "TooManyRequests")
        assert kube.get_pod("ns", "a")["metadata"]["name"] == "a"  # reads pass; the refused body was consumed
        figures = kube.request("GET", "/_fake/stats")["overload"]
        assert (figures["admitted"], figures["rejected"]) == (2, 1)
        assert server.cluster.pod("ns", "c") is None
    finally:
        kube.close()


def test_stats_show_when_the_first_pod_ran(fake_kube_factory):
    server = fake_kube_factory(strict=True)
    kube = KubeClient.for_host(server.url)
    try:
        kube.create_pod("ns", pod_manifest("r"))
        server.cluster.wait_for_phase("ns", "r", "Succeeded")
        record = server.stats.pod("ns", "r")
        assert record is not None and record.running_at is not None and record.running_at >= record.created_at
    finally:
        kube.close()
