"""The process kubelet mode: a pod's main container really runs as a local process group, with the pod's
environment, logs, exit codes, signals on deletion, an allow-list, and no processes left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.fakekube import FakeKubeServer, ProcessMode, wait_for
from tests.fakekube.manifests import names, pod_manifest, watch_events

NS = "proc"
PYTHON = sys.executable
BIN = os.path.dirname(PYTHON)
REPO = Path(__file__).resolve().parents[1]


def process_pod(name: str, code: str, *, env: list[dict[str, Any]] | None = None, **spec: Any) -> dict[str, Any]:
    """A pod whose ``base`` container runs ``python -c code`` (the image is ignored in process mode)."""
    pod = pod_manifest(name, **spec)
    pod["spec"]["containers"][0].update(command=[PYTHON, "-c", code], env=env or [])
    return pod


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def container_state(core: client.CoreV1Api, name: str) -> client.V1ContainerState:
    """The main container's state (empty before the pod is bound)."""
    statuses = core.read_namespaced_pod(name, NS).status.container_statuses or []
    return statuses[0].state if statuses else client.V1ContainerState()


@pytest.fixture
def mode(tmp_path) -> ProcessMode:
    return ProcessMode(allowed=[PYTHON], base_env={"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(tmp_path)})


@pytest.fixture
def server(fake_kube_factory, mode) -> FakeKubeServer:
    return fake_kube_factory(process_mode=mode)


@pytest.fixture
def core(server) -> client.CoreV1Api:
    return client.CoreV1Api(server.api_client())


@pytest.fixture
def started(server, core) -> Callable[[dict[str, Any]], int]:
    """Create the pod, wait until its process runs and has printed a line; returns the pid."""

    def start(pod: dict[str, Any]) -> int:
        name = pod["metadata"]["name"]
        core.create_namespaced_pod(NS, pod)
        server.cluster.wait_for_phase(NS, name, "Running")
        server.wait_for(lambda: server.cluster.logs(NS, name), message=f"{name} printed nothing")
        pid = server.cluster.process_pid(NS, name)
        assert pid is not None
        return pid

    return start


SLEEPER = "import time; print('ready', flush=True); time.sleep(600)"


def test_the_base_container_runs_with_its_environment_and_its_output_is_the_log(server, core):
    code = "print('hi'); import os; print(os.environ['X'])"
    core.create_namespaced_pod(NS, process_pod("hello", code, env=[{"name": "X", "value": "there"}]))
    assert server.cluster.wait_for_phase(NS, "hello", "Succeeded", "Failed") == "Succeeded"
    assert core.read_namespaced_pod_log("hello", NS) == "hi\nthere\n"
    terminated = container_state(core, "hello").terminated
    assert (terminated.exit_code, terminated.reason, terminated.message) == (0, "Completed", None)
    assert terminated.started_at is not None and terminated.finished_at >= terminated.started_at


def test_an_image_that_cannot_be_pulled_leaves_the_pod_pending_with_err_image_pull_and_runs_nothing(
    server, core, tmp_path
):
    marker = tmp_path / "ran"
    pod = process_pod("unpullable", f"open({str(marker)!r}, 'w').close()")
    pod["spec"]["containers"][0]["image"] = "registry.example/app:bad"
    core.create_namespaced_pod(NS, pod)

    def pull_failed():
        waiting = container_state(core, "unpullable").waiting
        return waiting if waiting is not None and waiting.reason != "ContainerCreating" else None

    waiting = server.wait_for(pull_failed, message="the pull never failed")
    assert waiting.reason == "ErrImagePull" and 'Failed to pull image "registry.example/app:bad"' in waiting.message
    assert core.read_namespaced_pod("unpullable", NS).status.phase == "Pending"
    assert not marker.exists() and server.cluster.process_pid(NS, "unpullable") is None


def test_an_exit_code_fails_the_pod_with_that_code(server, core):
    core.create_namespaced_pod(NS, process_pod("three", "import sys; print('bye'); sys.exit(3)"))
    assert server.cluster.wait_for_phase(NS, "three", "Succeeded", "Failed") == "Failed"
    terminated = container_state(core, "three").terminated
    assert (terminated.exit_code, terminated.reason) == (3, "Error")
    assert server.stats.pod(NS, "three").exit_code == 3


def test_the_pod_is_running_while_its_process_runs(started, core):
    pid = started(process_pod("sleeper", SLEEPER))
    assert not gone(pid)
    assert container_state(core, "sleeper").running.started_at is not None
    assert core.read_namespaced_pod_log("sleeper", NS, tail_lines=1, container="base") == "ready\n"


def test_deleting_the_pod_terminates_its_process_before_the_object_disappears(started, core, server):
    pid = started(process_pod("sleeper", SLEEPER))
    rv = json.loads(core.list_namespaced_pod(NS, _preload_content=False).data)["metadata"]["resourceVersion"]
    response = core.list_namespaced_pod(NS, watch=True, resource_version=rv, timeout_seconds=20, _preload_content=False)
    core.delete_namespaced_pod("sleeper", NS)
    seen = []
    for event in watch_events(response):
        seen.append(event)
        if event["type"] == "DELETED":
            assert gone(pid)  # the process had exited (and was reaped) before the object went
            break
    response.close()
    assert names(seen)[0] == ("MODIFIED", "sleeper") and names(seen)[-1] == ("DELETED", "sleeper")
    assert seen[0]["object"]["metadata"]["deletionTimestamp"] and seen[0]["object"]["status"]["phase"] == "Running"
    assert seen[-1]["object"]["status"]["phase"] == "Running"  # 1.20-style: the phase is left as it was


def test_a_process_ignoring_sigterm_is_killed_when_the_grace_period_ends(started, core, server):
    stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); "
    pid = started(process_pod("stubborn", stubborn + "time.sleep(600)"))
    asked = time.monotonic()
    core.delete_namespaced_pod("stubborn", NS, grace_period_seconds=1)
    server.wait_for(lambda: server.cluster.pod(NS, "stubborn") is None)
    assert time.monotonic() - asked >= 1.0  # SIGTERM alone did not end it: SIGKILL came after the grace period
    assert gone(pid)


def test_env_comes_from_field_refs_secrets_config_maps_and_the_base_environment(server, core, mode):
    core.create_namespaced_secret(NS, {"metadata": {"name": "creds"}, "stringData": {"token": "s3cret"}})
    core.create_namespaced_config_map(NS, {"metadata": {"name": "settings"}, "data": {"level": "debug", "x": "1"}})
    env = [
        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "POD_UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
        {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
        {"name": "LEVEL", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "level"}}},
        {"name": "MAYBE", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "k", "optional": True}}},
        {"name": "GREETING", "value": "hello $(POD)"},
    ]
    pod = process_pod("envy", "import json, os, sys; print(json.dumps({**os.environ, 'ARGV': sys.argv[1:]}))", env=env)
    pod["spec"]["containers"][0]["args"] = ["$(LEVEL)", "$$(LEVEL)"]
    pod["spec"]["containers"][0]["envFrom"] = [{"configMapRef": {"name": "settings"}, "prefix": "CM_"}]
    core.create_namespaced_pod(NS, pod)
    server.cluster.wait_for_phase(NS, "envy", "Succeeded", "Failed")
    seen = json.loads(core.read_namespaced_pod_log("envy", NS))
    uid = core.read_namespaced_pod("envy", NS).metadata.uid
    expected = {
        "POD": "envy",
        "POD_NS": NS,
        "POD_UID": uid,
        "NODE": "fakekube-node",
        "TOKEN": "s3cret",
        "LEVEL": "debug",
        "GREETING": "hello envy",
        "CM_level": "debug",
        "CM_x": "1",
        "HOSTNAME": "envy",
        "HOME": mode.base_env["HOME"],
        "ARGV": ["debug", "$(LEVEL)"],
    }
    assert {k: seen.get(k) for k in expected} == expected
    assert "MAYBE" not in seen


