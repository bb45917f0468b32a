"""Pod templates: the shipped ones are hardened and placed; the loader resolves safely and parses strictly."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from airflow_k8s.executor.contract import quantity
from airflow_k8s.executor.contract.config import DEFAULT_TEMPLATE_DIR, DEFAULT_TIERS
from airflow_k8s.executor.contract.errors import PodPolicyError, SchemaError, TemplateError
from airflow_k8s.executor.pods import schema, security, templates
from airflow_k8s.executor.pods.templates import TemplateStore

SHIPPED_DIR = Path(__file__).resolve().parent.parent / "pod_templates"

# template file -> (workload label, node-type selector, toleration, requests, limits)
PLACEMENT: dict[str, tuple[str, str, dict[str, str], dict[str, str], dict[str, str]]] = {
    "default_template.yaml": (
        "default", "worker",
        {"key": "dedicated", "operator": "Equal", "value": "worker", "effect": "NoSchedule"},
        {"cpu": "500m", "memory": "1Gi"}, {"cpu": "1000m", "memory": "2Gi"},
    ),
    "light_task.yaml": (
        "light", "worker",
        {"key": "dedicated", "operator": "Equal", "value": "worker", "effect": "NoSchedule"},
        {"cpu": "250m", "memory": "512Mi"}, {"cpu": "500m", "memory": "1Gi"},
    ),
    "heavy_computation.yaml": (
        "heavy", "compute-optimized",
        {"key": "workload", "operator": "Equal", "value": "heavy", "effect": "NoSchedule"},
        {"cpu": "2", "memory": "4Gi"}, {"cpu": "4", "memory": "8Gi"},
    ),
    "gpu_task.yaml": (
        "gpu", "gpu",
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
        {"cpu": "2", "memory": "8Gi", "nvidia.com/gpu": "1"}, {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1"},
    ),
}  # fmt: skip


@pytest.fixture(scope="module")
def shipped() -> TemplateStore:
    return TemplateStore(SHIPPED_DIR)


@pytest.fixture
def good_text() -> str:
    """A valid template's text (the shipped light one), to copy into temporary directories."""
    return (SHIPPED_DIR / "light_task.yaml").read_text()


@pytest.fixture
def template_dir(tmp_path: Path, good_text: str) -> Path:
    directory = tmp_path / "templates"
    directory.mkdir()
    (directory / "good.yaml").write_text(good_text)
    return directory


@pytest.fixture
def store(template_dir: Path) -> TemplateStore:
    return TemplateStore(template_dir, recheck_seconds=0)


def load_text(store: TemplateStore, text: str, name: str = "bad.yaml") -> dict[str, Any]:
    (store.directory / name).write_text(text)
    return store.load(name)


def base_container(pod: dict[str, Any]) -> dict[str, Any]:
    (base,) = [c for c in pod["spec"]["containers"] if c["name"] == "base"]
    return base


def amounts(values: dict[str, Any]) -> dict[str, Decimal]:
    return {name: quantity.for_resource(name, value) for name, value in values.items()}


# The shipped templates.


def test_the_four_seed_templates_are_shipped(shipped):
    assert shipped.names() == sorted(PLACEMENT)
    assert sorted(shipped.load_all()) == sorted(PLACEMENT)


@pytest.mark.parametrize("name", sorted(PLACEMENT))
def test_shipped_template_is_schema_valid_restricted_and_hardened(shipped, name):
    pod = shipped.load(name)
    schema.validate_manifest(pod, where=name)
    assert security.restricted_violations(pod) == []
    assert security.hardening_violations(pod) == []


@pytest.mark.parametrize("name", sorted(PLACEMENT))
def test_shipped_template_targets_its_node_pool(shipped, name):
    workload, node_type, toleration, requests, limits = PLACEMENT[name]
    pod = shipped.load(name)
    assert pod["metadata"]["labels"] == {"app": "airflow-worker", "component": "worker", "workload": workload}
    assert pod["spec"]["nodeSelector"] == {"node-type": node_type}
    assert pod["spec"]["tolerations"] == [toleration]
    resources = base_container(pod)["resources"]
    assert amounts(resources["requests"]) == amounts(requests)
    assert amounts(resources["limits"]) == amounts(limits)


@pytest.mark.parametrize("name", sorted(PLACEMENT))
def test_shipped_template_leaves_name_image_and_command_to_the_executor(shipped, name):
    pod = shipped.load(name)
    assert pod["apiVersion"] == "v1"
    assert pod["kind"] == "Pod"
    assert "name" not in pod["metadata"]
    assert pod["spec"]["restartPolicy"] == "Never"
    assert [c["name"] for c in pod["spec"]["containers"]] == ["base"]
    base = base_container(pod)
    assert "image" not in base
    assert "command" not in base
    assert "worker_container_image" in (SHIPPED_DIR / name).read_text()  # the comment says who sets it


