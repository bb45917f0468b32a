"""The fake API server's pod CRUD, validation, selectors and pagination, over HTTP with the official client."""

from __future__ import annotations

import json

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.fakekube import FakeKubeServer
from tests.fakekube.manifests import pod_manifest

NS = "team-a"


def status_of(exc: ApiException) -> dict:
    return json.loads(exc.body)


def raw_list(core: client.CoreV1Api, **kwargs) -> dict:
    return json.loads(core.list_namespaced_pod(NS, _preload_content=False, **kwargs).data)


def test_created_pod_gets_server_metadata_and_pending_phase(core_v1):
    created = core_v1.create_namespaced_pod(NS, pod_manifest("p1"))
    assert created.metadata.namespace == NS
    assert len(created.metadata.uid) == 36
    assert int(created.metadata.resource_version) > 0
    assert created.metadata.creation_timestamp is not None
    assert created.status.phase == "Pending"
    raw = json.loads(core_v1.read_namespaced_pod("p1", NS, _preload_content=False).data)
    assert raw["kind"] == "Pod" and raw["apiVersion"] == "v1"
    assert raw["metadata"]["creationTimestamp"].endswith("Z")


def test_resource_versions_increase_with_every_write(core_v1):
    first = core_v1.create_namespaced_pod(NS, pod_manifest("a", outcome="hang"))
    second = core_v1.create_namespaced_pod(NS, pod_manifest("b", outcome="hang"))
    patched = core_v1.patch_namespaced_pod("a", NS, {"metadata": {"labels": {"x": "1"}}})
    rvs = [int(o.metadata.resource_version) for o in (first, second, patched)]
    assert rvs == sorted(rvs) and len(set(rvs)) == 3


def test_duplicate_name_is_409_already_exists(core_v1):
    core_v1.create_namespaced_pod(NS, pod_manifest("dup"))
    with pytest.raises(ApiException) as info:
        core_v1.create_namespaced_pod(NS, pod_manifest("dup"))
    body = status_of(info.value)
    assert info.value.status == 409
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'pods "dup" already exists',
        "reason": "AlreadyExists",
        "details": {"name": "dup", "kind": "pods"},
        "code": 409,
    }


@pytest.mark.parametrize("name", ["Bad_Name", "UPPER", "-leading", "x" * 254])
def test_invalid_name_is_422_invalid(core_v1, name):
    with pytest.raises(ApiException) as info:
        core_v1.create_namespaced_pod(NS, pod_manifest(name))
    body = status_of(info.value)
    assert info.value.status == 422 and body["reason"] == "Invalid"
    assert body["message"].startswith(f'Pod "{name}" is invalid: metadata.name: Invalid value')
    assert body["details"]["causes"][0]["field"] == "metadata.name"


def test_missing_name_and_missing_containers_are_422(kube_api_client):
    core = client.CoreV1Api(kube_api_client)
    nameless = pod_manifest("x")
    del nameless["metadata"]["name"]
    with pytest.raises(ApiException) as info:
        core.create_namespaced_pod(NS, nameless)
    assert info.value.status == 422
    assert "name or generateName is required" in status_of(info.value)["message"]
    empty = pod_manifest("empty")
    empty["spec"]["containers"] = []
    with pytest.raises(ApiException) as info:
        core.create_namespaced_pod(NS, empty, _preload_content=False)
    assert status_of(info.value)["message"] == 'Pod "empty" is invalid: spec.containers: Required value'


def test_invalid_label_value_is_422(core_v1):
    with pytest.raises(ApiException) as info:
        core_v1.create_namespaced_pod(NS, pod_manifest("p", labels={"dag": "has spaces"}))
    assert info.value.status == 422
    assert status_of(info.value)["details"]["causes"][0]["field"] == "metadata.labels"


def test_generate_name_produces_unique_names(core_v1):
    body = pod_manifest("ignored")
    body["metadata"] = {"generateName": "worker-"}
    names = {core_v1.create_namespaced_pod(NS, body).metadata.name for _ in range(5)}
    assert len(names) == 5
    assert all(n.startswith("worker-") and len(n) == len("worker-") + 5 for n in names)


def test_namespace_in_body_must_match_url(core_v1):
    body = pod_manifest("p")
    body["metadata"]["namespace"] = "other"
    with pytest.raises(ApiException) as info:
        core_v1.create_namespaced_pod(NS, body)
    assert info.value.status == 400


def test_get_unknown_pod_is_404_not_found(core_v1):
    with pytest.raises(ApiException) as info:
        core_v1.read_namespaced_pod("ghost", NS)
    assert info.value.status == 404
    assert status_of(info.value)["details"] == {"name": "ghost", "kind": "pods"}
    assert status_of(info.value)["message"] == 'pods "ghost" not found'


def test_delete_removes_pod_and_returns_it(core_v1):
    core_v1.create_namespaced_pod(NS, pod_manifest("gone"))
    deleted = core_v1.delete_namespaced_pod("gone", NS, body=client.V1DeleteOptions(grace_period_seconds=0))
    assert deleted.metadata.name == "gone"
    with pytest.raises(ApiException) as info:
        core_v1.read_namespaced_pod("gone", NS)
    assert info.value.status == 404
    with pytest.raises(ApiException) as info:
        core_v1.delete_namespaced_pod("gone", NS)
    assert info.value.status == 404


