"""Out-of-process mode (``python -m tests.fakekube``), its ``/_fake/`` control API, and a throughput smoke test."""

from __future__ import annotations

import json
import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.fakekube import FakeKubeServer
from tests.fakekube.cluster import wait_for
from tests.fakekube.manifests import pod_manifest, watch_events

REPO = Path(__file__).resolve().parents[1]


class Remote:
    """A fake server in a child process, driven through the official client and /_fake/."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.fakekube", "--port", "0", *args],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        ready, _, _ = select.select([self.proc.stdout], [], [], 120)  # a cold start on a loaded machine
        line = self.proc.stdout.readline().strip() if ready else ""  # type: ignore[union-attr]
        if not line.startswith("FAKEKUBE_URL=http://127.0.0.1:"):
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"fakekube did not print its URL: {line!r}")
        self.url = line.split("=", 1)[1]
        cfg = client.Configuration()
        cfg.host = self.url
        self.api = client.ApiClient(cfg)
        self.core = client.CoreV1Api(self.api)

    def control(self, method: str, path: str, body: object = None) -> object:
        response = self.api.call_api(*self.api.param_serialize(method, f"/_fake/{path}", body=body))
        data = response.read()
        if response.status != 200:
            raise ApiException(status=response.status, reason=data.decode())
        return json.loads(data) if data and data != b"ok" else data

    def stop(self) -> int:
        self.api.close()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(60)
        self.proc.stdout.close()  # type: ignore[union-attr]
        return code


@pytest.fixture
def remote() -> Iterator[Remote]:
    server = Remote("--nodes", "2", "--node-cpu", "2", "--node-memory", "4Gi")
    try:
        yield server
    finally:
        if server.proc.poll() is None:
            server.stop()


def test_out_of_process_server_prints_its_url_and_serves_the_api(remote):
    assert [n.metadata.name for n in remote.core.list_node().items] == ["node-1", "node-2"]
    remote.core.create_namespaced_pod("x", pod_manifest("p"))
    remote.core.read_namespaced_pod("p", "x")
    assert remote.control("GET", "healthz") == b"ok"


def test_control_api_configures_delays_nodes_admission_and_faults(remote):
    config = remote.control("POST", "config", {"run_seconds": 0.01, "history_size": 50})
    assert config["run_seconds"] == 0.01 and config["history_size"] == 50
    nodes = remote.control("POST", "nodes", {"nodes": [{"name": "big", "cpu": "64", "labels": {"pool": "a"}}]})
    assert nodes == {"nodes": ["big"]}
    remote.control("POST", "nodes/big", {"taints": [{"key": "dedicated", "value": "x", "effect": "NoSchedule"}]})
    assert remote.core.read_node("big").spec.taints[0].key == "dedicated"
    remote.control("POST", "admission", {"quotas": {"q": 0}})
    with pytest.raises(ApiException) as info:
        remote.core.create_namespaced_pod("q", pod_manifest("p"))
    assert info.value.status == 403
    rule = remote.control("POST", "faults", {"method": "POST", "path": "/pods$", "status": 503, "times": 1})
    assert rule["id"] >= 1
    with pytest.raises(ApiException) as info:
        remote.core.create_namespaced_pod("x", pod_manifest("p"))
    assert info.value.status == 503
    remote.control("POST", "priorities", {"high": 100})
    with pytest.raises(ApiException) as info:
        remote.control("POST", "config", {"no_such_knob": 1})
    assert info.value.status == 400


def test_control_api_reports_stats_and_drives_watch_faults(remote):
    remote.control("POST", "kubelet/pause")
    remote.core.create_namespaced_pod("x", pod_manifest("p"))
    rv = json.loads(remote.core.list_namespaced_pod("x", _preload_content=False).data)["metadata"]["resourceVersion"]
    watch = remote.core.list_namespaced_pod("x", watch=True, resource_version="0", _preload_content=False)
    wait_for(lambda: remote.control("GET", "stats")["open_watches"] == 1, interval=0.01)
    assert remote.control("POST", "drop-watches") == {"dropped": 1}
    with pytest.raises(Exception, match=r"(?i)ended prematurely|protocol"):
        list(watch_events(watch))
    remote.core.patch_namespaced_pod("p", "x", {"metadata": {"labels": {"a": "b"}}})
    remote.control("POST", "compact")
    expired = remote.core.list_namespaced_pod("x", watch=True, resource_version=rv, _preload_content=False)
    assert [e["object"]["code"] for e in watch_events(expired)] == [410]
    assert remote.control("POST", "pods/x/p/step") == {"stage": "bound"}
    assert remote.control("POST", "pods/x/p/complete", {"outcome": "fail", "exit_code": 2}) == {"phase": "Failed"}
    stats = remote.control("GET", "stats")
    assert {"method": "POST", "resource": "pods", "code": 201, "count": 1} in stats["requests"]
    assert [(p["name"], p["phase"], p["exit_code"]) for p in stats["pods"]] == [("p", "Failed", 2)]
    assert stats["duplicate_creates"] == [] and stats["errors"] == 0


def test_sigterm_stops_the_server_cleanly(remote):
    assert remote.stop() == 0


def test_five_hundred_pods_are_created_and_complete(tmp_path):
    with FakeKubeServer(run_seconds=0.02) as server:
        core = client.CoreV1Api(server.api_client())

        def create(i: int) -> int:
            return core.create_namespaced_pod("load", pod_manifest(f"p-{i}"), _preload_content=False).status

        with ThreadPoolExecutor(8) as pool:
            assert set(pool.map(create, range(500))) == {201}
        server.wait_for(lambda: sum(r.phase == "Succeeded" for r in server.stats.pods()) == 500, timeout=300)
        assert server.stats.duplicate_creates() == {}
        assert server.errors == []
