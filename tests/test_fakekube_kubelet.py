"""The simulated scheduler and kubelet: lifecycle, outcomes, logs, events, scheduling constraints, preemption."""

from __future__ import annotations

import json

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.fakekube import Behavior, FakeKubeServer, NodeSpec, Taint
from tests.fakekube.manifests import pod_manifest

NS = "k"


def core_for(server: FakeKubeServer) -> client.CoreV1Api:
    return client.CoreV1Api(server.api_client())


def scheduled_condition(pod: client.V1Pod) -> client.V1PodCondition:
    return next(c for c in pod.status.conditions if c.type == "PodScheduled")


def test_pod_runs_to_succeeded_with_full_status(fake_kube, core_v1):
    core_v1.create_namespaced_pod(NS, pod_manifest("ok", annotations={"fakekube/log": "line one\nline two"}))
    fake_kube.cluster.wait_for_phase(NS, "ok", "Succeeded")
    pod = core_v1.read_namespaced_pod("ok", NS)
    assert pod.spec.node_name == "fakekube-node"
    assert scheduled_condition(pod).status == "True"
    assert pod.status.start_time is not None and pod.status.host_ip
    terminated = pod.status.container_statuses[0].state.terminated
    assert (terminated.exit_code, terminated.reason) == (0, "Completed")
    assert core_v1.read_namespaced_pod_log("ok", NS) == "line one\nline two\n"
    record = fake_kube.stats.pod(NS, "ok")
    assert record is not None and record.phase == "Succeeded" and record.exit_code == 0


def test_failing_pod_reports_exit_code_and_logs(fake_kube, core_v1):
    manifest = pod_manifest("bad", outcome="fail", annotations={"fakekube/exit-code": "3", "fakekube/log": "a\nb\nc"})
    core_v1.create_namespaced_pod(NS, manifest)
    fake_kube.cluster.wait_for_phase(NS, "bad", "Failed")
    terminated = core_v1.read_namespaced_pod("bad", NS).status.container_statuses[0].state.terminated
    assert (terminated.exit_code, terminated.reason) == (3, "Error")
    assert core_v1.read_namespaced_pod_log("bad", NS) == "a\nb\nc\nexit code 3\n"
    assert core_v1.read_namespaced_pod_log("bad", NS, tail_lines=2) == "c\nexit code 3\n"
    assert core_v1.read_namespaced_pod_log("bad", NS, container="base", tail_lines=1) == "exit code 3\n"


def test_oom_killed_pod_fails_with_137(fake_kube, core_v1):
    core_v1.create_namespaced_pod(NS, pod_manifest("oom", outcome="oomkill"))
    fake_kube.cluster.wait_for_phase(NS, "oom", "Failed")
    terminated = core_v1.read_namespaced_pod("oom", NS).status.container_statuses[0].state.terminated
    assert (terminated.exit_code, terminated.reason) == (137, "OOMKilled")


def test_hanging_pod_stays_running(fake_kube, core_v1):
    core_v1.create_namespaced_pod(NS, pod_manifest("forever", outcome="hang"))
    fake_kube.cluster.wait_for_phase(NS, "forever", "Running")
    assert fake_kube.cluster.flush() >= 0
    assert core_v1.read_namespaced_pod("forever", NS).status.phase == "Running"


@pytest.mark.parametrize(
    ("manifest", "reason"),
    [
        (pod_manifest("tag", image="busybox:bad"), "ErrImagePull"),
        (pod_manifest("name", image="registry.local/does-not-exist:1"), "ErrImagePull"),
        (pod_manifest("annot", outcome="errimagepull"), "ErrImagePull"),
        (pod_manifest("invalid", outcome="invalidimagename"), "InvalidImageName"),
        (pod_manifest("config", outcome="createcontainerconfigerror"), "CreateContainerConfigError"),
    ],
)
def test_container_start_errors_leave_the_pod_pending_with_a_waiting_reason(fake_kube, core_v1, manifest, reason):
    name = manifest["metadata"]["name"]
    core_v1.create_namespaced_pod(NS, manifest)

    def waiting():
        statuses = core_v1.read_namespaced_pod(name, NS).status.container_statuses or []
        return statuses and statuses[0].state.waiting and statuses[0].state.waiting.reason != "ContainerCreating"

    fake_kube.wait_for(waiting)
    pod = core_v1.read_namespaced_pod(name, NS)
    assert pod.status.phase == "Pending"
    assert pod.status.container_statuses[0].state.waiting.reason == reason
    warnings = [e for e in core_v1.list_namespaced_event(NS).items if e.type == "Warning"]
    assert any(e.reason == "Failed" and e.involved_object.name == name for e in warnings)
    with pytest.raises(ApiException) as info:
        core_v1.read_namespaced_pod_log(name, NS)
    assert info.value.status == 400 and "is waiting to start" in json.loads(info.value.body)["message"]


