"""The Task SDK of Airflow 3.3.2 reads the retry settings the executor puts into task pods."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from airflow_k8s.executor.contract.config import ExecutorConfig
from airflow_k8s.executor.pods.podfactory import task_api_env
from tests.conftest import ROOT

READ_RETRY_POLICY = """
import json
from airflow.sdk.api.client import Client
policy = Client.request.retry
print(json.dumps([policy.stop.max_attempt_number, policy.wait.min, policy.wait.max]))
"""


def sdk_retry_policy(env: dict[str, str]) -> list[float]:
    """(attempts, least wait, most wait) of the Task SDK's Execution API client, in a fresh interpreter."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__WORKERS__")}
    done = subprocess.run(
        [sys.executable, "-c", READ_RETRY_POLICY],
        env={**base, **env},
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


def test_the_task_sdk_retries_as_the_pods_environment_says():
    config = ExecutorConfig()
    assert sdk_retry_policy({}) == [5, 1.0, 90.0]  # Airflow's own defaults
    expected = [config.execution_api_retries, config.execution_api_retry_wait_min, config.execution_api_retry_wait_max]
    assert sdk_retry_policy(task_api_env(config)) == expected
