"""Every API call ends within its deadline - connect, headers and body together - and a shutdown cuts calls in flight.

The hostile server drips its answers a byte at a time, faster than any per-read timeout: only a
deadline for the whole exchange ends such a call.  Each call runs in a thread the test joins with a
generous bound, so a client without deadlines fails the test instead of hanging it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from airflow_k8s.executor.contract.errors import Cancelled, DeadlineExceeded, KubeApiError
from airflow_k8s.executor.kube.client import KubeClient
from tests.fakekube.cluster import wait_for
from tests.hostile.server import drip, drip_body, hang, trickle
from tests.kube.conftest import WAIT


def outcome(call: Callable[[], Any], bound: float = WAIT) -> BaseException | Any:
    """What ``call`` returned or raised, run in a thread; fails when it is still running after ``bound`` seconds."""
    result: list[Any] = []

    def run() -> None:
        try:
            result.append(call())
        except BaseException as exc:
            result.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(bound)
    assert not thread.is_alive(), f"the call was still running after {bound:.0f}s"
    return result[0]


def watch(client: KubeClient, *, timeout_seconds: int = 300) -> Any:
    stream = client.watch_pods(
        "airflow", label_selector=None, resource_version="1", timeout_seconds=timeout_seconds, read_timeout=30
    )
    return list(stream)


def test_an_answer_dripped_a_byte_at_a_time_fails_at_the_request_deadline(hostile, make_client):
    hostile.add(drip(0.2), path="/pods")  # ~4 KB at 5 bytes/s: about 14 minutes, never a 1 s read timeout
    client = make_client(hostile.url, request_timeout=1.0)
    error = outcome(lambda: client.list_pods("airflow"))
    assert isinstance(error, DeadlineExceeded), error
    assert "GET http://" in str(error) and "/api/v1/namespaces/airflow/pods" in str(error)
    assert "no complete answer within the 1s deadline" in str(error)


def test_a_body_dripped_after_prompt_headers_fails_at_the_request_deadline(hostile, make_client):
    hostile.add(drip_body(0.2), path="/pods")
    client = make_client(hostile.url, request_timeout=1.0)
    error = outcome(lambda: client.get_pod("airflow", "p"))
    assert isinstance(error, DeadlineExceeded), error


def test_the_deadline_of_a_connect_and_read_pair_is_their_sum(hostile, make_client):
    hostile.add(drip(0.2), path="/pods")
    client = make_client(hostile.url, request_timeout=(0.5, 1.0))
    error = outcome(lambda: client.list_pods("airflow"))
    assert isinstance(error, DeadlineExceeded) and "1.5s deadline" in str(error), error


def test_a_pod_create_that_drips_fails_at_the_deadline_and_the_next_call_works(hostile_fake, fake_kube, make_client):
    hostile_fake.add(drip(0.2, status=201), method="POST", path="/pods$", times=1)
    client = make_client(hostile_fake.url, request_timeout=1.0)
    error = outcome(lambda: client.create_pod("airflow", {"metadata": {"name": "p"}, "spec": {"containers": []}}))
    assert isinstance(error, DeadlineExceeded) and error.status == 0, error  # retried like a lost connection
    assert client.list_pods("airflow").items == []  # a cut connection is never reused


def test_a_watch_whose_headers_drip_fails_at_the_request_deadline(hostile, make_client):
    hostile.add(drip(0.2), query="watch=true")
    client = make_client(hostile.url, request_timeout=1.0)
    error = outcome(lambda: watch(client))
    assert isinstance(error, DeadlineExceeded), error


def test_a_watch_that_trickles_blank_lines_for_ever_ends_after_its_timeout_and_the_request_deadline(
    hostile, make_client
):
    hostile.add(trickle(0.1), query="watch=true")  # alive to any read timeout, and never ending by itself
    client = make_client(hostile.url, request_timeout=1.0)
    error = outcome(lambda: watch(client, timeout_seconds=1))
    assert isinstance(error, DeadlineExceeded) and "outlived its deadline" in str(error), error


def test_cancelling_a_client_cuts_its_calls_in_flight_and_refuses_new_ones(hostile, make_client):
    hostile.add(hang(), path="/pods")
    client = make_client(hostile.url, request_timeout=600.0)
    view = client.scoped()
    results: list[BaseException | Any] = []
    thread = threading.Thread(target=lambda: results.append(outcome(lambda: view.list_pods("airflow"))))
    thread.start()
    wait_for(lambda: hostile.seen("GET", "/pods"), WAIT, message="the list never reached the server")
    wait_for(lambda: view.cancel() == 1, WAIT, message="the call was not in flight")
    thread.join(WAIT)
    assert isinstance(results[0], Cancelled) and "shutting down" in str(results[0]), results
    with pytest.raises(Cancelled):
        view.get_pod("airflow", "p")
    # The client the view came from is not cancelled: only the view's calls were.
    hostile.clear()
    with pytest.raises(KubeApiError) as info:
        client.get_pod("airflow", "p")
    assert info.value.status == 404


def test_closing_a_client_cuts_a_call_blocked_on_a_silent_server(hostile, make_client):
    hostile.add(hang(), path="/pods")
    client = make_client(hostile.url, request_timeout=600.0)
    results: list[Any] = []
    thread = threading.Thread(target=lambda: results.append(outcome(lambda: client.list_pods("airflow"))))
    thread.start()
    wait_for(lambda: hostile.seen("GET", "/pods"), WAIT, message="the list never reached the server")
    client.close()
    thread.join(WAIT)
    assert isinstance(results[0], Cancelled), results