def test_a_missing_secret_keeps_the_pod_waiting_until_the_secret_exists(server, core):
    env = [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "late", "key": "token"}}}]
    core.create_namespaced_pod(NS, process_pod("waits", "import os; print(os.environ['TOKEN'])", env=env))

    def waiting() -> client.V1ContainerStateWaiting | None:
        state = container_state(core, "waits")
        return state.waiting if state.waiting and state.waiting.reason != "ContainerCreating" else None

    reason = server.wait_for(waiting)
    assert (reason.reason, reason.message) == ("CreateContainerConfigError", 'secret "late" not found')
    assert core.read_namespaced_pod("waits", NS).status.phase == "Pending"
    core.create_namespaced_secret(NS, {"metadata": {"name": "late"}, "data": {"token": "dG9rZW4="}})
    assert server.cluster.wait_for_phase(NS, "waits", "Succeeded", "Failed") == "Succeeded"
    assert core.read_namespaced_pod_log("waits", NS) == "token\n"


@pytest.mark.parametrize(
    ("command", "fragment"),
    [
        (["/bin/sh", "-c", "true"], 'executable "/bin/sh" is not in the allow-list'),
        (["no-such-program-fakekube"], 'exec: "no-such-program-fakekube": executable file not found in $PATH'),
    ],
)
def test_an_executable_outside_the_allow_list_is_never_run(server, core, command, fragment):
    pod = pod_manifest("refused")
    pod["spec"]["containers"][0]["command"] = command
    core.create_namespaced_pod(NS, pod)

    def refused() -> client.V1ContainerState | None:
        state = container_state(core, "refused")
        return state if state.waiting and state.waiting.reason != "ContainerCreating" else None

    state = server.wait_for(refused)
    assert state.waiting.reason == "CreateContainerError" and fragment in state.waiting.message
    assert server.cluster.process_pid(NS, "refused") is None
    assert core.read_namespaced_pod("refused", NS).status.phase == "Pending"


