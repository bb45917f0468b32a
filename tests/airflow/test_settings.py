"""Settings through Airflow's own configuration, checked against the installed provider's key table."""

from __future__ import annotations

import dataclasses

import pytest
from airflow.configuration import AirflowConfigParser
from airflow.executors.base_executor import get_execution_api_server_url
from airflow.providers.cncf.kubernetes.get_provider_info import get_provider_info
from airflow.providers.cncf.kubernetes.pod_generator import make_safe_label_value
from hypothesis import given
from hypothesis import strategies as st

from airflow_k8s.executor.airflow.settings import load_settings
from airflow_k8s.executor.contract import config_keys, k8snames
from airflow_k8s.executor.contract.config import ExecutorConfig
from airflow_k8s.executor.contract.errors import ConfigError
from airflow_k8s.executor.tasks import identity

PROVIDER_KEYS = get_provider_info()["config"]["kubernetes_executor"]["options"]
EXECUTOR = "airflow_k8s.executor.airflow.KubernetesPlatformExecutor"
# Keys whose Airflow default means something other than "unset" here (docs/executor.md says how).
UNSET_DIFFERS = {
    "worker_pods_creation_batch_size",  # unset: no per-loop cap; set: Airflow's cap
    "task_publish_max_retries",  # unset: time-bounded quota pushback; set: Airflow's count
    "pod_template_file",  # Airflow's "" is unset; ours then names pod_template_dir/default_template.yaml
    "namespace",  # checked on its own below
}


def conf_with(text: str) -> AirflowConfigParser:
    parser = AirflowConfigParser()
    parser.read_string(text)
    return parser


def test_every_key_airflow_defines_is_one_this_executor_knows():
    assert set(PROVIDER_KEYS) == config_keys.AIRFLOW_KEYS


@pytest.mark.parametrize("key", sorted(set(PROVIDER_KEYS) - UNSET_DIFFERS))
def test_this_executors_default_is_airflows_default(key):
    default = PROVIDER_KEYS[key].get("default")
    ours = ExecutorConfig()
    if key in config_keys.ONLY_DEFAULT:
        assert (default or "") == config_keys.ONLY_DEFAULT[key][0]
        return
    if key in ("worker_container_repository", "worker_container_tag"):
        assert not default and ours.worker_container_image is None
        return
    spec = next(k for k in config_keys.KUBERNETES_KEYS if k.name == key)
    if default in (None, "") and key not in config_keys.EMPTY_IS_A_VALUE:
        assert getattr(ours, key) in (None, ()), key
    else:
        assert spec.parse(default or "") == getattr(ours, key)


def test_the_namespace_default_is_airflows():
    assert PROVIDER_KEYS["namespace"]["default"] == ExecutorConfig().namespace == "default"


def test_an_existing_airflow_3_section_with_every_key_at_its_default_loads_unchanged():
    lines = [f"{key} = {option.get('default') or ''}" for key, option in PROVIDER_KEYS.items()]
    text = f"[core]\nexecutor = {EXECUTOR}\n[kubernetes_executor]\n" + "\n".join(lines) + "\n"
    config = load_settings(conf_with(text))
    expected = dataclasses.replace(ExecutorConfig(), worker_pods_creation_batch_size=1, task_publish_max_retries=0)
    assert config == expected


def test_settings_come_from_the_file_and_environment_naming_where_each_came_from(monkeypatch):
    monkeypatch.setenv("AIRFLOW__KUBERNETES_EXECUTOR__WORKER_PODS_MAX", "7")
    parser = conf_with(f"[core]\nexecutor = {EXECUTOR}\n[kubernetes_executor]\nnamespace = team-a\n")
    config = load_settings(parser)
    assert (config.namespace, config.worker_pods_max) == ("team-a", 7)
    monkeypatch.setenv("AIRFLOW__KUBERNETES_EXECUTOR__WORKER_PODS_MAX", "lots")
    with pytest.raises(ConfigError) as info:
        load_settings(parser)
    assert "env:AIRFLOW__KUBERNETES_EXECUTOR__WORKER_PODS_MAX" in str(info.value) and "'lots'" in str(info.value)