@pytest.mark.parametrize("name", sorted(PLACEMENT))
def test_shipped_template_security_settings(shipped, name):
    pod = shipped.load(name)
    spec = pod["spec"]
    assert spec["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 50000,
        "runAsGroup": 0,
        "fsGroup": 0,
        "fsGroupChangePolicy": "OnRootMismatch",
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert spec["automountServiceAccountToken"] is False
    assert spec["serviceAccountName"] == "airflow-worker"
    assert base_container(pod)["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }


@pytest.mark.parametrize("name", sorted(PLACEMENT))
def test_shipped_template_env_config_dags_and_writable_dirs(shipped, name):
    pod = shipped.load(name)
    base = base_container(pod)
    env = {item["name"]: item for item in base["env"]}
    assert env["AIRFLOW_IS_K8S_EXECUTOR_POD"]["value"] == "True"
    # Airflow 3 workers talk only to the Execution API: no database URL, no [core] executor.
    assert not any("SQL_ALCHEMY_CONN" in name or name == "AIRFLOW__CORE__EXECUTOR" for name in env)
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    mounts = {m["mountPath"]: m for m in base["volumeMounts"]}
    config = mounts["/opt/airflow/airflow.cfg"]
    assert (config["subPath"], config["readOnly"]) == ("airflow.cfg", True)
    assert volumes[config["name"]]["configMap"] == {"name": "airflow-config"}
    dags = mounts["/opt/airflow/dags"]
    assert dags["readOnly"] is True
    assert volumes[dags["name"]]["persistentVolumeClaim"]["claimName"] == "airflow-dags"
    for writable in ("/tmp", "/opt/airflow/logs"):
        assert quantity.memory(volumes[mounts[writable]["name"]]["emptyDir"]["sizeLimit"]) > 0


@pytest.mark.parametrize("tier", [t for t in DEFAULT_TIERS if t.name != "medium"], ids=lambda t: t.name)
def test_tier_templates_match_the_tier_resources(shipped, tier):
    resources = base_container(shipped.load(tier.pod_template))["resources"]
    assert amounts(resources["requests"]) == amounts(tier.requests())
    assert amounts(resources["limits"]) == amounts(tier.limits())


# Resolving references.


@pytest.mark.parametrize(
    "ref",
    [
        "good",
        "good.yaml",
        f"{DEFAULT_TEMPLATE_DIR}/good.yaml",
        f"{DEFAULT_TEMPLATE_DIR}/good",
        f"{DEFAULT_TEMPLATE_DIR}//good.yaml",
    ],
)
def test_bare_names_and_absolute_paths_in_the_logical_dir_map_to_the_directory(store, template_dir, ref):
    assert store.resolve(ref) == template_dir / "good.yaml"


def test_a_custom_logical_dir_is_honoured(template_dir):
    store = TemplateStore(template_dir, logical_dir="/etc/airflow/templates/")
    assert store.resolve("/etc/airflow/templates/good.yaml") == template_dir / "good.yaml"
    with pytest.raises(TemplateError, match="absolute paths must name a file in /etc/airflow/templates"):
        store.resolve(f"{DEFAULT_TEMPLATE_DIR}/good.yaml")


def test_yml_files_resolve_by_bare_name(store, good_text):
    (store.directory / "other.yml").write_text(good_text)
    assert store.resolve("other").name == "other.yml"
    assert "other.yml" in store.names()


def test_a_name_with_both_suffixes_is_ambiguous(store, good_text):
    (store.directory / "good.yml").write_text(good_text)
    with pytest.raises(TemplateError, match="ambiguous"):
        store.resolve("good")


@pytest.mark.parametrize(
    ("ref", "reason"),
    [
        ("../x", "'..' is not allowed"),
        ("../templates/good.yaml", "'..' is not allowed"),
        (f"{DEFAULT_TEMPLATE_DIR}/../pod_templates/good.yaml", "'..' is not allowed"),
        ("/etc/passwd", "absolute paths must name a file in /opt/airflow/pod_templates"),
        ("/opt/airflow/pod_templates_evil/good.yaml", "absolute paths must name a file in"),
        (DEFAULT_TEMPLATE_DIR, "absolute paths must name a file in"),
        (f"{DEFAULT_TEMPLATE_DIR}/sub/good.yaml", "subdirectories"),
        ("sub/good.yaml", "not a relative path"),
        ("..data", "hidden names"),
        ("good\x00.yaml", "control characters"),
        ("sub\\good.yaml", "backslashes"),
        ("", "non-empty string"),
    ],
)
def test_unsafe_references_are_rejected(store, ref, reason):
    with pytest.raises(TemplateError, match=reason):
        store.resolve(ref)


def test_a_symlink_out_of_the_directory_is_rejected(store, tmp_path, good_text):
    outside = tmp_path / "outside.yaml"
    outside.write_text(good_text)
    (store.directory / "sneaky.yaml").symlink_to(outside)
    with pytest.raises(TemplateError, match="outside the template directory"):
        store.load("sneaky")


def test_a_missing_template_lists_the_available_ones(store):
    with pytest.raises(TemplateError, match=r"'nope' not found .*available templates: good\.yaml"):
        store.load("nope")


def test_a_missing_directory_is_an_error(tmp_path):
    with pytest.raises(TemplateError, match="does not exist"):
        TemplateStore(tmp_path / "absent")


def test_a_relative_logical_dir_is_an_error(template_dir):
    with pytest.raises(TemplateError, match="absolute path"):
        TemplateStore(template_dir, logical_dir="pod_templates")


def write_configmap_volume(directory: Path, version: str, files: dict[str, str]) -> None:
    """Mimic the kubelet's atomic writer: files live in ..<version>/, ..data links to it."""
    target = directory / f"..{version}"
    target.mkdir()
    for name, text in files.items():
        (target / name).write_text(text)
    tmp_link = directory / "..data_tmp"
    tmp_link.symlink_to(target.name)
    os.replace(tmp_link, directory / "..data")
    for name in files:
        link = directory / name
        if not link.is_symlink():
            link.symlink_to(f"..data/{name}")


def test_a_configmap_mount_loads_and_an_update_is_picked_up(tmp_path, good_text):
    mount = tmp_path / "mount"
    mount.mkdir()
    write_configmap_volume(mount, "2024_01_01_v1", {"light.yaml": good_text})
    store = TemplateStore(mount, recheck_seconds=0)
    assert store.names() == ["light.yaml"]
    assert base_container(store.load("light"))["resources"]["requests"]["cpu"] == "250m"

    write_configmap_volume(mount, "2024_01_02_v2", {"light.yaml": good_text.replace("cpu: 250m", "cpu: 300m")})
    assert base_container(store.load("light"))["resources"]["requests"]["cpu"] == "300m"


# Parsing and validating documents.


def test_duplicate_keys_are_rejected_naming_file_line_and_key(store):
    text = "apiVersion: v1\nkind: Pod\nmetadata:\n  labels:\n    app: a\n    app: b\nspec: {}\n"
    with pytest.raises(TemplateError) as info:
        load_text(store, text)
    message = str(info.value)
    assert "bad.yaml" in message
    assert "line 6" in message
    assert "duplicate key 'app'" in message


def test_two_documents_are_rejected(store, good_text):
    with pytest.raises(TemplateError, match=r"bad\.yaml: line \d+: a pod template must hold exactly one YAML document"):
        load_text(store, good_text + "---\n" + good_text)


@pytest.mark.parametrize(
    ("text", "found"), [("- a\n- b\n", "a list"), ("just text\n", "a str"), ("", "an empty document")]
)
def test_a_template_must_be_a_mapping(store, text, found):
    with pytest.raises(TemplateError, match=f"must be a YAML mapping, found {found}"):
        load_text(store, text)


def test_a_deployment_is_not_a_pod_template(store):
    text = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {}\n"
    with pytest.raises(TemplateError, match="found apiVersion 'apps/v1' and kind 'Deployment'"):
        load_text(store, text)


def test_an_unknown_field_fails_strict_schema_validation(store, good_text):
    text = good_text.replace("      resources:\n", "      resourcez: {}\n      resources:\n")
    with pytest.raises(TemplateError) as info:
        load_text(store, text)
    assert "bad.yaml" in str(info.value)
    assert "spec.containers[0].resourcez" in str(info.value)
    assert isinstance(info.value.__cause__, SchemaError)


def test_a_malformed_quantity_in_a_template_is_rejected(store, good_text):
    with pytest.raises(TemplateError, match=r"requests\.cpu: '500x'"):
        load_text(store, good_text.replace("cpu: 250m", "cpu: 500x"))


def test_a_template_violating_pss_restricted_is_rejected(store, good_text):
    text = good_text.replace(
        "allowPrivilegeEscalation: false", "allowPrivilegeEscalation: false\n        privileged: true"
    )
    with pytest.raises(TemplateError, match="privileged must be false") as info:
        load_text(store, text)
    assert isinstance(info.value.__cause__, PodPolicyError)


def test_a_base_container_command_is_rejected(store, good_text):
    text = good_text.replace("    - name: base\n", "    - name: base\n      command: [airflow, serve-logs]\n")
    with pytest.raises(TemplateError, match=r"spec\.containers\[0\] \(base\) must not set command"):
        load_text(store, text)


def test_yaml_aliases_are_rejected(store):
    text = "apiVersion: v1\nkind: Pod\nmetadata:\n  labels: &l {a: b}\n  annotations: *l\nspec: {}\n"
    with pytest.raises(TemplateError, match="line 5: YAML aliases"):
        load_text(store, text)


def test_invalid_yaml_names_file_and_position(store):
    with pytest.raises(TemplateError, match=r"bad\.yaml: line \d+, column \d+: invalid YAML") as info:
        load_text(store, "apiVersion: v1\nkind: [Pod\n")
    assert isinstance(info.value.__cause__, yaml.YAMLError)


def test_non_utf8_text_is_rejected(store):
    (store.directory / "bad.yaml").write_bytes(b"apiVersion: v1\nkind: Pod\n# \xff\n")
    with pytest.raises(TemplateError, match="UTF-8"):
        store.load("bad")


# Caching and copies.


def test_load_returns_a_deep_copy_on_every_call(store):
    for _ in range(2):  # the parsing call and a cache hit
        pod = store.load("good")
        base_container(pod)["resources"]["requests"]["cpu"] = "64"
        pod["metadata"]["labels"]["tampered"] = "yes"
    fresh = store.load("good")
    assert base_container(fresh)["resources"]["requests"]["cpu"] == "250m"
    assert "tampered" not in fresh["metadata"]["labels"]


@pytest.fixture
def parse_counter(monkeypatch) -> list[str]:
    calls: list[str] = []
    real = templates.parse_template

    def counting(text: str, *, source: str) -> dict[str, Any]:
        calls.append(source)
        return real(text, source=source)

    monkeypatch.setattr(templates, "parse_template", counting)
    return calls


def test_an_unchanged_template_is_parsed_once(store, parse_counter):
    for _ in range(3):
        store.load("good")
    store.load(f"{DEFAULT_TEMPLATE_DIR}/good.yaml")
    assert len(parse_counter) == 1


def test_the_cache_picks_up_a_modified_file(store, parse_counter):
    path = store.directory / "good.yaml"
    assert base_container(store.load("good"))["resources"]["requests"]["cpu"] == "250m"
    stat = path.stat()
    path.write_text(path.read_text().replace("cpu: 250m", "cpu: 300m"))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert base_container(store.load("good"))["resources"]["requests"]["cpu"] == "300m"
    assert len(parse_counter) == 2


def test_a_file_is_rechecked_at_most_once_per_recheck_interval(template_dir, parse_counter, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr("airflow_k8s.executor.pods.templates.time.monotonic", lambda: clock[0])
    store = TemplateStore(template_dir, recheck_seconds=1.0)
    path = template_dir / "good.yaml"
    assert base_container(store.load("good"))["resources"]["requests"]["cpu"] == "250m"
    path.write_text(path.read_text().replace("cpu: 250m", "cpu: 300m"))
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000_000))
    clock[0] += 0.5
    assert base_container(store.load("good"))["resources"]["requests"]["cpu"] == "250m"  # within the interval
    clock[0] += 0.6
    assert base_container(store.load("good"))["resources"]["requests"]["cpu"] == "300m"
    assert len(parse_counter) == 2


def test_unquoted_dates_are_rejected_because_pods_are_json(store, good_text):
    with pytest.raises(TemplateError, match="JSON-compatible"):
        load_text(store, good_text.replace("workload: light", "workload: light\n    since: 2024-01-01"))


def test_load_all_names_every_invalid_template(store, good_text):
    (store.directory / "broken.yaml").write_text("- not a pod\n")
    (store.directory / "worse.yaml").write_text(good_text.replace("runAsNonRoot: true", "runAsNonRoot: false"))
    (store.directory / "notes.txt").write_text("not a template")
    with pytest.raises(TemplateError) as info:
        store.load_all()
    message = str(info.value)
    assert message.startswith("2 invalid pod template(s)")
    assert "broken.yaml" in message
    assert "worse.yaml" in message
    assert "good.yaml" not in message.replace(str(store.directory), "")
