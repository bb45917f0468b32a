"""The scheduler as a real process (``python -m airflow_k8s.executor run``), for kill/restart tests.

Shared by the engine's restart and quota soak tests (fake API server) and the real-apiserver tier.
The process logs JSON lines to ``log``; its metrics port (``--port 0``: a free one) is in its
``scheduler started`` line, so a test can scrape ``/metrics`` before it stops the process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[1]


def start_scheduler(
    cfg: Path,
    spool: Path,
    log: Path,
    *,
    api_url: str | None = None,
    kubeconfig: Path | None = None,
    templates: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start a scheduler on ``api_url`` (unauthenticated) or with ``kubeconfig``; output appended to ``log``.

    ``templates`` is the pod template directory (default: the repository's ``pod_templates/``)."""
    command = [
        sys.executable, "-m", "airflow_k8s.executor", "run", "--config", str(cfg),
        "--templates", str(templates or ROOT / "pod_templates"), "--spool", str(spool), "--port", "0",
    ]  # fmt: skip
    if api_url is not None:
        command += ["--api-url", api_url]
    if kubeconfig is not None:
        command += ["--kubeconfig", str(kubeconfig)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with log.open("ab") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)


def log_events(log: Path) -> list[dict]:
    """The JSON lines of the log (anything else, e.g. a traceback, is skipped)."""
    events = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                events.append(json.loads(line))
            except ValueError:
                continue
    return events


def metrics_port(log: Path) -> int | None:
    """The metrics port of the most recently started scheduler writing to ``log``."""
    ports = [e["metrics_port"] for e in log_events(log) if e.get("event") == "started" and "metrics_port" in e]
    return int(ports[-1]) if ports else None


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``{(sample name, sorted labels): value}`` from the scheduler's ``/metrics``."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def metric(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    want = set(labels.items())
    return sum(value for (sample, have), value in samples.items() if sample == name and want <= set(have))
