"""The fake as strict as a real kube-apiserver: graceful deletion, rare bookmarks of the apiserver's shape, a
time-bounded watch window, server-side defaulting, the Priority plugin, and the ``strict`` preset that turns them
all on (while the default stays kind)."""

from __future__ import annotations

import json

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from tests.fakekube import ClusterConfig, FakeKubeServer, NodeSpec
from tests.fakekube.__main__ import build_server, parse_args
from tests.fakekube.defaults import TOKEN_PATH
from tests.fakekube.manifests import collect, control, names, pod_manifest, watch_events

NS = "strict"


def core_for(server: FakeKubeServer) -> client.CoreV1Api:
    return client.CoreV1Api(server.api_client())


def list_rv(core: client.CoreV1Api) -> str:
    return json.loads(core.list_namespaced_pod(NS, _preload_content=False).data)["metadata"]["resourceVersion"]


def open_watch(core: client.CoreV1Api, **kwargs):
    kwargs.setdefault("timeout_seconds", 5)
    return core.list_namespaced_pod(NS, watch=True, _preload_content=False, _request_timeout=(2, 10), **kwargs)


@pytest.fixture
def slow_kubelet(fake_kube_factory) -> FakeKubeServer:
    """Termination never finishes by itself: a test steps it."""
    return fake_kube_factory(deletion_delay=3600)


# ------------------------------------------------------------------------------------------------- deletion
def test_deleting_a_running_pod_marks_it_and_only_the_kubelet_removes_it(slow_kubelet):
    core = core_for(slow_kubelet)
    core.create_namespaced_pod(NS, pod_manifest("p", outcome="hang"))
    slow_kubelet.cluster.wait_for_phase(NS, "p", "Running")
    response = open_watch(core, resource_version=list_rv(core))
    answered = core.delete_namespaced_pod("p", NS)
    assert answered.metadata.deletion_timestamp is not None and answered.metadata.deletion_grace_period_seconds == 30
    still = core.read_namespaced_pod("p", NS)
    assert (still.status.phase, still.metadata.deletion_grace_period_seconds) == ("Running", 30)
    slow_kubelet.wait_for(lambda: slow_kubelet.cluster.kubelet.stage(NS, "p") == "terminating")
    assert slow_kubelet.cluster.step(NS, "p") == "terminating"  # the kubelet finishes: object removed
    events = collect(response, 2)
    assert names(events) == [("MODIFIED", "p"), ("DELETED", "p")]
    assert events[0]["object"]["metadata"]["deletionTimestamp"] and events[0]["object"]["status"]["phase"] == "Running"


def test_grace_periods_come_from_delete_options_else_from_the_pod(slow_kubelet):
    core = core_for(slow_kubelet)
    core.create_namespaced_pod(NS, pod_manifest("own", outcome="hang", termination_grace_period_seconds=5))
    core.create_namespaced_pod(NS, pod_manifest("asked", outcome="hang"))
    for name in ("own", "asked"):
        slow_kubelet.cluster.wait_for_phase(NS, name, "Running")
    assert core.delete_namespaced_pod("own", NS).metadata.deletion_grace_period_seconds == 5
    assert core.delete_namespaced_pod("asked", NS, grace_period_seconds=7).metadata.deletion_grace_period_seconds == 7


def test_a_second_delete_with_a_shorter_grace_period_brings_removal_forward(slow_kubelet):
    core = core_for(slow_kubelet)
    core.create_namespaced_pod(NS, pod_manifest("p", outcome="hang"))
    slow_kubelet.cluster.wait_for_phase(NS, "p", "Running")
    core.delete_namespaced_pod("p", NS)
    assert core.delete_namespaced_pod("p", NS, grace_period_seconds=1).metadata.deletion_grace_period_seconds == 1
    slow_kubelet.wait_for(lambda: slow_kubelet.cluster.pod(NS, "p") is None)


def test_grace_period_zero_and_never_bound_pods_are_removed_at_once(slow_kubelet):
    core = core_for(slow_kubelet)
    core.create_namespaced_pod(NS, pod_manifest("running", outcome="hang"))
    slow_kubelet.cluster.wait_for_phase(NS, "running", "Running")
    core.delete_namespaced_pod("running", NS, grace_period_seconds=0)
    assert slow_kubelet.cluster.pod(NS, "running") is None
    slow_kubelet.cluster.pause()
    core.create_namespaced_pod(NS, pod_manifest("unbound"))
    core.delete_namespaced_pod("unbound", NS)
    assert slow_kubelet.cluster.pod(NS, "unbound") is None


