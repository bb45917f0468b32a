"""Airflow 3.3's [kubernetes_executor] keys: each honoured with Airflow's meaning, or accepted at its default.

The list of keys and Airflow's defaults are checked against the installed provider in the Airflow
test tier (``tests/airflow/``); here the loader's handling of each key is checked on its own.
"""

from __future__ import annotations

import pytest

from airflow_k8s.executor.contract import config_keys
from airflow_k8s.executor.contract.config import FATAL_CONTAINER_STATE_REASONS, ExecutorConfig
from airflow_k8s.executor.contract.config_loader import parse_config
from airflow_k8s.executor.contract.config_render import render_config
from airflow_k8s.executor.contract.errors import ConfigError


def parse(*lines: str, **env: str) -> ExecutorConfig:
    return parse_config("[kubernetes_executor]\n" + "\n".join(lines) + "\n", source="test.cfg", environ=env)


def test_defaults_are_airflows_defaults():
    config = ExecutorConfig()
    assert config.namespace == "default"
    assert (config.delete_worker_pods, config.delete_worker_pods_on_failure) == (True, False)
    assert config.worker_pod_pending_fatal_container_state_reasons == FATAL_CONTAINER_STATE_REASONS
    assert (config.enable_tcp_keepalive, config.tcp_keep_idle, config.tcp_keep_intvl, config.tcp_keep_cnt) == (
        True, 120, 30, 6)  # fmt: skip
    assert (config.verify_ssl, config.in_cluster, config.multi_namespace_mode) == (True, True, False)
    assert (config.running_pod_log_lines, config.pod_launch_failure_retries) == (100, 1)
    assert config.pod_launch_failure_excluded_container_reasons == ("Error",)


def test_an_empty_value_of_an_airflow_key_means_unset_as_in_airflow():
    config = parse("ssl_ca_cert = ", "worker_pods_creation_batch_size = ", "kube_client_request_args = ",
                   "pod_template_file = ", "worker_container_repository = ", "worker_container_tag = ")  # fmt: skip
    assert config == ExecutorConfig()


def test_an_empty_reason_list_is_an_empty_list_not_the_default():
    config = parse("worker_pod_pending_fatal_container_state_reasons = ")
    assert config.worker_pod_pending_fatal_container_state_reasons == ()


def test_comma_lists_are_split_and_trimmed():
    config = parse("worker_pod_pending_fatal_container_state_reasons = ErrImagePull, InvalidImageName")
    assert config.worker_pod_pending_fatal_container_state_reasons == ("ErrImagePull", "InvalidImageName")
    with pytest.raises(ConfigError, match="container state reason"):
        parse("worker_pod_pending_fatal_container_state_reasons = Err Image")


def test_failed_pods_are_deleted_only_when_both_delete_switches_are_on():
    assert parse("delete_worker_pods = True", "delete_worker_pods_on_failure = True").delete_failed_pods()
    assert not parse("delete_worker_pods = False", "delete_worker_pods_on_failure = True").delete_failed_pods()
    assert not parse("delete_worker_pods = True", "delete_worker_pods_on_failure = False").delete_failed_pods()


def test_creation_batch_size_is_unset_unless_given():
    assert ExecutorConfig().worker_pods_creation_batch_size is None
    assert parse("worker_pods_creation_batch_size = 64").worker_pods_creation_batch_size == 64
    with pytest.raises(ConfigError, match=">= 1"):
        parse("worker_pods_creation_batch_size = 0")


def test_pod_creation_max_concurrency_sets_the_creation_workers_when_positive():
    assert parse("pod_creation_max_concurrency = 0").creation_workers() == ExecutorConfig().worker_pods_creation_workers
    assert parse("pod_creation_max_concurrency = 4", "worker_pods_creation_workers = 9").creation_workers() == 4
    with pytest.raises(ConfigError, match="<= 256"):
        parse("pod_creation_max_concurrency = 100000")


def test_multi_namespace_mode_takes_its_namespace_list():
    config = parse("namespace = team-a", "multi_namespace_mode = True",
                   "multi_namespace_mode_namespace_list = team-a,team-b")  # fmt: skip
    assert config.namespaces() == ("team-a", "team-b")
    assert parse("multi_namespace_mode = True").namespaces() is None  # any namespace
    assert parse("namespace = team-a").namespaces() == ("team-a",)


def test_the_namespace_list_must_include_the_default_namespace():
    with pytest.raises(ConfigError, match="must include the default namespace 'team-a'"):
        parse("namespace = team-a", "multi_namespace_mode = True", "multi_namespace_mode_namespace_list = team-b")


