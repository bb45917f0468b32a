"""A watch reads bounded lines: an event longer than the cap ends the watch (and the watcher relists).

``endless_line`` streams one event that never ends; before the cap, the client kept every byte of it
(and copied the whole line again for every chunk).
"""

from __future__ import annotations

import logging
import threading

from airflow_k8s.executor.contract.errors import BadResponse, ResponseTooLarge
from airflow_k8s.executor.kube.client import KubeClient
from airflow_k8s.executor.kube.watcher import Watcher
from tests.fakekube.cluster import wait_for
from tests.hostile.server import endless_line, watch_lines
from tests.kube.conftest import WAIT
from tests.kube.test_deadlines import outcome, watch
from tests.kube.test_size_caps import CAP, MIB, peak_allocated


def test_a_watch_event_that_never_ends_is_cut_at_the_cap(hostile, make_client):
    hostile.add(endless_line(pause=0.005), query="watch=true")  # paced: a client without a cap grows slowly
    client = make_client(hostile.url, max_response_bytes=CAP, request_timeout=30.0)
    error, peak = peak_allocated(lambda: watch(client))
    assert isinstance(error, ResponseTooLarge), error
    assert f"an event longer than {CAP} bytes" in str(error) and "watch GET http://" in str(error)
    assert peak < 8 * MIB, f"the watch allocated {peak / MIB:.1f} MiB for a {CAP / MIB:.0f} MiB cap"


def test_events_split_into_many_pieces_are_read_whole_and_a_line_at_the_cap_is_accepted(hostile, make_client):
    big = b'{"type":"ADDED","object":{"metadata":{"name":"p","resourceVersion":"7"},"x":"' + b"y" * (CAP - 100)
    big += b'"}}'
    small = b'{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"8"}}}'
    hostile.add(watch_lines(big, small, small, piece=997), query="watch=true")
    client = make_client(hostile.url, max_response_bytes=CAP)
    events = outcome(lambda: watch(client))
    assert [e["type"] for e in events] == ["ADDED", "BOOKMARK", "BOOKMARK"], events
    assert len(events[0]["object"]["x"]) == CAP - 100


def test_a_line_that_is_not_an_event_is_a_bad_response_naming_it(hostile, make_client):
    hostile.add(watch_lines(b'["not", "an", "event"]'), query="watch=true")
    client = make_client(hostile.url)
    error = outcome(lambda: watch(client))
    assert isinstance(error, BadResponse) and "an event must be an object with a type" in str(error), error


def test_an_oversize_event_ends_the_watch_with_a_logged_reason_and_a_relist(hostile_fake, fake_kube, caplog):
    hostile_fake.add(endless_line(pause=0.005), query="watch=true", times=1)
    client = KubeClient.for_host(hostile_fake.url, max_response_bytes=CAP, request_timeout=30.0)
    relists: list[str] = []
    restarts: list[str] = []
    watcher = Watcher(
        client,
        "airflow",
        "app=x",
        on_event=lambda kind, pod: None,
        on_relist=lambda items, rv: relists.append(rv),
        on_restart=restarts.append,
        timeout_seconds=30,
        max_backoff=0.2,
    )
    with caplog.at_level(logging.WARNING, logger="airflow_k8s.executor.kube.watcher"):
        watcher.start()
        try:
            wait_for(lambda: len(relists) >= 2 and watcher.connected.is_set(), WAIT, message="no relist")
        finally:
            watcher.stop()
            client.close()
    assert restarts[0] == "bad_response"
    lines = [r for r in caplog.records if "watch ended" in r.getMessage()]
    assert len(lines) == 1 and f"longer than {CAP} bytes" in lines[0].getMessage() and lines[0].exc_info is None
    assert not any(t.name == "pod-watcher" for t in threading.enumerate())
