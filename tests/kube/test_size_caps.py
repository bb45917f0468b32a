"""Answers are capped in size and lists are read in pages, so no answer can exhaust the scheduler's memory.

The hostile server generates its big answers as it sends them; the client must refuse them after at
most its cap (``tracemalloc`` measures what the call allocated), without reading them whole.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest

from airflow_k8s.executor.contract.errors import Gone, ResponseTooLarge
from airflow_k8s.executor.kube.client import KubeClient
from tests.fakekube.manifests import pod_manifest
from tests.hostile.server import answer, huge, then_forward
from tests.kube.test_deadlines import outcome

MIB = 1 << 20
CAP = 1 * MIB


def write_and_compact(fake_kube: Any, name: str) -> None:
    KubeClient.for_host(fake_kube.url).create_pod("airflow", pod_manifest(name))
    fake_kube.faults.compact()


def peak_allocated(call: Callable[[], Any]) -> tuple[Any, int]:
    """What ``call`` returned or raised, and the peak of memory the process allocated meanwhile (bytes)."""
    tracemalloc.start()
    try:
        result = outcome(call)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_list_answer_over_the_cap_is_refused_without_being_read_whole(hostile, make_client, chunked):
    hostile.add(huge(64 * MIB, chunked=chunked), path="/pods")
    client = make_client(hostile.url, max_response_bytes=CAP, request_timeout=30.0)
    error, peak = peak_allocated(lambda: client.list_pods("airflow"))
    assert isinstance(error, ResponseTooLarge), error
    assert f"over the {CAP}-byte limit" in str(error) and "/api/v1/namespaces/airflow/pods" in str(error)
    assert peak < 8 * MIB, f"the call allocated {peak / MIB:.1f} MiB for a {CAP / MIB:.0f} MiB cap"


def test_a_declared_length_over_the_cap_is_refused_before_the_body_is_read(hostile, make_client):
    hostile.add(huge(64 * MIB), path="/pods")
    client = make_client(hostile.url, max_response_bytes=CAP)
    error = outcome(lambda: client.list_pods("airflow"))
    assert isinstance(error, ResponseTooLarge) and f"declares {64 * MIB} bytes" in str(error), error


def test_an_error_answer_over_the_cap_is_refused_too(hostile, make_client):
    hostile.add(huge(64 * MIB, status=500, chunked=True), method="POST")
    client = make_client(hostile.url, max_response_bytes=CAP)
    error, peak = peak_allocated(lambda: client.create_pod("airflow", {"metadata": {"name": "p"}}))
    assert isinstance(error, ResponseTooLarge), error
    assert peak < 8 * MIB


def test_answers_within_the_cap_are_read(hostile_fake, fake_kube, make_client):
    for i in range(3):
        fake_kube.cluster.pause()
        KubeClient.for_host(fake_kube.url).create_pod("airflow", pod_manifest(f"p{i}"))
    client = make_client(hostile_fake.url, max_response_bytes=CAP)
    assert len(client.list_pods("airflow").items) == 3


def test_every_list_is_read_in_pages(hostile_fake, make_client):
    client = make_client(hostile_fake.url)
    client.list_pods("airflow")
    client.list_nodes()
    client.pod_metrics("airflow")
    for path in ("/pods$", "/nodes$", "/metrics.k8s.io/v1beta1/namespaces/airflow/pods$"):
        requests = hostile_fake.seen("GET", path)
        assert requests and all("limit=" in r.query for r in requests), (path, [r.target for r in requests])


def test_a_list_whose_continue_token_expired_starts_again_from_the_first_page(hostile_fake, fake_kube, make_client):
    fake_kube.cluster.pause()
    seed = KubeClient.for_host(fake_kube.url)
    for i in range(5):
        seed.create_pod("airflow", pod_manifest(f"p{i}"))
    # Between the first and the second page a pod is written and etcd compacts the list's
    # resourceVersion away: the second page is a 410 Expired.
    hostile_fake.add(then_forward(lambda request: write_and_compact(fake_kube, "late")), query="continue=", times=1)
    client = make_client(hostile_fake.url)
    listing = client.list_pods("airflow", page_size=2)
    assert sorted(p["metadata"]["name"] for p in listing.items) == ["late", *(f"p{i}" for i in range(5))]
    firsts = [r for r in hostile_fake.seen("GET", "/pods$") if "continue=" not in r.query]
    assert len(firsts) == 2  # the list started over once


def test_a_list_whose_continue_token_keeps_expiring_gives_up(hostile_fake, fake_kube, make_client):
    fake_kube.cluster.pause()
    seed = KubeClient.for_host(fake_kube.url)
    for i in range(3):
        seed.create_pod("airflow", pod_manifest(f"p{i}"))
    names = (f"late{i}" for i in range(100))
    hostile_fake.add(then_forward(lambda request: write_and_compact(fake_kube, next(names))), query="continue=")
    client = make_client(hostile_fake.url)
    with pytest.raises(Gone):
        client.list_pods("airflow", page_size=2)


def test_a_server_repeating_a_continue_token_is_an_error_not_an_endless_list(hostile, make_client):
    page = b'{"kind":"PodList","metadata":{"continue":"same","resourceVersion":"5"},"items":[]}'
    hostile.add(answer(200, page), path="/pods")
    client = make_client(hostile.url)
    error = outcome(lambda: client.list_pods("airflow"))
    assert "continue token repeats" in str(error), error
