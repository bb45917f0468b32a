"""The Airflow benchmark runs end to end on a small N (its speed figures are printed, never asserted)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

TASKS = 100


@pytest.mark.timeout(600)
def test_the_airflow_benchmark_runs_both_executors_and_prints_figures_ratios_and_verdicts(tmp_path):
    report_file = tmp_path / "report.json"
    completed = subprocess.run(
        [sys.executable, "bench/bench_airflow.py", "--tasks", str(TASKS), "--workdir", str(tmp_path / "work"),
         "--json-out", str(report_file), "--repeat", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=540, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    report = json.loads(report_file.read_text())
    runs = report["runs"]
    assert [r["executor"] for r in runs] == ["provider", "provider", "ours"]
    # both sides at their defaults: the same N_max and parallelism, nothing else but the batch size run's key
    assert runs[1]["settings"] == {"worker_pods_max": str(TASKS), "worker_pods_creation_batch_size": "64"}
    assert not any(key.startswith("worker_pods_creation_qps") for key in runs[2]["settings"])
    for run in runs:
        assert (run["lost"], run["duplicated"], run["pods_left"]) == (0, 0, 0), run
        assert run["creates"] == run["tasks"] == TASKS
        assert run["final_states"] == {"success": TASKS}
        for figure in ("pods_per_s", "wall_s", "cpu_ms_per_task", "peak_rss_mb", "created_p50_s", "running_p99_s"):
            assert run[figure] > 0, (figure, run)
        assert run["created_p50_s"] <= run["created_p99_s"] <= run["running_p99_s"]
    assert runs[0]["processes"] > 1  # the provider's Manager servers and watcher are in the measured tree
    assert "window" in runs[2]["flow_control"]
    assert [(s["executor"], s["samples"]) for s in report["summary"]] == [("provider", 1), ("provider", 1), ("ours", 1)]
    assert len(report["ratios"]) == 2

    out = completed.stdout
    assert out.startswith("HEADLINE: both executors at their defaults")
    assert "executor  config" in out and "CPU ms/task" in out and "running p50/p99 s" in out
    assert out.count("throughput >= 10x the provider's") == 2
    assert out.count("CPU per task <= 1/10 of the provider's") == 2
