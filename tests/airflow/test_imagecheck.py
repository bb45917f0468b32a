"""The in-image checker run as the preflight Job runs it (``python -c <source>``) on a Python with Airflow 3.3.2."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_k8s.executor.imagecheck import incontainer


@pytest.fixture
def spec(tmp_path: Path) -> dict:
    home = tmp_path / "opt-airflow"
    (home / "dags").mkdir(parents=True)
    (home / "logs").mkdir()
    (home / "airflow.cfg").write_text(
        f"[core]\ndags_folder = {home / 'dags'}\nload_examples = False\n"
        "execution_api_server_url = http://localhost:8080/execution/\n"
    )
    return {
        "image": "registry.example/airflow-k8s:0.1.0", "role": "scheduler", "uid": os.getuid(), "gid": os.getgid(),
        "airflow_home": str(home), "airflow_config": str(home / "airflow.cfg"), "dags_folder": str(home / "dags"),
        "logs_folder": str(home / "logs"), "airflow_version": "3.3.2", "executor_version": "0.1.0",
        "execution_api_url": "http://localhost:8080/execution/", "resolve_seconds": 0,
    }  # fmt: skip


def check(spec: dict, **env: str) -> tuple[int, list[str]]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")} | env
    done = subprocess.run(
        [sys.executable, "-c", inspect.getsource(incontainer), "--spec", json.dumps(spec)],
        capture_output=True, text=True, check=False, timeout=300, env=environ, cwd=spec["airflow_home"],
    )  # fmt: skip
    return done.returncode, done.stdout.strip().splitlines()


def test_an_image_with_airflow_the_task_sdk_and_this_executor_passes_every_check(spec):
    code, lines = check(spec)
    assert code == 0, lines
    assert [line.split(":")[0] for line in lines[:-1]] == [
        "ok    user", "ok    airflow-home", "ok    airflow.cfg", "ok    dags", "ok    airflow", "ok    task-sdk",
        "ok    executor", "ok    execution-api", "ok    writable",
    ]  # fmt: skip
    assert lines[-1] == "image registry.example/airflow-k8s:0.1.0 (scheduler): all 9 checks passed"


def test_an_image_with_another_airflow_home_is_stopped_although_airflow_then_reads_the_platforms_config(spec):
    code, lines = check(spec, AIRFLOW_HOME="/home/airflow/airflow")
    assert code == 1
    assert lines[-1] == (
        "image registry.example/airflow-k8s:0.1.0 (scheduler) cannot run the platform's pods: "
        + incontainer.other_airflow_home("AIRFLOW_HOME", "/home/airflow/airflow", spec["airflow_home"])
    )
    assert any(line.startswith("ok    airflow: Airflow 3.3.2 imports and reads") for line in lines)


def test_a_scheduler_image_without_the_executor_or_at_another_airflow_version_is_stopped(spec):
    code, lines = check({**spec, "executor_class": "airflow_k8s_missing.KubernetesPlatformExecutor",
                         "airflow_version": "3.4.0"})  # fmt: skip
    assert code == 1
    problems = lines[-1].split(": ", 1)[1].split("; ")
    assert problems[0] == "Airflow is 3.3.2 in the image, the platform expects 3.4.0 (airflowVersion)"
    assert problems[1].startswith("this platform's executor is not in the image (import airflow_k8s_missing.")
    assert "ModuleNotFoundError" in problems[1]


def test_an_airflow_that_reads_another_dags_folder_is_named(spec):
    cfg = Path(spec["airflow_config"])
    cfg.write_text(cfg.read_text().replace(f"dags_folder = {spec['dags_folder']}", "dags_folder = /srv/dags"))
    code, lines = check(spec)
    assert code == 1
    assert "Airflow does not use the platform's layout: [core] dags_folder = /srv/dags" in lines[-1]