def test_logs_of_unknown_pods_are_404(core_v1):
    with pytest.raises(ApiException) as info:
        core_v1.read_namespaced_pod_log("ghost", NS)
    assert info.value.status == 404


def test_events_record_scheduling_and_start(fake_kube, core_v1):
    core_v1.create_namespaced_pod(NS, pod_manifest("e"))
    fake_kube.cluster.wait_for_phase(NS, "e", "Succeeded")
    events = core_v1.list_namespaced_event(NS, field_selector="involvedObject.name=e").items
    assert [e.reason for e in events][:2] == ["Scheduled", "Started"]
    assert events[0].source.component == "default-scheduler"
    assert events[0].message == f"Successfully assigned {NS}/e to fakekube-node"


def test_restart_policy_always_restarts_instead_of_completing(fake_kube, core_v1):
    core_v1.create_namespaced_pod(NS, pod_manifest("svc", restart_policy="Always", outcome="fail", run_seconds=0.02))

    def restarts() -> int:
        statuses = core_v1.read_namespaced_pod("svc", NS).status.container_statuses or []
        return statuses[0].restart_count if statuses else 0

    fake_kube.wait_for(lambda: restarts() >= 2)
    pod = core_v1.read_namespaced_pod("svc", NS)
    assert pod.status.phase == "Running"
    assert pod.status.container_statuses[0].last_state.terminated.exit_code == 1


def test_behavior_callable_decides_outcomes_in_process(fake_kube, core_v1):
    fake_kube.cluster.behavior = lambda pod: Behavior(
        outcome="fail" if pod["metadata"]["name"].startswith("x") else "succeed", exit_code=42, log=("custom",)
    )
    core_v1.create_namespaced_pod(NS, pod_manifest("x1"))
    core_v1.create_namespaced_pod(NS, pod_manifest("y1"))
    assert fake_kube.cluster.wait_for_phase(NS, "x1", "Failed") == "Failed"
    assert fake_kube.cluster.wait_for_phase(NS, "y1", "Succeeded") == "Succeeded"
    assert fake_kube.cluster.logs(NS, "x1") == ["custom", "exit code 42"]


def test_paused_kubelet_can_be_stepped_and_completed_by_hand(fake_kube, core_v1):
    fake_kube.cluster.pause()
    core_v1.create_namespaced_pod(NS, pod_manifest("manual", outcome="hang"))
    fake_kube.wait_for(lambda: fake_kube.cluster.kubelet.stage(NS, "manual") == "pending")
    assert fake_kube.cluster.step(NS, "manual") == "bound"
    assert core_v1.read_namespaced_pod("manual", NS).status.phase == "Pending"
    assert fake_kube.cluster.step(NS, "manual") == "running"
    assert core_v1.read_namespaced_pod("manual", NS).status.phase == "Running"
    fake_kube.cluster.complete(NS, "manual", "fail", exit_code=7)
    assert core_v1.read_namespaced_pod("manual", NS).status.container_statuses[0].state.terminated.exit_code == 7
    fake_kube.cluster.resume()


def test_flush_fast_forwards_queued_transitions():
    with FakeKubeServer(schedule_delay=30, start_delay=30, run_seconds=30) as server:
        core = core_for(server)
        core.create_namespaced_pod(NS, pod_manifest("slow"))
        server.cluster.flush()
        assert core.read_namespaced_pod("slow", NS).status.phase == "Succeeded"


def test_unschedulable_pod_reports_why_and_is_scheduled_when_capacity_frees():
    nodes = [NodeSpec(f"n{i}", cpu="1", memory="1Gi") for i in range(3)]
    with FakeKubeServer(nodes) as server:
        core = core_for(server)
        for i in range(3):
            core.create_namespaced_pod(NS, pod_manifest(f"big{i}", requests={"cpu": "800m"}, outcome="hang"))
        core.create_namespaced_pod(NS, pod_manifest("waits", requests={"cpu": "500m"}))

        def unschedulable() -> client.V1PodCondition | None:
            pod = core.read_namespaced_pod("waits", NS)
            conditions = [c for c in pod.status.conditions or [] if c.reason == "Unschedulable"]
            return conditions[0] if conditions else None

        condition = server.wait_for(unschedulable)
        assert condition.status == "False"
        assert condition.message.startswith("0/3 nodes are available: 3 Insufficient cpu.")
        failed = [e for e in server.cluster.events(NS) if e["reason"] == "FailedScheduling"]
        assert failed and failed[0]["type"] == "Warning"
        core.delete_namespaced_pod("big1", NS)
        server.cluster.wait_for_phase(NS, "waits", "Succeeded")
        assert server.cluster.pod(NS, "waits")["spec"]["nodeName"] == "n1"


def test_memory_quantities_are_compared_exactly():
    with FakeKubeServer([NodeSpec("n", cpu="4", memory="1Gi")]) as server:
        core = core_for(server)
        core.create_namespaced_pod(NS, pod_manifest("fits", requests={"memory": "1073741824"}, outcome="hang"))
        core.create_namespaced_pod(NS, pod_manifest("no-room", requests={"memory": "1k"}))
        server.cluster.wait_for_phase(NS, "fits", "Running")
        server.wait_for(lambda: "Insufficient memory" in json.dumps(server.cluster.pod(NS, "no-room")["status"]))


