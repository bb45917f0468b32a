"""Answers that cannot be used are one clear error naming the server, the request and what was wrong.

Garbage JSON, an HTML page (a proxy's or a load balancer's), a JSON array where an object belongs, a
201 whose body is garbage: each is a ``BadResponse`` (retried like a lost connection, since the
request may have been applied), never a ``ValueError`` or ``AttributeError`` escaping the client.
"""

from __future__ import annotations

import re

import pytest

from airflow_k8s.executor.contract.errors import BadResponse, KubeApiError
from airflow_k8s.executor.kube.retry import is_retryable
from tests.hostile.server import answer
from tests.kube.test_deadlines import outcome

HTML = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"

LIST_ANSWERS = {
    "garbage JSON": (answer(200, b'{"kind":"PodList","items":[{"metad'), "answer is not valid JSON"),
    "an HTML page": (answer(200, HTML, content_type="text/html"), "answer is text/html, not JSON: '<html>"),
    "a JSON array": (answer(200, b'[{"kind":"Pod"}]'), "answer is a JSON array, expected an object"),
    "items that are not objects": (answer(200, b'{"items":[1,2]}'), "items is not a list of objects"),
    "metadata that is not an object": (answer(200, b'{"items":[],"metadata":[]}'), "metadata is a JSON array"),
    "JSON nested too deep": (answer(200, b"[" * 100_000), "answer is not valid JSON"),
}


@pytest.mark.parametrize("bad", LIST_ANSWERS.values(), ids=LIST_ANSWERS.keys())
def test_a_list_answer_that_is_not_a_list_is_a_bad_response_naming_the_server_and_request(hostile, make_client, bad):
    behaviour, what = bad
    hostile.add(behaviour, path="/pods")
    client = make_client(hostile.url)
    error = outcome(lambda: client.list_pods("airflow"))
    assert isinstance(error, BadResponse), repr(error)
    assert what in str(error)
    assert re.search(r"GET http://[^ ]+/api/v1/namespaces/airflow/pods: ", str(error)), str(error)
    assert is_retryable(error)


def test_a_201_with_a_garbage_body_is_a_bad_response_with_its_status(hostile, make_client):
    hostile.add(answer(201, b"\x00\xffnot json\nINFO forged log line"), method="POST")
    client = make_client(hostile.url)
    error = outcome(lambda: client.create_pod("airflow", {"metadata": {"name": "p"}}))
    assert isinstance(error, BadResponse) and error.status == 201, repr(error)
    assert "POST http://" in str(error) and "HTTP 201 answer is not valid JSON" in str(error)
    assert "\n" not in str(error)  # the body is quoted escaped: it cannot forge a log line
    assert is_retryable(error)  # the pod may exist: the create is retried and finds it by name


def test_an_error_answer_that_is_an_html_page_keeps_its_status(hostile, make_client):
    hostile.add(answer(503, HTML, content_type="text/html"), method="GET")
    client = make_client(hostile.url)
    error = outcome(lambda: client.get_pod("airflow", "p"))
    assert isinstance(error, KubeApiError) and error.status == 503, repr(error)
    assert "<title>502 Bad Gateway" in str(error)


def test_a_pod_answer_that_is_a_json_string_is_a_bad_response(hostile, make_client):
    hostile.add(answer(200, b'"a pod"'), method="GET")
    client = make_client(hostile.url)
    error = outcome(lambda: client.get_pod("airflow", "p"))
    assert isinstance(error, BadResponse) and "a JSON string, expected an object" in str(error), repr(error)