# ------------------------------------------------------------------------------------------------ bookmarks
def test_apiserver_shaped_bookmarks_are_empty_pods_and_the_stock_watch_accepts_them(fake_kube_factory):
    server = fake_kube_factory(bookmark_interval=0.05, bookmark_shape="apiserver")
    core = core_for(server)
    [event] = collect(open_watch(core, resource_version=list_rv(core), allow_watch_bookmarks=True), 1)
    assert event == {
        "type": "BOOKMARK",
        "object": {
            "kind": "Pod",
            "apiVersion": "v1",
            "metadata": {"resourceVersion": str(server.store.rv), "creationTimestamp": None},
            "spec": {"containers": None},
            "status": {},
        },
    }
    stream = watch.Watch().stream(core.list_namespaced_pod, NS, allow_watch_bookmarks=True, timeout_seconds=2)
    assert next(stream)["type"] == "BOOKMARK"
    stream.close()


def test_a_quiet_short_watch_gets_only_the_bookmark_before_its_timeout(fake_kube_factory):
    server = fake_kube_factory(bookmark_interval=60, bookmark_before_timeout=True)
    core = core_for(server)
    events = list(
        watch_events(open_watch(core, resource_version=list_rv(core), allow_watch_bookmarks=True, timeout_seconds=3))
    )
    assert [e["type"] for e in events] == ["BOOKMARK"]


def test_without_the_pre_timeout_bookmark_a_quiet_watch_gets_none(fake_kube_factory):
    server = fake_kube_factory(bookmark_interval=60)
    core = core_for(server)
    events = list(
        watch_events(open_watch(core, resource_version=list_rv(core), allow_watch_bookmarks=True, timeout_seconds=3))
    )
    assert events == []


# ------------------------------------------------------------------------------------------ history window
def test_events_older_than_the_history_window_expire_and_newer_ones_replay(fake_kube_factory):
    server = fake_kube_factory(history_seconds=75)
    server.cluster.pause()
    core = core_for(server)
    before = list_rv(core)
    core.create_namespaced_pod(NS, pod_manifest("old"))
    after_old = list_rv(core)
    server.store.age_history(76)
    core.create_namespaced_pod(NS, pod_manifest("new"))
    expired = list(watch_events(open_watch(core, resource_version=before)))
    assert [(e["type"], e["object"]["code"], e["object"]["reason"]) for e in expired] == [("ERROR", 410, "Expired")]
    assert expired[0]["object"]["message"].startswith(f"too old resource version: {before} (")
    assert names(collect(open_watch(core, resource_version=after_old), 1)) == [("ADDED", "new")]
    with pytest.raises(ApiException) as info:
        list(watch.Watch().stream(core.list_namespaced_pod, NS, resource_version=before, timeout_seconds=2))
    assert info.value.status == 410


def test_history_can_be_aged_through_the_control_api(fake_kube_factory):
    server = fake_kube_factory(history_seconds=75)
    server.cluster.pause()
    core = core_for(server)
    before = list_rv(core)
    core.create_namespaced_pod(NS, pod_manifest("p"))
    assert names(collect(open_watch(core, resource_version=before), 1)) == [("ADDED", "p")]
    control(server.api_client(), "POST", "history/age", {"seconds": 80})
    [event] = watch_events(open_watch(core, resource_version=before))
    assert event["object"]["code"] == 410


def test_without_a_history_window_old_events_stay_replayable(fake_kube):
    fake_kube.cluster.pause()
    core = core_for(fake_kube)
    before = list_rv(core)
    core.create_namespaced_pod(NS, pod_manifest("p"))
    fake_kube.store.age_history(10_000)
    assert names(collect(open_watch(core, resource_version=before), 1)) == [("ADDED", "p")]


# ---------------------------------------------------------------------------------------- server defaults
def test_server_defaults_add_what_a_real_apiserver_adds(fake_kube_factory):
    core = core_for(fake_kube_factory(server_defaults=True))
    pod = core.create_namespaced_pod(NS, pod_manifest("p", outcome="hang"))
    spec = pod.spec
    tolerations = {(t.key, t.operator, t.effect, t.toleration_seconds) for t in spec.tolerations}
    assert tolerations == {
        ("node.kubernetes.io/not-ready", "Exists", "NoExecute", 300),
        ("node.kubernetes.io/unreachable", "Exists", "NoExecute", 300),
    }
    assert (spec.priority, spec.preemption_policy, spec.enable_service_links) == (0, "PreemptLowerPriority", True)
    assert (spec.service_account, spec.service_account_name) == ("default", "default")
    assert (spec.termination_grace_period_seconds, spec.dns_policy) == (30, "ClusterFirst")
    assert (
        spec.scheduler_name == "default-scheduler"
        and spec.security_context.to_dict() == client.V1PodSecurityContext().to_dict()
    )
    [volume] = spec.volumes
    assert volume.name.startswith("kube-api-access-") and volume.projected.default_mode == 420
    [mount] = spec.containers[0].volume_mounts
    assert (mount.name, mount.mount_path, mount.read_only) == (volume.name, TOKEN_PATH, True)


