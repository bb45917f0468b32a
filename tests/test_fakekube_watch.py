"""Watch semantics of the fake API server: replay from a resourceVersion, initial ADDED events, bookmarks, 410
Expired (how the raw stream and the stock ``kubernetes.watch.Watch`` surface it), dropped connections, selectors.

How kubernetes==37's ``Watch().stream`` handles the 410 ERROR event: with ``timeout_seconds`` it raises
``ApiException(status=410, reason="Expired: too old resource version: ...")`` at once; without it, it retries the
watch once from the same resourceVersion (the server answers 410 again) and then raises the same ApiException.
"""

from __future__ import annotations

import json
import threading
import time

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException
from urllib3.exceptions import ProtocolError

from tests.fakekube import FakeKubeServer
from tests.fakekube.manifests import collect, names, pod_manifest, watch_events

NS = "w"


def hang(name: str, **labels: str) -> dict:
    return pod_manifest(name, labels=labels, outcome="hang")


def list_rv(core: client.CoreV1Api) -> str:
    return json.loads(core.list_namespaced_pod(NS, _preload_content=False).data)["metadata"]["resourceVersion"]


def open_watch(core: client.CoreV1Api, *, namespace: str | None = NS, **kwargs):
    kwargs.setdefault("timeout_seconds", 5)
    kwargs.setdefault("_request_timeout", (2, 10))
    if namespace is None:
        return core.list_pod_for_all_namespaces(watch=True, _preload_content=False, **kwargs)
    return core.list_namespaced_pod(namespace, watch=True, _preload_content=False, **kwargs)


@pytest.fixture
def paused(fake_kube):
    """The kubelet is paused so the only writes are the test's own."""
    fake_kube.cluster.pause()
    return fake_kube


def test_watch_from_a_resource_version_replays_exactly_the_missed_events(paused, core_v1):
    core_v1.create_namespaced_pod(NS, hang("before"))
    rv = list_rv(core_v1)
    core_v1.create_namespaced_pod(NS, hang("a"))
    core_v1.patch_namespaced_pod("before", NS, {"metadata": {"labels": {"k": "v"}}})
    core_v1.delete_namespaced_pod("a", NS)
    events = collect(open_watch(core_v1, resource_version=rv), 3)
    assert names(events) == [("ADDED", "a"), ("MODIFIED", "before"), ("DELETED", "a")]
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert rvs == sorted(rvs) and rvs[0] > int(rv)
    assert events[0]["object"]["kind"] == "Pod"  # full object snapshots


def test_watch_with_resource_version_zero_lists_then_streams(paused, core_v1):
    core_v1.create_namespaced_pod(NS, hang("old-1"))
    core_v1.create_namespaced_pod(NS, hang("old-2"))
    response = open_watch(core_v1, resource_version="0")
    threading.Timer(0.1, lambda: core_v1.create_namespaced_pod(NS, hang("new"))).start()
    assert names(collect(response, 3)) == [("ADDED", "old-1"), ("ADDED", "old-2"), ("ADDED", "new")]


def test_cluster_wide_watch_sees_every_namespace(paused, core_v1):
    response = open_watch(core_v1, namespace=None, resource_version=list_rv(core_v1))
    core_v1.create_namespaced_pod("one", hang("x"))
    core_v1.create_namespaced_pod("two", hang("y"))
    events = collect(response, 2)
    assert [(e["object"]["metadata"]["namespace"], e["object"]["metadata"]["name"]) for e in events] == [
        ("one", "x"),
        ("two", "y"),
    ]


def test_bookmarks_arrive_and_carry_the_current_resource_version(core_v1):
    with FakeKubeServer(bookmark_interval=0.05) as server:
        core = client.CoreV1Api(server.api_client())
        core.create_namespaced_pod(NS, hang("p"))
        server.cluster.wait_for_phase(NS, "p", "Running")
        response = open_watch(core, resource_version=list_rv(core), allow_watch_bookmarks=True)
        event = collect(response, 1)[0]
        assert event["type"] == "BOOKMARK"
        assert event["object"] == {
            "kind": "Pod",
            "apiVersion": "v1",
            "metadata": {"resourceVersion": str(server.store.rv)},
        }


