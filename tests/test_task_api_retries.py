"""How task pods retry the Execution API: Airflow's ``[workers]`` keys, forwarded into every task pod.

The Task SDK retries each Execution API call ``execution_api_retries`` times, waiting between
``execution_api_retry_wait_min`` and ``..._max`` seconds; at Airflow's defaults (5, 1, 90) a call gives up after
as little as 4 s, less than an api-server restart takes.  The executor's defaults ride one out; an operator's
``[workers]`` values win.  (That the Task SDK reads these variables is checked in ``tests/airflow``.)
"""

from __future__ import annotations

import dataclasses

import pytest

from airflow_k8s.executor.contract.config import ExecutorConfig
from airflow_k8s.executor.contract.config_loader import parse_config
from airflow_k8s.executor.contract.config_render import render_config
from airflow_k8s.executor.contract.errors import ConfigError
from airflow_k8s.executor.pods.podfactory import build_pod, task_api_env
from airflow_k8s.executor.tasks.task import Task

URL = "[core]\nexecution_api_server_url = http://airflow-api:8080/execution/\n"
RETRY_ENV = (
    "AIRFLOW__WORKERS__EXECUTION_API_RETRIES",
    "AIRFLOW__WORKERS__EXECUTION_API_RETRY_WAIT_MIN",
    "AIRFLOW__WORKERS__EXECUTION_API_RETRY_WAIT_MAX",
)


def least_patience(config: ExecutorConfig) -> float:
    """Seconds a call keeps retrying at the least: every wait is drawn from [wait_min, ...]."""
    return (config.execution_api_retries - 1) * config.execution_api_retry_wait_min


def env_of(pod: dict) -> dict[str, str]:
    container = next(c for c in pod["spec"]["containers"] if c["name"] == "base")
    return {item["name"]: item.get("value") for item in container.get("env") or ()}


def a_task(**kubernetes_config) -> Task:
    data = {"dag_id": "d", "task_id": "t", "run_id": "r", "command": ["true"]}
    if kubernetes_config:
        data["kubernetes_config"] = kubernetes_config
    return Task.from_dict(data)


def test_the_defaults_ride_out_a_two_minute_api_server_outage_where_airflows_give_up_after_four_seconds():
    airflows = dataclasses.replace(
        ExecutorConfig(), execution_api_retries=5, execution_api_retry_wait_min=1.0, execution_api_retry_wait_max=90.0
    )
    assert least_patience(airflows) == 4.0
    assert least_patience(ExecutorConfig()) >= 120.0
    # ... and the most a call waits stays below Airflow's 300 s task_instance_heartbeat_timeout, after which
    # the scheduler fails the task anyway: waits are 5, 5, 5, then at most 8, then at most wait_max.
    config = ExecutorConfig()
    assert 3 * 5 + 8 + (config.execution_api_retries - 5) * config.execution_api_retry_wait_max < 300


def test_the_workers_section_sets_them_and_renders_back():
    config = parse_config(
        URL + "[workers]\nexecution_api_retries = 12\nexecution_api_retry_wait_min = 2\n"
        "execution_api_retry_wait_max = 30.5\nmin_heartbeat_interval = 5\n",
        environ={},
    )  # min_heartbeat_interval is Airflow's alone: ignored here, as other [core] keys are
    assert (config.execution_api_retries, config.execution_api_retry_wait_min) == (12, 2.0)
    assert config.execution_api_retry_wait_max == 30.5
    text = render_config(config)
    assert "[workers]" in text and "execution_api_retries = 12" in text
    assert parse_config(text, environ={}) == config


def test_environment_variables_override_the_file_as_in_airflow():
    env = {"AIRFLOW__WORKERS__EXECUTION_API_RETRIES": "40"}
    config = parse_config(URL + "[workers]\nexecution_api_retries = 12\n", environ=env)
    assert config.execution_api_retries == 40


@pytest.mark.parametrize(
    ("lines", "named"),
    [
        ("execution_api_retries = 0", "execution_api_retries"),
        ("execution_api_retry_wait_min = soon", "execution_api_retry_wait_min"),
        ("execution_api_retry_wait_min = 20\nexecution_api_retry_wait_max = 10", "execution_api_retry_wait_min"),
    ],
)
def test_bad_values_are_errors_naming_the_key(lines, named):
    with pytest.raises(ConfigError) as info:
        parse_config(f"[workers]\n{lines}\n", source="airflow.cfg", environ={})
    assert named in str(info.value) and "[workers]" in str(info.value) and "airflow.cfg" in str(info.value)


def test_every_task_pod_gets_them_next_to_the_execution_api_url(seed_config, templates):
    config = dataclasses.replace(seed_config, execution_api_server_url="http://api:8080/execution/")
    env = env_of(build_pod(a_task(), config, templates))
    assert (
        {name: env[name] for name in RETRY_ENV}
        == task_api_env(config)
        == {
            "AIRFLOW__WORKERS__EXECUTION_API_RETRIES": "30",
            "AIRFLOW__WORKERS__EXECUTION_API_RETRY_WAIT_MIN": "5.0",
            "AIRFLOW__WORKERS__EXECUTION_API_RETRY_WAIT_MAX": "10.0",
        }
    )


def test_a_pod_that_calls_no_execution_api_gets_none(seed_config, templates):
    assert not set(RETRY_ENV) & set(env_of(build_pod(a_task(), seed_config, templates)))


def test_a_tasks_own_value_wins_over_the_executors(seed_config, templates):
    config = dataclasses.replace(seed_config, execution_api_server_url="http://api:8080/execution/")
    pod = build_pod(a_task(env={"AIRFLOW__WORKERS__EXECUTION_API_RETRIES": "3"}), config, templates)
    env = env_of(pod)
    assert env["AIRFLOW__WORKERS__EXECUTION_API_RETRIES"] == "3"
    assert env["AIRFLOW__WORKERS__EXECUTION_API_RETRY_WAIT_MIN"] == "5.0"