def test_delete_with_stale_uid_precondition_is_409(core_v1):
    core_v1.create_namespaced_pod(NS, pod_manifest("p"))
    options = client.V1DeleteOptions(preconditions=client.V1Preconditions(uid="not-the-uid"))
    with pytest.raises(ApiException) as info:
        core_v1.delete_namespaced_pod("p", NS, body=options)
    assert info.value.status == 409
    assert "Precondition failed" in status_of(info.value)["message"]


def test_graceful_deletion_shows_deletion_timestamp_before_removal():
    with FakeKubeServer(deletion_delay=0.3) as server:
        core = client.CoreV1Api(server.api_client())
        core.create_namespaced_pod(NS, pod_manifest("slow", outcome="hang"))
        server.cluster.wait_for_phase(NS, "slow", "Running")
        marked = core.delete_namespaced_pod("slow", NS)
        assert marked.metadata.deletion_timestamp is not None
        assert marked.metadata.deletion_grace_period_seconds == 30
        assert core.read_namespaced_pod("slow", NS).metadata.deletion_timestamp is not None
        server.wait_for(lambda: server.cluster.pod(NS, "slow") is None)
        reasons = [e["reason"] for e in server.cluster.events(NS)]
        assert "Killing" in reasons


def test_pending_pods_are_deleted_at_once_even_with_a_deletion_delay():
    with FakeKubeServer(deletion_delay=5, schedule_delay=60) as server:
        core = client.CoreV1Api(server.api_client())
        core.create_namespaced_pod(NS, pod_manifest("unbound"))
        core.delete_namespaced_pod("unbound", NS)
        assert server.cluster.pod(NS, "unbound") is None


def test_merge_strategic_and_json_patches_change_labels(core_v1, kube_api_client):
    core_v1.create_namespaced_pod(NS, pod_manifest("p", labels={"a": "1", "b": "2"}))
    core_v1.patch_namespaced_pod("p", NS, {"metadata": {"labels": {"b": None, "c": "3"}}})  # strategic merge
    assert core_v1.read_namespaced_pod("p", NS).metadata.labels == {"a": "1", "c": "3"}
    core_v1.patch_namespaced_pod(
        "p", NS, {"metadata": {"annotations": {"k": "v"}}}, _content_type="application/merge-patch+json"
    )
    core_v1.patch_namespaced_pod("p", NS, [{"op": "replace", "path": "/metadata/labels/a", "value": "9"}])
    pod = core_v1.read_namespaced_pod("p", NS)
    assert pod.metadata.labels == {"a": "9", "c": "3"}
    assert pod.metadata.annotations == {"k": "v"}


def test_patch_with_stale_resource_version_is_409_conflict(core_v1):
    created = core_v1.create_namespaced_pod(NS, pod_manifest("p"))
    core_v1.patch_namespaced_pod("p", NS, {"metadata": {"labels": {"x": "1"}}})
    stale = {"metadata": {"resourceVersion": created.metadata.resource_version, "labels": {"x": "2"}}}
    with pytest.raises(ApiException) as info:
        core_v1.patch_namespaced_pod("p", NS, stale)
    assert info.value.status == 409
    assert "the object has been modified" in status_of(info.value)["message"]


def test_failing_json_patch_test_op_is_422_and_changes_nothing(core_v1):
    core_v1.create_namespaced_pod(NS, pod_manifest("p", labels={"a": "1"}))
    ops = [{"op": "replace", "path": "/metadata/labels/a", "value": "2"}, {"op": "test", "path": "/x", "value": 1}]
    with pytest.raises(ApiException) as info:
        core_v1.patch_namespaced_pod("p", NS, ops)
    assert info.value.status == 422
    assert core_v1.read_namespaced_pod("p", NS).metadata.labels == {"a": "1"}


def test_pod_spec_is_immutable_except_image(core_v1):
    core_v1.create_namespaced_pod(NS, pod_manifest("p"))
    with pytest.raises(ApiException) as info:
        core_v1.patch_namespaced_pod("p", NS, {"spec": {"restartPolicy": "Always"}})
    assert info.value.status == 422
    assert "pod updates may not change fields" in status_of(info.value)["message"]


def test_put_replaces_metadata_and_keeps_status(core_v1, fake_kube):
    # The simulation is frozen, so the read-modify-write below cannot race a kubelet status update (409).
    fake_kube.cluster.pause()
    core_v1.create_namespaced_pod(NS, pod_manifest("p", outcome="hang"))
    current = core_v1.read_namespaced_pod("p", NS)
    current.metadata.labels = {"replaced": "yes"}
    current.status.phase = "Succeeded"  # ignored: status is a subresource
    updated = core_v1.replace_namespaced_pod("p", NS, current)
    assert updated.metadata.labels == {"replaced": "yes"}
    assert updated.status.phase != "Succeeded"