def test_a_bare_program_name_is_found_through_the_base_path(server, core):
    pod = pod_manifest("bare")
    pod["spec"]["containers"][0].update(command=[os.path.basename(PYTHON)], args=["-c", "print('found')"])
    core.create_namespaced_pod(NS, pod)
    assert server.cluster.wait_for_phase(NS, "bare", "Succeeded", "Failed") == "Succeeded"
    assert core.read_namespaced_pod_log("bare", NS) == "found\n"


def test_the_working_directory_is_fresh_per_pod_unless_the_container_names_an_existing_one(server, core, tmp_path):
    code = "import os; print(os.getcwd())"
    core.create_namespaced_pod(NS, process_pod("one", code))
    core.create_namespaced_pod(NS, process_pod("two", code))
    own = process_pod("own", code)
    own["spec"]["containers"][0]["workingDir"] = str(tmp_path)
    core.create_namespaced_pod(NS, own)
    for name in ("one", "two", "own"):
        server.cluster.wait_for_phase(NS, name, "Succeeded", "Failed")
    one, two, mine = (core.read_namespaced_pod_log(n, NS).strip() for n in ("one", "two", "own"))
    assert one != two and os.path.basename(one) == "work"
    assert mine == str(tmp_path)


def test_a_failed_container_with_fallback_to_logs_reports_its_log_tail(server, core):
    pod = process_pod("fallback", "import sys; print('a'); print('b'); sys.exit(2)")
    pod["spec"]["containers"][0]["terminationMessagePolicy"] = "FallbackToLogsOnError"
    core.create_namespaced_pod(NS, pod)
    server.cluster.wait_for_phase(NS, "fallback", "Failed")
    assert container_state(core, "fallback").terminated.message == "a\nb\n"


def test_restart_policy_on_failure_backs_off_instead_of_failing(server, core):
    core.create_namespaced_pod(NS, process_pod("crashy", "import sys; sys.exit(1)", restart_policy="OnFailure"))

    def backing_off() -> client.V1ContainerStatus | None:
        statuses = core.read_namespaced_pod("crashy", NS).status.container_statuses or []
        waiting = statuses and statuses[0].state.waiting
        return statuses[0] if waiting and waiting.reason == "CrashLoopBackOff" else None

    status = server.wait_for(backing_off)
    assert (status.restart_count, status.last_state.terminated.exit_code) == (1, 1)
    assert core.read_namespaced_pod("crashy", NS).status.phase == "Running"


def test_stopping_the_server_kills_every_process_group_it_started(mode):
    child = (
        "import subprocess, sys, time; c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']);"
    )
    server = FakeKubeServer(process_mode=mode).start()
    try:
        core = client.CoreV1Api(server.api_client())
        core.create_namespaced_pod(NS, process_pod("parent", child + " print(c.pid, flush=True); time.sleep(600)"))
        lines = server.wait_for(lambda: server.cluster.logs(NS, "parent"))
        grandchild, pid = int(lines[0]), server.cluster.process_pid(NS, "parent")
        assert pid is not None and not gone(pid) and not gone(grandchild)
    finally:
        server.stop()
    assert gone(pid)
    wait_for(lambda: gone(grandchild), message="the process group outlived the server")


