"""The airflow.cfg contract: parsing, validation errors, env overrides and round-trips."""

from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_k8s.executor.contract.config import DEFAULT_TIERS, EXECUTOR_CLASS, ExecutorConfig, Tier, Toleration
from airflow_k8s.executor.contract.config_loader import load_config, parse_config
from airflow_k8s.executor.contract.config_render import render_config
from airflow_k8s.executor.contract.errors import ConfigError, ConfigErrors
from tests.conftest import SEED_CFG

SEED = Path("/work/shared/seed/kubernetes-executor-deep-dive.txt")


def parse(text: str, **env: str) -> ExecutorConfig:
    return parse_config(text, source="test.cfg", environ=env)


def kubernetes(*lines: str) -> str:
    return "[kubernetes]\n" + "\n".join(lines) + "\n"


def test_the_seeds_configuration_parses_into_typed_values():
    config = parse(SEED_CFG)
    assert config.executor == EXECUTOR_CLASS
    assert config.namespace == "airflow"
    assert config.worker_container_image == "apache/airflow:2.8.0"
    assert config.worker_service_account_name == "airflow-worker"
    assert config.default_requests() == {"cpu": "500m", "memory": "1Gi"}
    assert config.default_limits() == {"cpu": "1000m", "memory": "2Gi"}
    assert config.delete_worker_pods is True and config.delete_worker_pods_on_failure is True
    assert config.pod_creation_timeout == 600 and config.max_pod_pending_timeout == 600
    assert config.worker_node_selector == () and config.worker_tolerations == ()
    assert config.tiers == DEFAULT_TIERS


@pytest.mark.skipif(not SEED.exists(), reason="seed document not available")
def test_the_config_block_copied_from_the_seed_document_parses_once_core_executor_names_this_executor():
    text = SEED.read_text()
    block = text[text.index("[core]") : text.index("Pod Template Configuration")]
    with pytest.raises(ConfigError, match=f"not listed; set executor = {EXECUTOR_CLASS}"):
        parse(block)
    migrated = block.replace("executor = KubernetesExecutor", f"executor = {EXECUTOR_CLASS}")
    assert parse(migrated).namespace == "airflow"


def test_commented_json_settings_of_the_seed_parse_when_enabled():
    config = parse(
        kubernetes(
            'worker_node_selector = {"node-type": "worker"}',
            "worker_tolerations = "
            '[{"key": "dedicated", "operator": "Equal", "value": "worker", "effect": "NoSchedule"}]',
        )
    )
    assert config.node_selector() == {"node-type": "worker"}
    assert config.worker_tolerations == (Toleration("dedicated", "Equal", "worker", "NoSchedule"),)


def test_defaults_apply_when_the_section_is_empty():
    assert parse("[kubernetes]\n") == ExecutorConfig()


def test_the_kubernetes_section_is_an_alias_of_kubernetes_executor():
    assert parse("[kubernetes_executor]\nnamespace = jobs\n").namespace == "jobs"
    assert parse("[kubernetes]\nnamespace = jobs\n").namespace == "jobs"


def test_a_key_set_in_both_section_names_is_an_error():
    with pytest.raises(ConfigError, match="set twice"):
        parse("[kubernetes]\nnamespace = a\n[kubernetes_executor]\nnamespace = b\n")


def test_environment_variables_override_the_file():
    config = parse(kubernetes("namespace = fromfile"), AIRFLOW__KUBERNETES__NAMESPACE="fromenv")
    assert config.namespace == "fromenv"
    config = parse(kubernetes(), AIRFLOW__KUBERNETES_EXECUTOR__WORKER_PODS_MAX="3")
    assert config.worker_pods_max == 3


def test_a_bad_environment_override_names_the_variable():
    with pytest.raises(ConfigError) as info:
        parse(kubernetes(), AIRFLOW__KUBERNETES__DELETE_WORKER_PODS="maybe")
    message = str(info.value)
    assert "env:AIRFLOW__KUBERNETES__DELETE_WORKER_PODS" in message and "maybe" in message