def test_no_bookmarks_unless_asked_and_stream_ends_cleanly_at_timeout(core_v1):
    with FakeKubeServer(bookmark_interval=0.05) as server:
        core = client.CoreV1Api(server.api_client())
        started = time.monotonic()
        response = open_watch(core, resource_version=str(server.store.rv), timeout_seconds=1)
        assert list(watch_events(response)) == []  # no ProtocolError: the terminating chunk was sent
        assert 0.9 <= time.monotonic() - started < 3
        server.wait_for(lambda: server.open_watches == 0)


def test_compaction_makes_old_resource_versions_expire_with_a_410_error_event(paused, core_v1):
    fake_kube = paused
    rv = list_rv(core_v1)
    core_v1.create_namespaced_pod(NS, hang("p"))
    fake_kube.compact()
    response = open_watch(core_v1, resource_version=rv)
    assert response.status == 200
    events = list(watch_events(response))
    assert len(events) == 1 and events[0]["type"] == "ERROR"
    status = events[0]["object"]
    assert status["code"] == 410 and status["reason"] == "Expired" and status["kind"] == "Status"
    assert status["message"].startswith(f"too old resource version: {rv} (")
    # the compaction point itself is still valid
    assert json.loads(core_v1.list_namespaced_pod(NS, _preload_content=False).data)["items"]
    assert list(watch_events(open_watch(core_v1, resource_version=str(fake_kube.store.rv), timeout_seconds=1))) == []


def test_bounded_history_expires_resource_versions_that_fell_out_of_it():
    with FakeKubeServer(history_size=3) as server:
        server.cluster.pause()
        core = client.CoreV1Api(server.api_client())
        rv = list_rv(core)
        for i in range(5):
            core.create_namespaced_pod(NS, hang(f"p{i}"))
        events = list(watch_events(open_watch(core, resource_version=rv)))
        assert events[0]["object"]["code"] == 410
        recent = collect(open_watch(core, resource_version=str(server.store.rv - 2)), 2)
        assert names(recent) == [("ADDED", "p3"), ("ADDED", "p4")]


def test_stock_watch_with_timeout_raises_api_exception_410(fake_kube, core_v1):
    rv = list_rv(core_v1)
    core_v1.create_namespaced_pod(NS, hang("p"))
    fake_kube.compact()
    with pytest.raises(ApiException) as info:
        list(watch.Watch().stream(core_v1.list_namespaced_pod, NS, resource_version=rv, timeout_seconds=2))
    assert info.value.status == 410
    assert info.value.reason.startswith("Expired: too old resource version")
    assert fake_kube.stats.count(method="WATCH") == 1


def test_stock_watch_without_timeout_retries_once_then_raises_410(fake_kube, core_v1):
    rv = list_rv(core_v1)
    core_v1.create_namespaced_pod(NS, hang("p"))
    fake_kube.compact()
    with pytest.raises(ApiException) as info:
        list(watch.Watch().stream(core_v1.list_namespaced_pod, NS, resource_version=rv))
    assert info.value.status == 410
    assert fake_kube.stats.count(method="WATCH") == 2


def test_expire_watches_sends_410_to_open_watches(paused, core_v1):
    response = open_watch(core_v1, resource_version=list_rv(core_v1))
    paused.wait_for(lambda: paused.open_watches == 1)
    assert paused.expire_watches() == 1
    events = list(watch_events(response))
    assert [e["object"]["code"] for e in events] == [410]
    paused.wait_for(lambda: paused.open_watches == 0)


def test_dropped_watch_connection_is_a_protocol_error_for_the_client(paused, core_v1):
    response = open_watch(core_v1, resource_version="0")
    paused.wait_for(lambda: paused.open_watches == 1)
    threading.Timer(0.05, paused.drop_watches).start()
    with pytest.raises(ProtocolError):
        list(watch_events(response))
    paused.wait_for(lambda: paused.open_watches == 0)