def test_booleans_parse_as_airflow_parses_them():
    parser = conf_with("[kubernetes_executor]\ndelete_worker_pods = f\nverify_ssl = 0\n")
    assert parser.getboolean("kubernetes_executor", "delete_worker_pods") is False
    config = load_settings(parser)
    assert (config.delete_worker_pods, config.verify_ssl) == (False, False)
    with pytest.raises(ConfigError, match="boolean"):
        load_settings(conf_with("[kubernetes_executor]\ndelete_worker_pods = yes\n"))


def test_the_kubernetes_section_is_read_as_an_alias():
    assert load_settings(conf_with("[kubernetes]\nworker_pods_max = 3\n")).worker_pods_max == 3


def test_a_typo_that_airflow_would_ignore_is_an_error_with_a_suggestion():
    with pytest.raises(ConfigError, match="did you mean 'worker_pods_max'"):
        load_settings(conf_with("[kubernetes_executor]\nworker_pod_max = 3\n"))


def test_the_execution_api_url_is_airflows_effective_value():
    parser = conf_with("[api]\nbase_url = https://airflow.example.com/\n")
    url = get_execution_api_server_url(parser)
    assert load_settings(parser, execution_api_server_url=url).execution_api_server_url == url
    explicit = conf_with("[core]\nexecution_api_server_url = http://api:8080/execution/\n")
    got = load_settings(explicit, execution_api_server_url=get_execution_api_server_url(explicit))
    assert got.execution_api_server_url == "http://api:8080/execution/"


@given(st.text(max_size=120))
def test_pod_labels_are_the_providers_wherever_the_providers_are_valid(value):
    theirs = make_safe_label_value(value)
    ours = identity.safe_label_value(value)
    if k8snames.is_label_value(theirs):
        assert ours == theirs
    else:  # e.g. an id made only of symbols: the provider's "-<hash>" would be refused by the API server
        assert k8snames.is_label_value(ours) and ours == theirs.lstrip("-")


def test_pod_template_dir_alone_names_that_directorys_default_template():
    config = load_settings(conf_with("[kubernetes_executor]\npod_template_dir = /srv/pod_templates\n"))
    assert (config.pod_template_dir, config.pod_template_file) == (
        "/srv/pod_templates",
        "/srv/pod_templates/default_template.yaml",
    )


def test_every_configuration_error_is_in_one_message_as_the_scheduler_would_report_it(monkeypatch):
    monkeypatch.setenv("AIRFLOW__KUBERNETES_EXECUTOR__WORKER_PODS_MAX", "lots")
    parser = conf_with("[kubernetes_executor]\nimage_pull_policy = Sometimes\nworker_pod_min = 1\n")
    with pytest.raises(ConfigError) as info:
        load_settings(parser)
    message = str(info.value)
    assert message.startswith("3 invalid settings in airflow config:"), message
    for fragment in (
        "env:AIRFLOW__KUBERNETES_EXECUTOR__WORKER_PODS_MAX",
        "'Sometimes'",
        "did you mean 'worker_pods_min'",
    ):
        assert fragment in message, (fragment, message)


def test_settings_load_where_airflow_blocks_the_database_with_a_failing_command():
    # What Airflow's supervisor does in a DAG file processor, where the cluster policy reads these settings.
    parser = conf_with(f"[core]\nexecutor = {EXECUTOR}\n[kubernetes_executor]\nnamespace = team-a\n")
    parser.set("database", "sql_alchemy_conn_cmd", "/bin/false")
    assert load_settings(parser).namespace == "team-a"


def test_task_pods_get_the_operators_workers_retry_settings_or_else_the_executors():
    assert load_settings(conf_with("")).execution_api_retries == ExecutorConfig().execution_api_retries
    set_by_operator = conf_with("[workers]\nexecution_api_retries = 9\nexecution_api_retry_wait_max = 20\n")
    config = load_settings(set_by_operator)
    assert (config.execution_api_retries, config.execution_api_retry_wait_max) == (9, 20.0)
    assert config.execution_api_retry_wait_min == ExecutorConfig().execution_api_retry_wait_min
