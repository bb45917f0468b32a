"""The published airflow.cfg: the executor's part + the control plane's settings, never a secret."""

from __future__ import annotations

import configparser

import pytest

from airflow_k8s.executor.contract.config import ExecutorConfig
from airflow_k8s.executor.contract.config_keys import WORKERS_KEYS
from airflow_k8s.executor.contract.config_loader import parse_config
from airflow_k8s.executor.contract.errors import ConfigError
from airflow_k8s.infra.components import airflowcfg
from airflow_k8s.infra.components.airflowcfg import AIRFLOW_KEYS, FORBIDDEN, ControlPlaneSettings, merge, publish
from airflow_k8s.infra.config.args import LoggingSpec
from airflow_k8s.infra.render.offline import Evaluation

from .conftest import SECRET_API_KEY, SECRET_DB_URL, SECRET_FERNET, SECRET_JWT, one


def _cfg(evaluation: Evaluation) -> configparser.ConfigParser:
    text = one(evaluation, "ConfigMap", "airflow-config")["data"]["airflow.cfg"]
    parser = configparser.ConfigParser(interpolation=None, strict=True)  # one [core]: no duplicate sections
    parser.read_string(text)
    return parser


def test_control_plane_settings_are_airflow_3_keys_and_never_secrets(stack) -> None:
    evaluation = stack(fernet=True)
    text = one(evaluation, "ConfigMap", "airflow-config")["data"]["airflow.cfg"]
    parser = _cfg(evaluation)
    executor_sections = {"kubernetes_executor"} | {s for s in parser.sections() if s.startswith("kubernetes_tier:")}
    for section in parser.sections():
        for key in parser.options(section):
            if section in executor_sections or (section, key) in {
                ("core", "executor"),
                ("core", "execution_api_server_url"),
                *(("workers", k.name) for k in WORKERS_KEYS),  # the executor's: what task pods get
            }:
                continue
            assert (section, key) in AIRFLOW_KEYS, (section, key)
    assert not any(parser.has_option(section, key) for section, key in FORBIDDEN)
    assert not any(value in text for value in (SECRET_DB_URL, SECRET_FERNET, SECRET_JWT, SECRET_API_KEY))


def test_defaults_point_airflow_at_the_platforms_paths_services_and_health_server(default_eval: Evaluation) -> None:
    cfg = _cfg(default_eval)
    assert (
        dict(cfg["core"]).items()
        >= {
            "executor": "airflow_k8s.executor.airflow.KubernetesPlatformExecutor",
            "execution_api_server_url": "http://airflow-api-server.airflow.svc.cluster.local:8080/execution/",
            "dags_folder": "/opt/airflow/dags",
            "load_examples": "False",
            "hostname_callable": "airflow.utils.net.get_host_ip_address",
        }.items()
    )
    assert cfg["api"]["base_url"] == "http://airflow-api-server.airflow.svc.cluster.local:8080"
    assert (cfg["scheduler"]["enable_health_check"], cfg["scheduler"]["scheduler_health_check_server_port"]) == (
        "True",
        "8974",
    )
    assert cfg["logging"]["base_log_folder"] == "/opt/airflow/logs"
    assert cfg["logging"]["remote_logging"] == "False"


def test_ui_url_and_remote_logging_come_from_stack_keys(stack) -> None:
    cfg = _cfg(
        stack(
            apiBaseUrl="https://airflow.example.com/",
            remoteBaseLogFolder="s3://team-logs/airflow",
            remoteLogConnId="aws_logs",
            remoteLogCidr="52.216.0.0/15",
        )
    )
    assert cfg["api"]["base_url"] == "https://airflow.example.com"
    assert (
        dict(cfg["logging"]).items()
        >= {
            "remote_logging": "True",
            "remote_base_log_folder": "s3://team-logs/airflow",
            "remote_log_conn_id": "aws_logs",
        }.items()
    )
    # task pods still call the api-server directly, never through the UI's ingress
    assert cfg["core"]["execution_api_server_url"].startswith("http://airflow-api-server.airflow.svc")


def test_published_cfg_loads_back_to_the_executor_config() -> None:
    config = ExecutorConfig(
        namespace="team", execution_api_server_url="http://x.team.svc.cluster.local:8080/execution/"
    )
    text = publish(config, ControlPlaneSettings("http://x:8080", LoggingSpec("gs://b/l", "gcp")))
    assert parse_config(text, environ={}) == config


def test_merge_adds_keys_to_existing_sections_and_new_sections_after() -> None:
    text = "# h\n[core]\nexecutor = X\n\n[kubernetes_executor]\nnamespace = n\n"
    merged = merge(text, {"core": {"dags_folder": "/d"}, "api": {"port": "8080"}})
    assert (
        merged
        == "# h\n[core]\nexecutor = X\ndags_folder = /d\n\n[kubernetes_executor]\nnamespace = n\n\n[api]\nport = 8080\n"
    )


def test_publish_refuses_a_secret_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    sections = airflowcfg.control_plane_sections

    def leaky(settings: ControlPlaneSettings) -> dict[str, dict[str, str]]:
        return {**sections(settings), "database": {"sql_alchemy_conn": "postgresql://u:p@h/d"}}

    monkeypatch.setattr(airflowcfg, "control_plane_sections", leaky)
    with pytest.raises(ConfigError, match=r"infra may not write \[database\] sql_alchemy_conn"):
        publish(ExecutorConfig(), ControlPlaneSettings("http://x"))


def test_airflows_throughput_limits_follow_worker_pods_max(default_eval: Evaluation) -> None:
    """At Airflow's defaults (parallelism 32, 16 tasks per DAG, 16 per scheduler query) the scheduler, not the
    executor, would set the pace; the platform raises them to what the executor may run."""
    cfg = _cfg(default_eval)
    n_max = cfg["kubernetes_executor"]["worker_pods_max"]
    assert (cfg["core"]["parallelism"], cfg["core"]["max_active_tasks_per_dag"]) == (n_max, n_max)
    assert cfg["core"]["default_pool_task_slot_count"] == n_max
    assert cfg["scheduler"]["max_tis_per_query"] == str(min(int(n_max), 512))
