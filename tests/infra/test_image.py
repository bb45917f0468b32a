"""The platform image's Dockerfile: pinned Airflow 3, executor only, the image's own packages kept."""

from __future__ import annotations

import re
from pathlib import Path

from airflow_k8s.infra.config.args import ExecutorSettings
from airflow_k8s.infra.config.stack_keys import KEYS_BY_NAME

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
AIRFLOW = "3.3.2"


def _instructions() -> list[str]:
    joined = re.sub(r"\\\n", " ", DOCKERFILE)
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_it_builds_from_a_pinned_airflow_3_image_of_the_same_version_task_pods_run() -> None:
    lines = _instructions()
    (base,) = [line for line in lines if line.startswith("FROM ")]
    assert base == "FROM ${AIRFLOW_BASE}"  # a build argument, so the real-cluster tier builds this very file
    (default,) = [line for line in lines if line.startswith("ARG AIRFLOW_BASE")]
    assert lines.index(default) < lines.index(base)  # declared before FROM, so FROM can use it
    assert default == f"ARG AIRFLOW_BASE=apache/airflow:{AIRFLOW}-python3.11"  # what users build on
    assert ExecutorSettings().worker_image == KEYS_BY_NAME["workerImage"].default == f"apache/airflow:{AIRFLOW}"


def test_it_installs_the_executor_half_under_the_image_users_constraints() -> None:
    lines = _instructions()
    (install,) = [line for line in lines if line.startswith("RUN pip install")]
    assert "-c /tmp/image-constraints.txt" in install  # kubernetes and Airflow stay the image's own
    assert "[infra]" not in install and "pulumi" not in install
    assert not re.search(r"pip install[^\n]*\bkubernetes\b", DOCKERFILE)
    copied = {line.split()[-1] for line in lines if line.startswith("COPY")}
    assert copied == {"./", "./airflow_k8s", "./executor", "./pod_templates"}
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {"infra", "tests", ".venv", "build", ".git"} <= set(ignored)


def test_it_runs_as_the_airflow_user_the_pods_run_as_and_keeps_the_images_entrypoint() -> None:
    users = [line for line in _instructions() if line.startswith("USER ")]
    assert users == ["USER airflow"]  # UID 50000: the pods' runAsUser
    assert not any(line.startswith(("ENTRYPOINT", "CMD")) for line in _instructions())