def test_node_selector_and_taints_are_honoured():
    nodes = [
        NodeSpec("cpu-node", labels={"pool": "cpu"}),
        NodeSpec("gpu-node", labels={"pool": "gpu"}, gpus=2, taints=(Taint("nvidia.com/gpu", "present"),)),
    ]
    with FakeKubeServer(nodes) as server:
        core = core_for(server)
        core.create_namespaced_pod(NS, pod_manifest("plain", outcome="hang"))
        core.create_namespaced_pod(NS, pod_manifest("wants-gpu", node_selector={"pool": "gpu"}, outcome="hang"))
        tolerant = pod_manifest(
            "tolerant",
            node_selector={"pool": "gpu"},
            tolerations=[{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
            requests={"nvidia.com/gpu": "1"},
            outcome="hang",
        )
        core.create_namespaced_pod(NS, tolerant)
        server.cluster.wait_for_phase(NS, "tolerant", "Running")
        server.cluster.wait_for_phase(NS, "plain", "Running")
        assert server.cluster.pod(NS, "tolerant")["spec"]["nodeName"] == "gpu-node"
        assert server.cluster.pod(NS, "plain")["spec"]["nodeName"] == "cpu-node"

        def message() -> str | None:
            conditions = server.cluster.pod(NS, "wants-gpu")["status"].get("conditions") or [{}]
            return conditions[0].get("message")

        assert server.wait_for(message).startswith(
            "0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, "
            "1 node(s) had untolerated taint {nvidia.com/gpu: present}."
        )


def test_patching_a_node_label_makes_a_waiting_pod_schedulable():
    with FakeKubeServer([NodeSpec("n1")]) as server:
        core = core_for(server)
        core.create_namespaced_pod(NS, pod_manifest("picky", node_selector={"disk": "ssd"}))
        server.wait_for(lambda: server.cluster.pod(NS, "picky")["status"].get("conditions"))
        core.patch_node("n1", {"metadata": {"labels": {"disk": "ssd"}}})
        server.cluster.wait_for_phase(NS, "picky", "Succeeded")


def test_higher_priority_pod_preempts_lower_priority_ones():
    with FakeKubeServer([NodeSpec("n", cpu="2")], priorities={"high": 1000, "low": 10}) as server:
        core = core_for(server)
        for i in range(2):
            low = pod_manifest(f"low{i}", requests={"cpu": "1"}, priority_class_name="low", outcome="hang")
            core.create_namespaced_pod(NS, low)
            server.cluster.wait_for_phase(NS, f"low{i}", "Running")
        high = pod_manifest("high", requests={"cpu": "1"}, priority_class_name="high", outcome="hang")
        core.create_namespaced_pod(NS, high)
        server.cluster.wait_for_phase(NS, "high", "Running")
        remaining = {p.metadata.name for p in core.list_namespaced_pod(NS).items}
        assert remaining == {"high", "low0"}  # the youngest of the lowest priority went
        assert core.read_namespaced_pod("high", NS).spec.priority == 1000
        preempted = [e for e in server.cluster.events(NS) if e["reason"] == "Preempted"]
        assert [e["involvedObject"]["name"] for e in preempted] == ["low1"]


def test_equal_priority_pods_do_not_preempt():
    with FakeKubeServer([NodeSpec("n", cpu="1")]) as server:
        core = core_for(server)
        core.create_namespaced_pod(NS, pod_manifest("first", requests={"cpu": "1"}, outcome="hang"))
        server.cluster.wait_for_phase(NS, "first", "Running")
        core.create_namespaced_pod(NS, pod_manifest("second", requests={"cpu": "1"}))
        server.wait_for(lambda: server.cluster.pod(NS, "second")["status"].get("conditions"))
        assert server.cluster.phase(NS, "first") == "Running"


def test_every_object_the_fake_serves_deserializes_into_typed_models(fake_kube, core_v1):
    for outcome in ("succeed", "fail", "hang", "errimagepull"):
        core_v1.create_namespaced_pod(NS, pod_manifest(outcome, outcome=outcome))
    fake_kube.wait_for(lambda: len({p["status"].get("phase") for p in fake_kube.cluster.pods(NS)}) == 4)
    assert len(core_v1.list_namespaced_pod(NS).items) == 4
    assert core_v1.list_namespaced_event(NS).items
    node = core_v1.read_node("fakekube-node")
    assert node.status.allocatable["cpu"] == "100000"
    assert core_v1.list_node(label_selector="kubernetes.io/os=linux").items[0].metadata.name == "fakekube-node"
    assert core_v1.read_namespace(NS).status.phase == "Active"
    assert NS in [n.metadata.name for n in core_v1.list_namespace().items]
    assert fake_kube.errors == []
