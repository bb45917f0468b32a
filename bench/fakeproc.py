"""The fake Kubernetes API server in a process of its own, for benchmarks.

Out of process so that its CPU time and memory are never counted as the executor's.  One node
with room for any number of pods, labelled and tainted like the worker pool that
``pod_templates/default_template.yaml`` selects, and pods that succeed ``run_seconds`` after they
start.  The ``strict`` preset by default, as ``bench_engine.py``: graceful deletion (a deleted pod
lingers 2 s with a ``deletionTimestamp``), watch history that expires, the server's defaults.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
NODE = {
    "name": "bench-worker",
    "cpu": "1000000",
    "memory": "100000Ti",
    "pods": 1000000,
    "labels": {"node-type": "worker"},
    "taints": [{"key": "dedicated", "value": "worker", "effect": "NoSchedule"}],
}


class FakeApi:
    """``python -m tests.fakekube`` started with the benchmark's node and timings; stop() ends it."""

    def __init__(self, run_seconds: float, *, strict: bool = True) -> None:
        command = [
            sys.executable, "-m", "tests.fakekube", "--port", "0", "--nodes-json", json.dumps([NODE]),
            "--schedule-delay", "0.001", "--start-delay", "0.005", "--run-seconds", str(run_seconds),
            "--history-size", "500000", "--no-events", "--no-metrics", *(["--strict"] if strict else []),
        ]  # fmt: skip
        self.process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if not line.startswith("FAKEKUBE_URL="):
            self.process.kill()
            raise SystemExit(f"fake API server did not start: {line!r}")
        self.url = line.split("=", 1)[1]
        self.pid = self.process.pid

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.url}/_fake/stats", timeout=60) as response:  # noqa: S310 - loopback
            return json.loads(response.read())  # type: ignore[no-any-return]

    def kubeconfig(self, path: Path) -> Path:
        """A kubeconfig file that points the official client (ours and the provider's) at this server."""
        path.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
                    "users": [{"name": "bench", "user": {"token": "not-a-real-token"}}],
                    "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "bench"}}],
                    "current-context": "fake",
                }
            )
        )
        return path

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


def creation_span(stats: dict[str, Any]) -> tuple[int, float]:
    """(pods created, seconds from the first create to the last) from the fake's records."""
    created = sorted(pod["created_at"] for pod in stats["pods"])
    return len(created), (created[-1] - created[0]) if len(created) > 1 else 0.0
