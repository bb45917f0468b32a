"""Structural rewiring of pod templates, and re-validation of what gets published."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from airflow_k8s.executor.contract.errors import PodPolicyError, TemplateError
from airflow_k8s.executor.pods.templates import TemplateStore
from airflow_k8s.infra.components.podtemplates import RewireError, TemplateWiring, render_template, rewire

ROOT = Path(__file__).resolve().parents[2]
WIRING = TemplateWiring("etl-config", "etl-dags", "etl-worker")


@pytest.fixture(scope="module")
def templates() -> dict[str, dict[str, Any]]:
    return TemplateStore(ROOT / "pod_templates").load_all()


@pytest.fixture
def default(templates: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return copy.deepcopy(templates["default_template.yaml"])


def test_the_four_templates_are_published(templates: dict[str, dict[str, Any]]) -> None:
    assert set(templates) == {"default_template.yaml", "light_task.yaml", "heavy_computation.yaml", "gpu_task.yaml"}
    for name, template in templates.items():
        text = render_template(name, template, WIRING)
        assert text.startswith(f"# Published by infra from pod_templates/{name}")


def test_rewire_replaces_exactly_the_references(default: dict[str, Any]) -> None:
    original = copy.deepcopy(default)
    pod = rewire(default, WIRING, source="t")
    assert default == original  # input untouched
    spec = pod["spec"]
    assert spec["serviceAccountName"] == "etl-worker"
    assert {v["name"]: v.get("configMap", v.get("persistentVolumeClaim")) for v in spec["volumes"][:2]} == {
        "airflow-config": {"name": "etl-config"},
        "dags": {"claimName": "etl-dags", "readOnly": True},
    }
    # only those fields changed: undo them and the rest is the original
    spec["serviceAccountName"] = "airflow-worker"
    spec["volumes"][0]["configMap"]["name"] = "airflow-config"
    spec["volumes"][1]["persistentVolumeClaim"]["claimName"] = "airflow-dags"
    assert pod == original


def test_rewire_is_structural_not_textual(default: dict[str, Any]) -> None:
    default["metadata"]["labels"]["config-source"] = "airflow-config"
    default["spec"]["containers"][0]["env"].append({"name": "NOTE", "value": "see airflow-secrets and airflow-dags"})
    pod = rewire(default, WIRING, source="t")
    assert pod["metadata"]["labels"]["config-source"] == "airflow-config"
    assert pod["spec"]["containers"][0]["env"][-1]["value"] == "see airflow-secrets and airflow-dags"


def test_rewire_covers_env_from_and_projected_config_maps(default: dict[str, Any]) -> None:
    spec = default["spec"]
    spec["containers"][0]["envFrom"] = [{"configMapRef": {"name": "airflow-config"}}]
    spec["volumes"].append({"name": "p", "projected": {"sources": [{"configMap": {"name": "airflow-config"}}]}})
    pod = rewire(default, WIRING, source="t")
    assert pod["spec"]["containers"][0]["envFrom"] == [{"configMapRef": {"name": "etl-config"}}]
    assert pod["spec"]["volumes"][-1]["projected"]["sources"] == [{"configMap": {"name": "etl-config"}}]


def test_shipped_templates_give_task_pods_no_credentials_and_no_executor_setting(
    templates: dict[str, dict[str, Any]],
) -> None:
    """Airflow 3 workers call the Execution API with their workload's token: no DB URL, no Secret."""
    for name, template in templates.items():
        (base,) = template["spec"]["containers"]
        env = {e["name"]: e for e in base.get("env", [])}
        assert "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" not in env, name
        assert "AIRFLOW__CORE__EXECUTOR" not in env, name
        assert not any("valueFrom" in e or "secretKeyRef" in str(e) for e in env.values()), name
        assert "secret" not in str(template["spec"].get("volumes")).lower(), name
        mounts = {m["name"]: m for m in base["volumeMounts"]}
        assert mounts["airflow-config"]["readOnly"] is True and mounts["dags"]["readOnly"] is True
        volumes = {v["name"]: v for v in template["spec"]["volumes"]}
        assert "emptyDir" in volumes["logs"] and "emptyDir" in volumes["tmp"]


@pytest.mark.parametrize(
    "reference",
    [
        {"env": {"name": "DB", "valueFrom": {"secretKeyRef": {"name": "airflow-secrets", "key": "database-url"}}}},
        {"envFrom": {"secretRef": {"name": "etl-secrets"}}},
        {"volume": {"name": "s", "secret": {"secretName": "airflow-secrets"}}},
        {"volume": {"name": "p", "projected": {"sources": [{"secret": {"name": "anything"}}]}}},
    ],
)
def test_a_template_reading_any_secret_is_refused(default: dict[str, Any], reference: dict[str, Any]) -> None:
    container, spec = default["spec"]["containers"][0], default["spec"]
    if "env" in reference:
        container["env"].append(reference["env"])
    if "envFrom" in reference:
        container["envFrom"] = [reference["envFrom"]]
    if "volume" in reference:
        spec["volumes"].append(reference["volume"])
    with pytest.raises(RewireError, match="task pods read no Secret"):
        rewire(default, WIRING, source="pod_templates/x.yaml")


def test_rewire_is_idempotent(default: dict[str, Any]) -> None:
    once = rewire(default, WIRING, source="t")
    assert rewire(once, WIRING, source="t") == once


def test_foreign_references_are_errors(default: dict[str, Any]) -> None:
    default["spec"]["volumes"][1]["persistentVolumeClaim"]["claimName"] = "someone-elses-pvc"
    default["spec"]["volumes"][0]["configMap"]["name"] = "another-config"
    with pytest.raises(RewireError) as info:
        rewire(default, WIRING, source="pod_templates/x.yaml")
    message = str(info.value)
    assert "pod_templates/x.yaml" in message
    assert (
        "PersistentVolumeClaim 'someone-elses-pvc' is not created by the platform (templates say 'airflow-dags')"
        in message
    )
    assert "ConfigMap 'another-config' is not created by the platform" in message


def test_service_account_is_always_the_workers(default: dict[str, Any]) -> None:
    default["spec"]["serviceAccountName"] = "etl-scheduler"
    default["spec"]["serviceAccount"] = "etl-scheduler"
    pod = rewire(default, WIRING, source="t")
    assert pod["spec"]["serviceAccountName"] == "etl-worker"
    assert "serviceAccount" not in pod["spec"]


def test_published_text_is_revalidated_with_the_executor(default: dict[str, Any]) -> None:
    default["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    with pytest.raises(TemplateError, match="allowPrivilegeEscalation must be false"):
        render_template("default_template.yaml", default, WIRING)


def test_published_templates_must_be_hardened(default: dict[str, Any]) -> None:
    default["spec"]["automountServiceAccountToken"] = True
    with pytest.raises(PodPolicyError, match="automountServiceAccountToken must be false"):
        render_template("default_template.yaml", default, WIRING)


def test_published_text_round_trips(templates: dict[str, dict[str, Any]]) -> None:
    for name, template in templates.items():
        text = render_template(name, template, WIRING)
        assert yaml.safe_load(text) == rewire(template, WIRING, source=name)