def test_an_unknown_environment_key_is_an_error():
    with pytest.raises(ConfigError, match="unknown key; did you mean 'namespace'"):
        parse(kubernetes(), AIRFLOW__KUBERNETES__NAMESPAC="x")


def test_unknown_keys_get_a_did_you_mean():
    with pytest.raises(ConfigError) as info:
        parse(kubernetes("worker_resource_request_cpus = 1"))
    assert "did you mean 'worker_resource_request_cpu'" in str(info.value)
    assert info.value.key == "worker_resource_request_cpus" and info.value.section == "kubernetes"


def test_airflow_keys_this_executor_cannot_honour_are_accepted_only_at_their_default():
    assert parse(kubernetes("api_client_retry_configuration = ")) == ExecutorConfig()
    with pytest.raises(ConfigError, match="retries API calls itself") as info:
        parse(kubernetes('api_client_retry_configuration = {"total": 3}'))
    assert info.value.key == "api_client_retry_configuration"


def test_airflow_pending_timeout_name_is_an_alias():
    assert parse(kubernetes("worker_pods_pending_timeout = 42")).max_pod_pending_timeout == 42
    with pytest.raises(ConfigError, match="set twice"):
        parse(kubernetes("worker_pods_pending_timeout = 42", "max_pod_pending_timeout = 43"))


def test_airflow_repository_and_tag_compose_the_image():
    config = parse(kubernetes("worker_container_repository = apache/airflow", "worker_container_tag = 2.9.1"))
    assert config.worker_container_image == "apache/airflow:2.9.1"
    with pytest.raises(ConfigError, match="together"):
        parse(kubernetes("worker_container_tag = 2.9.1"))
    with pytest.raises(ConfigError, match="not both"):
        parse(kubernetes("worker_container_image = x:1", "worker_container_tag = 2", "worker_container_repository = r"))


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("worker_resource_request_cpu = 500x", "not a Kubernetes quantity"),
        ("worker_resource_request_memory = 1Kb", "not a Kubernetes quantity"),
        ("worker_resource_limit_cpu = -1", "greater than zero"),
        ("worker_resource_limit_memory = 0", "greater than zero"),
        ("worker_node_selector = {not json", "invalid JSON"),
        ('worker_node_selector = ["a"]', "JSON object"),
        ('worker_node_selector = {"node type": "x"}', "not a valid label key"),
        ("worker_tolerations = {}", "JSON array"),
        ('worker_tolerations = [{"key": "a", "operator": "Maybe"}]', "operator"),
        ('worker_tolerations = [{"key": "a", "effect": "Sometimes", "value": "b"}]', "effect"),
        ('worker_tolerations = [{"key": "a", "operator": "Exists", "value": "b"}]', "must not have a value"),
        ('worker_tolerations = [{"key": "a", "value": "b", "tolerationSeconds": 5}]', "NoExecute"),
        ('worker_tolerations = [{"key": "a", "value": "b", "colour": "red"}]', "unknown toleration field"),
        ("image_pull_policy = Sometimes", "Always, IfNotPresent, Never"),
        ("pod_creation_timeout = -5", ">= 1"),
        ("max_pod_pending_timeout = 0", ">= 1"),
        ("max_pod_pending_timeout = ten", "whole number"),
        ("delete_worker_pods = perhaps", "boolean"),
        ("namespace = Airflow_NS", "DNS-1123"),
        ("worker_service_account_name = -sa", "DNS-1123"),
        ("worker_container_image = has space", "container image"),
        ("pod_template_dir = relative/dir", "absolute path"),
        ("worker_pods_creation_qps = nan", "expected a number"),
        ("worker_pods_creation_qps = 1e-300", "must be a finite number of at least 0.01"),
        ("worker_pods_creation_qps = 0", "at least 0.01"),
        ('task_allowed_tolerations = [{"operator": "Exists"}]', "tolerates every taint"),
        ('task_allowed_tolerations = [{"operator": "Exists", "effect": "NoSchedule"}]', "tolerates every taint"),
        ("metrics_port = 70000", "<= 65535"),
        ("scheduler_instance_id = a,b!=c", "not a valid label value"),
    ],
)
def test_bad_values_are_rejected_naming_file_section_key_and_value(line, fragment):
    key, _, value = line.partition(" = ")
    with pytest.raises(ConfigError) as info:
        parse(kubernetes(line))
    message = str(info.value)
    assert fragment in message
    assert "test.cfg" in message and "[kubernetes]" in message and key in message and repr(value) in message


