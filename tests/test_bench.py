"""The benchmark script runs end to end (a small run; the figures themselves are not asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_engine_benchmark_runs_and_reports_its_figures():
    completed = subprocess.run(
        [sys.executable, "bench/bench_engine.py", "--tasks", "300", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    figures = json.loads(completed.stdout.strip().splitlines()[-1])
    assert figures["finished"] is True and figures["fake"] == "strict"
    assert (figures["lost"], figures["recorded_twice"], figures["created_twice"]) == (0, 0, 0)
    assert figures["creates"] == figures["succeeded"] == 300
    for name in (
        "creates_per_s",
        "cpu_ms_per_task",
        "peak_rss_mb",
        "queued_to_create_p50_ms",
        "queued_to_create_p99_ms",
    ):
        assert figures[name] > 0
    assert set(figures["cpu_ms_per_task_by_thread"]) >= {"pod-launcher", "pod-watcher", "engine-loop"}