def test_processes_left_behind_die_with_the_main_one_even_in_a_process_group_of_their_own(server, core):
    # A Task SDK supervisor's task process does this: same session, a process group of its own.
    orphan = "import subprocess, sys; c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'],"
    code = orphan + " process_group=0); print(c.pid, flush=True); sys.exit(137)"
    core.create_namespaced_pod(NS, process_pod("leaver", code))
    assert server.cluster.wait_for_phase(NS, "leaver", "Succeeded", "Failed", timeout=20) == "Failed"
    child = int(server.cluster.logs(NS, "leaver")[0])
    wait_for(lambda: gone(child), timeout=10, message="a process of the pod outlived its main process")


def test_the_mode_is_off_by_default(fake_kube, core_v1, tmp_path):
    marker = tmp_path / "ran"
    core_v1.create_namespaced_pod(NS, process_pod("inert", f"open({str(marker)!r}, 'w')"))
    fake_kube.cluster.wait_for_phase(NS, "inert", "Succeeded")
    assert not marker.exists() and fake_kube.cluster.process_pid(NS, "inert") is None


def test_the_allow_list_takes_absolute_paths_only():
    with pytest.raises(ValueError, match="absolute"):
        ProcessMode(allowed=["python3"])


def test_the_out_of_process_server_runs_pods_as_processes(tmp_path):
    argv = [PYTHON, "-m", "tests.fakekube", "--port", "0", "--process-mode", "--allow-exec", PYTHON]
    argv += ["--env", f"PATH={BIN}:/usr/bin:/bin", "--env", "GREETING=hello from the base env"]
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip().split("=", 1)[1]
        cfg = client.Configuration()
        cfg.host = url
        core = client.CoreV1Api(client.ApiClient(cfg))
        core.create_namespaced_pod(NS, process_pod("remote", "import os; print(os.environ['GREETING'])"))
        wait_for(lambda: core.read_namespaced_pod("remote", NS).status.phase == "Succeeded")
        assert core.read_namespaced_pod_log("remote", NS) == "hello from the base env\n"
        core.create_namespaced_pod(
            NS, process_pod("asleep", "import os, time; print(os.getpid(), flush=True); " + "time.sleep(600)")
        )
        wait_for(lambda: core.read_namespaced_pod("asleep", NS).status.phase == "Running")
        pid = int(wait_for(lambda: core.read_namespaced_pod_log("asleep", NS)))
        assert not gone(pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    assert gone(pid)  # SIGTERM to the fake stops every pod process


def test_a_followed_log_streams_output_until_the_process_exits(started, core, tmp_path):
    go = tmp_path / "go"
    code = f"import os, time; print('one', flush=True)\nwhile not os.path.exists({str(go)!r}): time.sleep(0.02)\n"
    started(process_pod("chatty", code + "print('two', flush=True)"))
    response = core.read_namespaced_pod_log("chatty", NS, follow=True, _preload_content=False, _request_timeout=20)
    received = b""
    for chunk in response.stream(amt=None, decode_content=False):
        received += chunk
        if received == b"one\n":
            go.touch()  # the process goes on only once the stream has delivered its first line
    assert received == b"one\ntwo\n"


def test_a_missing_config_map_key_is_reported_and_flushing_does_not_spin_on_it(server, core):
    core.create_namespaced_config_map(NS, {"metadata": {"name": "settings"}, "data": {"other": "x"}})
    env = [{"name": "LEVEL", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "level"}}}]
    core.create_namespaced_pod(NS, process_pod("keyless", "print('never')", env=env))
    server.wait_for(
        lambda: container_state(core, "keyless").waiting and container_state(core, "keyless").waiting.message
    )
    assert container_state(core, "keyless").waiting.message == f"couldn't find key level in ConfigMap {NS}/settings"
    assert server.cluster.flush() < 100  # waiting for config queues nothing to retry on a timer
    core.patch_namespaced_config_map("settings", NS, {"data": {"level": "debug"}})
    assert server.cluster.wait_for_phase(NS, "keyless", "Succeeded", "Failed") == "Succeeded"