def test_request_above_limit_is_rejected():
    with pytest.raises(ConfigError, match="greater than worker_resource_limit_memory") as info:
        parse(kubernetes("worker_resource_request_memory = 2Gi", "worker_resource_limit_memory = 1Gi"))
    assert info.value.key == "worker_resource_request_memory"
    # Different units compare by value, not by text.
    parse(kubernetes("worker_resource_request_memory = 1024Mi", "worker_resource_limit_memory = 1Gi"))


def test_pod_creations_have_no_rate_cap_unless_the_operator_sets_one():
    assert parse(kubernetes()).worker_pods_creation_qps is None
    assert parse(kubernetes()).worker_pods_creation_burst is None
    capped = parse(kubernetes("worker_pods_creation_qps = 20", "worker_pods_creation_burst = 40"))
    assert (capped.worker_pods_creation_qps, capped.worker_pods_creation_burst) == (20.0, 40)
    assert "worker_pods_creation_qps" not in render_config(parse(kubernetes()))


def test_a_creation_burst_without_a_qps_is_rejected_naming_both_keys():
    with pytest.raises(ConfigError, match="set worker_pods_creation_qps too") as info:
        parse(kubernetes("worker_pods_creation_burst = 40"))
    assert info.value.key == "worker_pods_creation_burst"


def test_n_min_above_n_max_is_rejected():
    with pytest.raises(ConfigError, match="N_min is greater than worker_pods_max = 2"):
        parse(kubernetes("worker_pods_min = 3", "worker_pods_max = 2"))


def test_the_default_template_must_live_in_the_template_directory():
    with pytest.raises(ConfigError, match="directly inside pod_template_dir"):
        parse(kubernetes("pod_template_file = /etc/passwd"))
    with pytest.raises(ConfigError, match="directly inside pod_template_dir"):
        parse(kubernetes("pod_template_file = /opt/airflow/pod_templates/../../../etc/passwd"))


def test_an_unset_pod_template_file_is_the_default_template_of_pod_template_dir():
    assert parse(kubernetes("pod_template_dir = /srv/templates")).pod_template_file == (
        "/srv/templates/default_template.yaml"
    )
    assert ExecutorConfig(pod_template_dir="/srv/t").pod_template_file == "/srv/t/default_template.yaml"
    assert ExecutorConfig().pod_template_file == "/opt/airflow/pod_templates/default_template.yaml"
    with pytest.raises(ConfigError, match="directly inside pod_template_dir"):
        parse(kubernetes("pod_template_dir = /srv/templates", "pod_template_file = /opt/airflow/pod_templates/x.yaml"))


def test_every_invalid_setting_is_reported_at_once_each_naming_its_key():
    with pytest.raises(ConfigErrors) as info:
        parse(kubernetes("worker_pods_max = 0", "image_pull_policy = Sometimes", "worker_pods_mx = 3"))
    assert [problem.key for problem in info.value.problems] == [
        "worker_pods_mx",
        "worker_pods_max",
        "image_pull_policy",
    ]
    assert "3 invalid settings" in str(info.value) and "did you mean 'worker_pods_max'" in str(info.value)
    with pytest.raises(ConfigErrors) as info:  # rules across keys, once every key parsed, all of them too
        parse(kubernetes("worker_pods_min = 3", "worker_pods_max = 2", "worker_resource_request_cpu = 2",
                         "worker_resource_limit_cpu = 1"))  # fmt: skip
    assert {problem.key for problem in info.value.problems} == {"worker_pods_min", "worker_resource_request_cpu"}