def test_stock_watch_surfaces_a_dropped_connection_as_protocol_error(paused, core_v1):
    core_v1.create_namespaced_pod(NS, hang("p"))
    threading.Timer(0.2, paused.drop_watches).start()
    seen = []
    with pytest.raises(ProtocolError):
        for event in watch.Watch().stream(core_v1.list_namespaced_pod, NS, timeout_seconds=5):
            seen.append(event["type"])
    assert seen == ["ADDED"]


def test_server_notices_when_a_client_abandons_a_watch(paused, core_v1):
    response = open_watch(core_v1, resource_version="0")
    paused.wait_for(lambda: paused.open_watches == 1)
    response.close()  # what Watch.stream does when it stops: close, then release
    response.release_conn()
    paused.wait_for(lambda: paused.open_watches == 0)


def test_label_selected_watch_sees_objects_enter_and_leave_the_selection(paused, core_v1):
    core_v1.create_namespaced_pod(NS, hang("p", team="blue"))
    response = open_watch(core_v1, resource_version=list_rv(core_v1), label_selector="team=red")
    core_v1.patch_namespaced_pod("p", NS, {"metadata": {"labels": {"team": "red"}}})
    core_v1.patch_namespaced_pod("p", NS, {"metadata": {"labels": {"extra": "1"}}})
    core_v1.patch_namespaced_pod("p", NS, {"metadata": {"labels": {"team": "green"}}})
    core_v1.create_namespaced_pod(NS, hang("other", team="blue"))
    core_v1.create_namespaced_pod(NS, hang("q", team="red"))
    events = collect(response, 4)
    assert names(events) == [("ADDED", "p"), ("MODIFIED", "p"), ("DELETED", "p"), ("ADDED", "q")]
    deleted = events[2]["object"]
    assert deleted["metadata"]["labels"]["team"] == "red"  # previous content ...
    assert int(deleted["metadata"]["resourceVersion"]) > int(events[1]["object"]["metadata"]["resourceVersion"])


def test_field_selected_watch_follows_phase_changes(fake_kube, core_v1):
    response = open_watch(core_v1, resource_version=list_rv(core_v1), field_selector="status.phase=Running")
    core_v1.create_namespaced_pod(NS, pod_manifest("p", run_seconds=0.05))
    events = collect(response, 2)
    assert [e["type"] for e in events] == ["ADDED", "DELETED"]
    assert events[0]["object"]["status"]["phase"] == "Running"


def test_stock_watch_streams_typed_objects(fake_kube, core_v1):
    core_v1.create_namespaced_pod(NS, pod_manifest("p"))
    phases = []
    w = watch.Watch()
    for event in w.stream(core_v1.list_namespaced_pod, NS, timeout_seconds=5):
        phases.append(event["object"].status.phase)
        if event["object"].status.phase == "Succeeded":
            w.stop()
    assert phases[0] == "Pending" and phases[-1] == "Succeeded" and "Running" in phases


def test_old_style_watch_path_is_served(paused, kube_api_client):
    core = client.CoreV1Api(kube_api_client)
    core.create_namespaced_pod(NS, hang("p"))
    response = kube_api_client.call_api(
        *kube_api_client.param_serialize(
            "GET", f"/api/v1/watch/namespaces/{NS}/pods", query_params=[("timeoutSeconds", 1)]
        ),
        _request_timeout=5,
    )
    assert names(list(watch_events(response.response))) == [("ADDED", "p")]


def test_node_watch_reports_node_changes(fake_kube, core_v1):
    rv = str(fake_kube.store.rv)
    response = core_v1.list_node(watch=True, resource_version=rv, timeout_seconds=5, _preload_content=False)
    core_v1.patch_node("fakekube-node", {"metadata": {"labels": {"pool": "gpu"}}})
    event = collect(response, 1)[0]
    assert event["type"] == "MODIFIED" and event["object"]["metadata"]["labels"]["pool"] == "gpu"
