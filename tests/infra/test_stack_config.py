"""Stack config parsing: defaults, every error names the key and the value, Pulumi.yaml in sync."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from airflow_k8s.infra.config.args import DEFAULT_NODE_POOLS, PlatformConfig
from airflow_k8s.infra.config.stack_config import (
    KEYS,
    KEYS_BY_NAME,
    PROJECT,
    StackConfigError,
    parse_stack_config,
    raw_default,
    to_raw,
)

ROOT = Path(__file__).resolve().parents[2]
DB = {"databaseUrl"}


def parse(**raw: object) -> object:
    return parse_stack_config({k: to_raw(v) for k, v in raw.items()}, secrets_set=DB)


def problems(**raw: object) -> list[str]:
    with pytest.raises(StackConfigError) as info:
        parse(**raw)
    return [str(p) for p in info.value.problems]


def test_defaults_parse_to_the_default_model() -> None:
    stack = parse_stack_config({}, secrets_set=DB)
    assert stack.platform_name == "airflow"
    assert stack.templates_dir == "pod_templates"
    assert stack.platform == PlatformConfig()
    assert stack.platform.node_pools.pools == DEFAULT_NODE_POOLS
    # no node pools, the open-to-the-world defaults and one api-server are allowed, with a warning each
    assert [w.split(" is ")[0] for w in stack.warnings] == [
        f"{PROJECT}:nodePoolBackend",
        f"{PROJECT}:databaseCidr",
        f"{PROJECT}:apiServerCidr",
        f"{PROJECT}:apiServerReplicas",
    ]


def test_values_are_typed() -> None:
    stack = parse(workerPodsMax=6, quotaPods=14, capacityAwareTiers=False, dagsStorageClass="efs-sc")
    assert stack.platform.executor.worker_pods_max == 6
    assert stack.platform.quota.pods == 14
    assert stack.platform.rbac.capacity_aware_tiers is False
    assert stack.platform.storage.storage_class == "efs-sc"
    assert parse().platform.storage.storage_class is None  # "" means the cluster default


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("workerPodsMax", "eight", "expected a whole number"),
        ("workerPodsMax", "0", "must be >= 1"),
        ("deleteWorkerPods", "yes", "expected true or false"),
        ("namespace", "Airflow_NS", "DNS-1123 label"),
        ("platformName", "1airflow", "starting with a letter"),
        ("workerImage", "bad image!", "container image reference"),
        ("workerImagePullPolicy", "Sometimes", "expected one of Always, IfNotPresent, Never"),
        ("schedulerCpuRequest", "500x", "500x"),
        ("dagsStorageSize", "10GB", "10GB"),
        ("apiServerCidr", "10.0.0.1/8", "CIDR"),
        ("databasePort", "70000", "must be <= 65535"),
        ("dagsAccessMode", "ReadWriteSome", "expected one of"),
        ("airflowImage", "Airflow 3", "container image reference"),
        ("apiServerReplicas", "0", "must be >= 1"),
        ("apiBaseUrl", "airflow.example.com", "expected an http(s) URL"),
        ("remoteBaseLogFolder", "my-bucket/logs", "expected a remote folder URL"),
        ("remoteLogConnId", "aws logs", "expected an Airflow connection id"),
        ("uiIngressNamespace", "Ingress_NGINX", "DNS-1123 label"),
        ("uiIngressNamespace", "kube-system", "'kube-system' is a system namespace: every pod in it could reach"),
        ("uiIngressNamespace", "default", "'default' is a system namespace"),
        ("remoteBaseLogFolder", "file:///var/log/airflow", "Airflow has no remote log handler for this scheme"),
        ("remoteBaseLogFolder", "https://logs.example.com/airflow", "no remote log handler"),
        ("remoteLogCidr", "10.0.0.1/8", "CIDR"),
        ("triggererMemoryLimit", "1GB", "1GB"),
        ("nodePoolBackend", "terraform", "karpenter, existing-nodes, none"),
        ("placeholderPriority", "5", "must be <= -1"),
        ("taskPriority", "2000000000", "must be <= 1000000000"),
        ("defaultTier", "huge", "light, medium, heavy, gpu"),
        ("nodePoolLimits", "not json", "array of strings"),
        # bounded by what the scheduler can honour (the airflow.cfg key's bounds)
        ("workerPodsMax", "100000", "must be <= 50000"),
        ("workerPodsMin", "99999999999", "must be <= 10000"),
        ("podCreationTimeout", "9223372036854775807", "must be <= 604800"),
        ("maxPodPendingTimeout", "604801", "must be <= 604800"),
        ("finishedPodMaxAgeHours", "1000000", "must be <= 8760"),
        ("quotaPods", "10000001", "must be <= 1000000"),
        ("quotaGpus", "100001", "must be <= 100000"),
        ("databasePort", "٥٤٣٢", "expected a whole number"),  # Arabic-Indic digits
        # names are exact: no trailing newline, ASCII only
        ("namespace", "airflow\n", "DNS-1123 label"),
        ("platformName", "airflow\n", "starting with a letter"),
        ("karpenterNodeClass", "default\n", "DNS-1123"),
        ("monitoringNamespace", "monitoring\n", "DNS-1123 label"),
        ("workerImage", "apache/airflow:3.0.0\n", "container image reference"),
        ("schedulerCpuRequest", "100m\n", "100m"),
        # the platform takes its namespace over
        ("namespace", "default", "takes its namespace over"),
        ("namespace", "kube-system", "takes its namespace over"),
        ("namespace", "kube-flannel", "takes its namespace over"),
    ],
)
def test_bad_values_name_key_and_value(key: str, value: str, reason: str) -> None:
    found = problems(**{key: value})
    assert len(found) == 1, found
    assert found[0].startswith(f"{PROJECT}:{key} = {value!r}: "), found[0]
    assert reason in found[0]


@pytest.mark.parametrize(
    ("key", "item", "reason"),
    [
        ("nodePoolLimits", "workers.disk=1", "resource one of"),
        ("nodePoolLimits", "workers.cpu=lots", "lots"),
        ("nodePoolInstanceTypes", "tiny=m6i.large", "unknown pool 'tiny'"),
        ("nodePoolInstanceTypes", "workers", 'expected "<pool>=<value>"'),
        ("nodePoolCapacityTypes", "gpu=cheap", "on-demand, spot, reserved"),
        ("nodePoolInstanceTypes", "workers=m6i.large\n", "not an instance type name"),
    ],
)
def test_bad_array_items_name_key_and_item(key: str, item: str, reason: str) -> None:
    default = KEYS_BY_NAME[key].default
    found = problems(**{key: [*default, item]})
    assert len(found) == 1, found
    assert found[0].startswith(f"{PROJECT}:{key} = {item!r}: "), found[0]
    assert reason in found[0]


def test_all_problems_are_reported_at_once() -> None:
    found = problems(workerPodsMax="x", namespace="UPPER", metricsPort="80")
    assert [p.split(" = ")[0] for p in found] == [
        f"{PROJECT}:namespace",
        f"{PROJECT}:workerPodsMax",
        f"{PROJECT}:metricsPort",
    ]


def test_unknown_key_suggests_the_right_one() -> None:
    (found,) = problems(workerPodMax="8")
    assert found == f"{PROJECT}:workerPodMax: unknown key; did you mean {PROJECT}:workerPodsMax?"


def test_missing_database_url_says_how_to_set_it() -> None:
    with pytest.raises(StackConfigError) as info:
        parse_stack_config({})
    assert f"{PROJECT}:databaseUrl: is not set: pulumi config set --secret databaseUrl" in str(info.value)


def test_a_misspelt_secret_is_not_echoed() -> None:
    with pytest.raises(StackConfigError) as info:
        parse_stack_config({"databaseURL": "postgresql://u:hunter2@db/x"}, secrets_set=DB)
    assert "hunter2" not in str(info.value)
    assert "did you mean airflow-k8s:databaseUrl?" in str(info.value)


def test_secret_passed_as_plain_config_is_refused_without_echoing_it() -> None:
    with pytest.raises(StackConfigError) as info:
        parse_stack_config({"databaseUrl": "postgresql://u:hunter2@db/x"}, secrets_set=DB)
    assert "hunter2" not in str(info.value)
    assert f"{PROJECT}:databaseUrl: secret keys are read with require_secret" in str(info.value)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            {"workerPodsMin": 9, "workerPodsMax": 8},
            "workerPodsMin = 9: N_min is greater than airflow-k8s:workerPodsMax = 8",
        ),
        ({"workerPodsMax": 20}, "quotaPods = 20: ResourceQuota pods 20 < 28 = workerPodsMax 20"),
        ({"schedulerCpuRequest": "2", "schedulerCpuLimit": "1"}, "schedulerCpuRequest = '2': is greater than"),
        ({"apiServerMemoryLimit": "32Gi"}, "apiServerMemoryLimit = '32Gi': is greater than airflow-k8s:limitMaxMemory"),
        (
            {"remoteLogConnId": "aws_logs"},
            "remoteLogConnId = 'aws_logs': only used with airflow-k8s:remoteBaseLogFolder",
        ),
        ({"limitMaxCpu": "2"}, "does not admit tier 'heavy' (limit 4)"),
        (
            {"quotaRequestsMemory": "128Gi"},
            "quotaRequestsMemory = '128Gi': is greater than airflow-k8s:quotaLimitsMemory",
        ),
    ],
)
def test_cross_field_rules(raw: dict[str, object], expected: str) -> None:
    assert any(expected in p for p in problems(**raw)), problems(**raw)


def test_karpenter_pools_need_instance_types_and_limits() -> None:
    found = problems(
        nodePoolBackend="karpenter",
        nodePoolInstanceTypes=["workers=m6i.large", "compute=c6i.2xlarge"],
        nodePoolLimits=["workers.cpu=8"],
    )
    assert f"{PROJECT}:nodePoolInstanceTypes: pool 'gpu' has no instance type" in found
    assert any("pool 'workers' needs limits for ['memory']" in p for p in found)


def test_existing_nodes_backend() -> None:
    stack = parse(
        nodePoolBackend="existing-nodes", existingNodes=["workers=node-a", "workers=node-b", "compute=node-c"]
    )
    pools = {p.name: p for p in stack.platform.node_pools.pools}
    assert pools["workers"].nodes == ("node-a", "node-b")
    assert pools["compute"].nodes == ("node-c",)
    assert stack.warnings[0] == "node pool 'gpu' has no nodes (existingNodes): its templates' pods will stay Pending"


def test_existing_nodes_errors() -> None:
    found = problems(nodePoolBackend="existing-nodes", existingNodes=["workers=node-a", "gpu=node-a", "gpu=Bad_Node"])
    assert f"{PROJECT}:existingNodes = 'gpu=node-a': node is already in pool 'workers'" in found
    assert f"{PROJECT}:existingNodes = 'gpu=Bad_Node': not a valid node name" in found
    (only,) = problems(existingNodes=["workers=node-a"])
    assert "only used with nodePoolBackend existing-nodes, not none" in only


@given(st.text(alphabet="0123456789-+ xe.", min_size=1, max_size=6))
def test_integer_keys_accept_exactly_whole_numbers(text: str) -> None:
    try:
        value = int(text.strip()) if text.strip().lstrip("+-").isdigit() else None
    except ValueError:
        value = None
    try:
        stack = parse_stack_config({"databasePort": text}, secrets_set=DB)
    except StackConfigError as exc:
        assert all(str(p).startswith(f"{PROJECT}:databasePort = ") for p in exc.problems)
        assert value is None or not 1 <= value <= 65535
    else:
        assert stack.platform.network.database_port == value


def test_pulumi_yaml_declares_exactly_the_keys_of_the_table() -> None:
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert project["name"] == PROJECT
    assert project["runtime"] == {"name": "python", "options": {"toolchain": "pip", "virtualenv": ".venv"}}
    declared = {key: decl for key, decl in project["config"].items() if key.startswith(f"{PROJECT}:")}
    assert list(declared) == [f"{PROJECT}:{key.name}" for key in KEYS if key.declared]
    for key in KEYS:
        if not key.declared:
            continue
        decl = declared[f"{PROJECT}:{key.name}"]
        assert decl["type"] == key.type, key.name
        assert decl["description"] == key.description, key.name
        assert decl.get("default") == key.default, key.name
        assert decl.get("secret", False) == key.secret, key.name
        if key.type == "array":
            assert decl["items"] == {"type": "string"}
        assert set(decl) <= {"type", "items", "description", "default", "secret"}


def test_pulumi_yaml_declares_no_key_the_cli_would_require_but_the_stack_may_leave_unset() -> None:
    """The CLI fails every preview on a declared key with a type and no default that the stack lacks."""
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    required = {
        key.split(":", 1)[1]
        for key, decl in project["config"].items()
        if isinstance(decl, dict) and decl.get("default") is None
    }
    # none: even the database URL may come from an existing Secret (existingDatabaseUrlSecret)
    assert required == set()
    undeclared_secrets = {key.name for key in KEYS if key.secret and not key.declared}
    assert undeclared_secrets == {"databaseUrl", "fernetKey", "jwtSecret", "apiSecretKey", "adminPassword"}


def test_pulumi_yaml_makes_the_default_provider_update_config_maps_and_secrets_in_place() -> None:
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert project["config"]["kubernetes:enableConfigMapMutable"] is True
    assert project["config"]["kubernetes:enableSecretMutable"] is True


def test_every_default_is_valid_and_as_pulumi_passes_it() -> None:
    assert raw_default(KEYS_BY_NAME["workerPodsMax"]) == "8"
    assert raw_default(KEYS_BY_NAME["deleteWorkerPods"]) == "true"
    assert json.loads(raw_default(KEYS_BY_NAME["existingNodes"]) or "") == []
    assert raw_default(KEYS_BY_NAME["databaseUrl"]) is None


def test_dev_stack_file_is_valid() -> None:
    stack_file = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
    raw = {}
    for key, value in stack_file["config"].items():
        namespace, _, name = key.partition(":")
        assert namespace == PROJECT
        raw[name] = to_raw(value)
    stack = parse_stack_config(raw, secrets_set=DB)
    assert stack.platform.executor.worker_pods_min == 0
    assert stack.platform.executor.worker_pods_max == 8
    assert stack.platform.quota.pods <= 20
    assert stack.platform.protection.namespace and stack.platform.protection.dags_volume
    assert stack.platform.network.database_cidr != "0.0.0.0/0" and stack.platform.network.api_server_cidr != "0.0.0.0/0"


def test_every_integer_key_is_bounded_and_no_string_key_takes_a_trailing_newline() -> None:
    """What validates must run: no integer without an upper bound, no name with a hidden newline."""
    from airflow_k8s.infra.config.stack_keys import parse_value

    unbounded, lenient = [], []
    for key in KEYS:
        if key.type == "integer":
            try:
                parse_value(key, str(2**63 - 1))
                unbounded.append(key.name)
            except ValueError:
                pass
        elif key.type == "string" and not key.secret:
            try:
                parse_value(key, f"{key.default or 'x'}\n")
                lenient.append(key.name)
            except ValueError:
                pass
    assert (unbounded, lenient) == ([], [])