def test_system_namespaces_are_refused_everywhere():
    with pytest.raises(ConfigError, match="system namespace"):
        parse("namespace = kube-system")
    with pytest.raises(ConfigError, match="system namespace"):
        parse("multi_namespace_mode = True", "multi_namespace_mode_namespace_list = default,kube-public")


def test_kube_client_request_args_honours_request_timeout_only():
    assert parse('kube_client_request_args = {"_request_timeout": [5, 30]}').request_timeout() == (5.0, 30.0)
    assert parse('kube_client_request_args = {"_request_timeout": 12}').request_timeout() == 12.0
    assert parse("kube_request_timeout = 7").request_timeout() == 7.0
    with pytest.raises(ConfigError, match="only _request_timeout"):
        parse('kube_client_request_args = {"_preload_content": false}')
    with pytest.raises(ConfigError, match="3600"):
        parse('kube_client_request_args = {"_request_timeout": 1e9}')


def test_delete_option_kwargs_become_delete_options():
    config = parse('delete_option_kwargs = {"grace_period_seconds": 10, "propagation_policy": "Foreground"}')
    assert config.delete_options() == {"gracePeriodSeconds": 10, "propagationPolicy": "Foreground"}
    with pytest.raises(ConfigError, match="not supported"):
        parse('delete_option_kwargs = {"dry_run": ["All"]}')
    with pytest.raises(ConfigError, match="grace_period_seconds"):
        parse('delete_option_kwargs = {"grace_period_seconds": -1}')


def test_tls_and_keepalive_settings_parse():
    config = parse("verify_ssl = False", "ssl_ca_cert = /etc/ca.pem", "enable_tcp_keepalive = f", "tcp_keep_cnt = 9")
    assert (config.verify_ssl, config.ssl_ca_cert, config.enable_tcp_keepalive, config.tcp_keep_cnt) == (
        False, "/etc/ca.pem", False, 9)  # fmt: skip
    with pytest.raises(ConfigError, match="<= 127"):
        parse("tcp_keep_cnt = 1000")


def test_client_factory_is_an_import_path():
    assert parse("client_factory = my_pkg.clients.make").client_factory == "my_pkg.clients.make"
    with pytest.raises(ConfigError, match="import path"):
        parse("client_factory = not a path")


def test_async_client_factory_is_accepted_only_unset():
    assert parse("async_client_factory = ") == ExecutorConfig()
    with pytest.raises(ConfigError, match="executor's own threads"):
        parse("async_client_factory = my_pkg.make_async")


@pytest.mark.parametrize("key", sorted(config_keys.OBSOLETE))
def test_obsolete_airflow_keys_are_accepted_and_ignored(key):
    assert parse(f"{key} = 30") == ExecutorConfig()


def test_task_publish_max_retries_is_unset_unless_given():
    assert ExecutorConfig().task_publish_max_retries is None
    assert parse("task_publish_max_retries = -1").task_publish_max_retries == -1
    assert parse("task_publish_max_retries = 0").task_publish_max_retries == 0


def test_execution_api_server_url_comes_from_core():
    text = "[core]\nexecution_api_server_url = http://airflow-api:8080/execution/\n"
    config = parse_config(text, environ={})
    assert config.execution_api_server_url == "http://airflow-api:8080/execution/"
    assert "execution_api_server_url = http://airflow-api:8080/execution/" in render_config(config)
    with pytest.raises(ConfigError, match="URL"):
        parse_config("[core]\nexecution_api_server_url = airflow-api:8080\n", environ={})
    env = {"AIRFLOW__CORE__EXECUTION_API_SERVER_URL": "https://api.example/execution/"}
    assert parse_config("", environ=env).execution_api_server_url == "https://api.example/execution/"


def test_every_airflow_key_round_trips_through_render():
    config = parse(
        "namespace = team-a", "multi_namespace_mode = True", "multi_namespace_mode_namespace_list = team-a,b",
        "worker_pods_creation_batch_size = 8", 'kube_client_request_args = {"_request_timeout": [3, 20]}',
        'delete_option_kwargs = {"grace_period_seconds": 0}', "ssl_ca_cert = /ca.pem", "client_factory = a.b",
        "task_publish_max_retries = 3", "pod_launch_failure_excluded_container_reasons = ",
    )  # fmt: skip
    assert parse_config(render_config(config), environ={}) == config