def test_kubeconfig_settings_are_ignored_with_a_warning_while_in_cluster(caplog):
    assert parse(kubernetes("config_file = /root/.kube/config")).config_file == "/root/.kube/config"
    assert "config_file is ignored while in_cluster = True" in caplog.text
    config = parse(kubernetes("in_cluster = False", "config_file = /k/config", "cluster_context = dev"))
    assert (config.in_cluster, config.config_file, config.cluster_context) == (False, "/k/config", "dev")


def test_the_core_executor_must_list_this_executor():
    with pytest.raises(ConfigError, match=r"\[core\] executor = 'CeleryExecutor'"):
        parse("[core]\nexecutor = CeleryExecutor\n")
    with pytest.raises(ConfigError, match="not listed"):
        parse("[core]\nexecutor = KubernetesExecutor\n")  # Airflow's own, from the provider
    assert parse(f"[core]\nexecutor = CeleryExecutor,{EXECUTOR_CLASS}\n").executor.endswith(EXECUTOR_CLASS)
    assert parse(f"[core]\nexecutor = LocalExecutor,k8s:{EXECUTOR_CLASS}\n").executor.endswith(EXECUTOR_CLASS)


def test_duplicate_keys_in_a_file_are_an_error_not_last_one_wins():
    with pytest.raises(ConfigError, match=r"not a valid airflow\.cfg"):
        parse(kubernetes("namespace = a", "namespace = b"))


def test_other_airflow_sections_are_left_alone():
    assert (
        parse(f"[core]\ndags_folder = /x\nexecutor = {EXECUTOR_CLASS}\n[webserver]\nanything = 1\n") == ExecutorConfig()
    )


def test_tier_sections_replace_the_default_table():
    config = parse(
        kubernetes("default_tier = small")
        + "[kubernetes_tier:small]\nrequest_cpu = 100m\nrequest_memory = 128Mi\ncost_per_pod_hour = 0.01\n"
    )
    assert config.tiers == (Tier("small", "100m", "128Mi", cost_per_pod_hour=Decimal("0.01")),)


@pytest.mark.parametrize(
    ("section", "fragment"),
    [
        ("[kubernetes_tier:Big]\nrequest_cpu = 1\nrequest_memory = 1Gi\n", "DNS-1123"),
        ("[kubernetes_tier:x]\nrequest_cpu = 1\n", "request_memory"),
        ("[kubernetes_tier:x]\nrequest_cpu = 1\nrequest_memory = 1Gi\nrequest_gpu = 1\n", "did you mean 'request_cpu'"),
        ("[kubernetes_tier:x]\nrequest_cpu = 2\nrequest_memory = 1Gi\nlimit_cpu = 1\n", "greater than limit_cpu"),
        ("[kubernetes_tier:x]\nrequest_cpu = 1\nrequest_memory = 1Gi\ncost_per_pod_hour = -1\n", "expected a price"),
        ("[kubernetes_tier:x]\nrequest_cpu = 1\nrequest_memory = 1Gi\npod_template = ../t.yaml\n", "not a path"),
    ],
)
def test_bad_tiers_are_rejected(section, fragment):
    with pytest.raises(ConfigError, match=fragment):
        parse(kubernetes("default_tier = x") + section)


def test_default_tier_must_exist():
    with pytest.raises(ConfigError, match="no such tier"):
        parse(kubernetes("default_tier = huge"))


def test_load_config_reports_a_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file") as info:
        load_config(tmp_path / "missing.cfg", environ={})
    assert str(tmp_path / "missing.cfg") in str(info.value)