def test_existing_tolerations_and_opting_out_of_the_token_are_respected(fake_kube_factory):
    core = core_for(fake_kube_factory(server_defaults=True))
    manifest = pod_manifest("p", tolerations=[{"operator": "Exists"}], automount_service_account_token=False)
    pod = core.create_namespaced_pod(NS, manifest)
    assert [t.operator for t in pod.spec.tolerations] == ["Exists"]
    assert pod.spec.volumes is None and pod.spec.containers[0].volume_mounts is None


def test_the_default_fake_adds_none_of_the_extra_defaults(core_v1):
    pod = core_v1.create_namespaced_pod(NS, pod_manifest("p"))
    assert (pod.spec.tolerations, pod.spec.preemption_policy, pod.spec.enable_service_links, pod.spec.volumes) == (
        None,
        None,
        None,
        None,
    )


def test_a_priority_class_gives_priority_and_preemption_policy(fake_kube_factory):
    server = fake_kube_factory(server_defaults=True, reject_unknown_priority_class=True)
    server.cluster.set_priorities({"batch": 100}, {"batch": "Never"})
    core = core_for(server)
    pod = core.create_namespaced_pod(NS, pod_manifest("p", priority_class_name="batch"))
    assert (pod.spec.priority, pod.spec.preemption_policy) == (100, "Never")
    system = core.create_namespaced_pod(NS, pod_manifest("s", priority_class_name="system-cluster-critical"))
    assert system.spec.priority == 2_000_000_000
    with pytest.raises(ApiException) as info:
        core.create_namespaced_pod(NS, pod_manifest("u", priority_class_name="nope"))
    body = json.loads(info.value.body)
    assert (info.value.status, body["message"]) == (
        403,
        'pods "u" is forbidden: no PriorityClass with name nope was found',
    )


def test_a_pod_whose_class_never_preempts_waits_instead_of_evicting(fake_kube_factory):
    server = fake_kube_factory(nodes=[NodeSpec("n", cpu="1")], server_defaults=True)
    server.cluster.set_priorities({"low": 1, "polite": 1000}, {"polite": "Never"})
    core = core_for(server)
    core.create_namespaced_pod(
        NS, pod_manifest("low", requests={"cpu": "1"}, priority_class_name="low", outcome="hang")
    )
    server.cluster.wait_for_phase(NS, "low", "Running")
    core.create_namespaced_pod(NS, pod_manifest("polite", requests={"cpu": "1"}, priority_class_name="polite"))
    server.wait_for(lambda: (server.cluster.pod(NS, "polite")["status"].get("conditions") or [{}])[0].get("reason"))
    assert server.cluster.phase(NS, "low") == "Running"
    assert not any(e["reason"] == "Preempted" for e in server.cluster.events(NS))


# ------------------------------------------------------------------------------------------------- preset
def test_the_strict_preset_turns_every_difference_on_and_overrides_win():
    strict, kind = ClusterConfig.strict(), ClusterConfig()
    changed = {k for k, v in strict.to_dict().items() if kind.to_dict()[k] != v}
    assert changed == {
        "deletion_delay",
        "bookmark_interval",
        "bookmark_before_timeout",
        "bookmark_shape",
        "history_seconds",
        "quota_release_delay",
        "quota_conflict_every",
        "server_defaults",
        "reject_unknown_priority_class",
        "rbac_sync_delay",
    }
    assert (strict.bookmark_interval, strict.history_seconds, strict.bookmark_shape) == (60, 75, "apiserver")
    assert FakeKubeServer(strict=True).config == strict
    assert FakeKubeServer(strict=True, deletion_delay=0).config == strict.with_changes(deletion_delay=0)
    assert FakeKubeServer().config == kind


def test_the_strict_preset_is_reachable_from_the_cli_and_the_control_api(fake_kube):
    cli = build_server(parse_args(["--strict", "--quota-conflict-every", "0"]))
    assert cli.config == ClusterConfig.strict(quota_conflict_every=0)
    assert build_server(parse_args([])).config == ClusterConfig()
    answer = control(fake_kube.api_client(), "POST", "config", {"preset": "strict", "history_seconds": 300})
    assert answer == ClusterConfig.strict(history_seconds=300).to_dict()


def test_knob_values_are_validated():
    with pytest.raises(ValueError, match="bookmark_shape"):
        ClusterConfig().with_changes(bookmark_shape="round")
    with pytest.raises(ValueError, match="quota_release_delay"):
        ClusterConfig().with_changes(quota_release_delay=-1)
    assert ClusterConfig().with_changes(quota_release_delay="inf").quota_release_delay == float("inf")


def test_a_strict_server_deletes_running_pods_gracefully(fake_kube_factory):
    server = fake_kube_factory(strict=True)
    core = core_for(server)
    core.create_namespaced_pod(NS, pod_manifest("p", outcome="hang"))
    server.cluster.wait_for_phase(NS, "p", "Running")
    server.cluster.pause()
    assert core.delete_namespaced_pod("p", NS).metadata.deletion_timestamp is not None
    assert server.cluster.pod(NS, "p") is not None
    server.cluster.flush()
    assert server.cluster.pod(NS, "p") is None