def test_label_selector_supports_the_full_syntax(core_v1):
    for name, labels in {
        "a": {"app": "web", "tier": "front"},
        "b": {"app": "web", "tier": "back"},
        "c": {"app": "db"},
        "d": {},
    }.items():
        core_v1.create_namespaced_pod(NS, pod_manifest(name, labels=labels))

    def names(selector: str) -> list[str]:
        return [p.metadata.name for p in core_v1.list_namespaced_pod(NS, label_selector=selector).items]

    assert names("app=web") == ["a", "b"]
    assert names("app==web,tier=back") == ["b"]
    assert names("app!=web") == ["c", "d"]
    assert names("tier in (front, back)") == ["a", "b"]
    assert names("app notin (web)") == ["c", "d"]
    assert names("tier") == ["a", "b"]
    assert names("!tier") == ["c", "d"]
    assert names("app in (web,db),!tier") == ["c"]
    assert names("") == ["a", "b", "c", "d"]


@pytest.mark.parametrize("selector", ["app=web' OR '1'='1", "app=web;rm -rf", "app in (web", "=web", "a b"])
def test_malformed_or_injection_like_selectors_are_400(core_v1, selector):
    core_v1.create_namespaced_pod(NS, pod_manifest("p", labels={"app": "web"}))
    with pytest.raises(ApiException) as info:
        core_v1.list_namespaced_pod(NS, label_selector=selector)
    assert info.value.status == 400
    assert status_of(info.value)["reason"] == "BadRequest"


def test_field_selectors_filter_by_name_phase_and_node(fake_kube, core_v1):
    core_v1.create_namespaced_pod(NS, pod_manifest("run", outcome="hang"))
    core_v1.create_namespaced_pod(NS, pod_manifest("done"))
    fake_kube.cluster.wait_for_phase(NS, "done", "Succeeded")
    fake_kube.cluster.wait_for_phase(NS, "run", "Running")

    def names(selector: str) -> list[str]:
        return [p.metadata.name for p in core_v1.list_namespaced_pod(NS, field_selector=selector).items]

    assert names("metadata.name=run") == ["run"]
    assert names("status.phase!=Succeeded") == ["run"]
    assert names("status.phase==Succeeded,metadata.namespace=" + NS) == ["done"]
    assert names("spec.nodeName=fakekube-node") == ["done", "run"]
    with pytest.raises(ApiException) as info:
        core_v1.list_namespaced_pod(NS, field_selector="spec.bogus=1")
    assert info.value.status == 400
    assert status_of(info.value)["message"] == "field label not supported: spec.bogus"


def test_pagination_returns_every_pod_once_with_continue_tokens(core_v1):
    for i in range(7):
        core_v1.create_namespaced_pod(NS, pod_manifest(f"p{i}"))
    first = raw_list(core_v1, limit=3)
    assert [p["metadata"]["name"] for p in first["items"]] == ["p0", "p1", "p2"]
    assert first["metadata"]["remainingItemCount"] == 4
    seen = [p["metadata"]["name"] for p in first["items"]]
    token = first["metadata"]["continue"]
    while token:
        page = raw_list(core_v1, limit=3, _continue=token)
        assert page["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
        seen += [p["metadata"]["name"] for p in page["items"]]
        token = page["metadata"].get("continue")
    assert seen == [f"p{i}" for i in range(7)]


def test_continue_token_from_before_compaction_is_410(fake_kube, core_v1):
    for i in range(3):
        core_v1.create_namespaced_pod(NS, pod_manifest(f"p{i}"))
    token = raw_list(core_v1, limit=1)["metadata"]["continue"]
    core_v1.create_namespaced_pod(NS, pod_manifest("later"))
    fake_kube.compact()
    with pytest.raises(ApiException) as info:
        core_v1.list_namespaced_pod(NS, limit=1, _continue=token)
    assert info.value.status == 410 and status_of(info.value)["reason"] == "Expired"


def test_cluster_wide_list_spans_namespaces(core_v1):
    core_v1.create_namespaced_pod("ns-1", pod_manifest("x"))
    core_v1.create_namespaced_pod("ns-2", pod_manifest("x"))
    pods = core_v1.list_pod_for_all_namespaces().items
    assert [(p.metadata.namespace, p.metadata.name) for p in pods] == [("ns-1", "x"), ("ns-2", "x")]


def test_delete_collection_honours_the_label_selector(fake_kube, core_v1):
    for name, app in (("a", "x"), ("b", "x"), ("c", "y")):
        core_v1.create_namespaced_pod(NS, pod_manifest(name, labels={"app": app}))
    response = core_v1.delete_collection_namespaced_pod(NS, label_selector="app=x", _preload_content=False)
    assert sorted(p["metadata"]["name"] for p in json.loads(response.data)["items"]) == ["a", "b"]
    assert [p.metadata.name for p in core_v1.list_namespaced_pod(NS).items] == ["c"]


def test_unknown_paths_are_404_and_wrong_methods_405(kube_api_client):
    response = kube_api_client.call_api(*kube_api_client.param_serialize("GET", "/api/v1/widgets"))
    assert response.status == 404
    response = kube_api_client.call_api(*kube_api_client.param_serialize("POST", "/api/v1/nodes/n1"))
    assert response.status == 405