def test_load_config_reads_a_file(tmp_path):
    path = tmp_path / "airflow.cfg"
    path.write_text(SEED_CFG)
    assert load_config(path, environ={}) == parse(SEED_CFG)


def test_rendered_config_documents_every_setting_and_parses_back():
    config = parse(SEED_CFG)
    text = render_config(config)
    assert "[kubernetes_executor]" in text and "[kubernetes]" not in text
    assert "worker_resource_request_cpu = 500m" in text and "[kubernetes_tier:gpu]" in text
    assert parse(text) == config


# -- property: render then parse is the identity ---------------------------------------------------
_labels = st.from_regex(r"[a-z]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
_cpu = st.sampled_from(["100m", "250m", "500m", "1", "2", "1500m"])
_memory = st.sampled_from(["128Mi", "512Mi", "1Gi", "2Gi", "1G"])
_tolerations = st.builds(
    Toleration,
    key=_labels,
    operator=st.just("Equal"),
    value=_labels,
    effect=st.sampled_from(["NoSchedule", "PreferNoSchedule", None]),
)
_tiers = st.lists(
    st.builds(
        Tier,
        name=_labels,
        request_cpu=st.just("100m"),
        request_memory=st.just("128Mi"),
        limit_cpu=st.one_of(st.none(), _cpu),
        limit_memory=st.one_of(st.none(), _memory),
        gpu=st.integers(0, 4),
        cost_per_pod_hour=st.decimals(min_value=0, max_value=100, places=2),
        pod_template=st.one_of(st.none(), st.just("light_task.yaml")),
        auto=st.booleans(),
    ),
    min_size=1,
    max_size=3,
    unique_by=lambda t: t.name,
)


@st.composite
def configs(draw):
    n_max = draw(st.integers(1, 1000))
    tiers = tuple(draw(_tiers))
    request_cpu, limit_cpu = sorted(
        draw(st.lists(_cpu, min_size=2, max_size=2)),
        key=lambda q: float(q.rstrip("m")) / (1000 if q.endswith("m") else 1),
    )
    qps = draw(st.one_of(st.none(), st.floats(min_value=0.01, max_value=1e4, allow_nan=False)))
    return ExecutorConfig(
        namespace=draw(_labels),
        worker_container_image=draw(st.one_of(st.none(), st.just("apache/airflow:2.8.0"))),
        worker_service_account_name=draw(st.one_of(st.none(), _labels)),
        worker_resource_request_cpu=request_cpu,
        worker_resource_limit_cpu=limit_cpu,
        worker_resource_request_memory=draw(st.one_of(st.none(), st.just("512Mi"))),
        delete_worker_pods=draw(st.booleans()),
        delete_worker_pods_on_failure=draw(st.booleans()),
        pod_creation_timeout=draw(st.integers(1, 7 * 24 * 3600)),
        max_pod_pending_timeout=draw(st.integers(1, 7 * 24 * 3600)),
        image_pull_policy=draw(st.sampled_from(["Always", "IfNotPresent", "Never"])),
        worker_node_selector=tuple(sorted(draw(st.dictionaries(_labels, _labels, max_size=3)).items())),
        worker_tolerations=tuple(draw(st.lists(_tolerations, max_size=3))),
        worker_pods_min=draw(st.integers(0, n_max)),
        worker_pods_max=n_max,
        worker_pods_creation_qps=qps,
        worker_pods_creation_burst=draw(st.one_of(st.none(), st.integers(1, 100_000))) if qps else None,
        worker_priority_class=draw(st.one_of(st.none(), _labels)),
        in_cluster=True,
        default_tier=tiers[0].name,
        tiers=tiers,
    )


@settings(max_examples=150, deadline=None)
@given(configs())
def test_render_then_parse_is_the_identity(config):
    assert parse(render_config(config)) == config
