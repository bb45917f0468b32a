"""Structural rewiring of pod templates, and re-validation of what gets published."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from airflow_k8s.executor.contract.errors import PodPolicyError, TemplateError
from airflow_k8s.executor.pods.templates import TemplateStore
from airflow_k8s.infra.components.podtemplates import FERNET_ENV, RewireError, TemplateWiring, render_template, rewire

ROOT = Path(__file__).resolve().parents[2]
WIRING = TemplateWiring("etl-config", "etl-dags", "etl-secrets", "etl-worker")


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
    for env in spec["containers"][0]["env"]:
        if "valueFrom" in env:
            assert env["valueFrom"]["secretKeyRef"]["name"] == "etl-secrets"
            env["valueFrom"]["secretKeyRef"]["name"] = "airflow-secrets"
    assert pod == original


def test_rewire_is_structural_not_textual(default: dict[str, Any]) -> None:
    default["metadata"]["labels"]["config-source"] = "airflow-config"
    default["spec"]["containers"][0]["env"].append({"name": "NOTE", "value": "see airflow-secrets and airflow-dags"})
    pod = rewire(default, WIRING, source="t")
    assert pod["metadata"]["labels"]["config-source"] == "airflow-config"
    assert pod["spec"]["containers"][0]["env"][-1]["value"] == "see airflow-secrets and airflow-dags"


def test_rewire_covers_env_from_projected_and_secret_volumes(default: dict[str, Any]) -> None:
    spec = default["spec"]
    spec["containers"][0]["envFrom"] = [{"configMapRef": {"name": "airflow-config"}}]
    spec["volumes"].append(
        {
            "name": "p",
            "projected": {
                "sources": [{"secret": {"name": "airflow-secrets"}}, {"configMap": {"name": "airflow-config"}}]
            },
        }
    )
    spec["volumes"].append({"name": "s", "secret": {"secretName": "airflow-secrets"}})
    pod = rewire(default, WIRING, source="t")
    assert pod["spec"]["containers"][0]["envFrom"] == [{"configMapRef": {"name": "etl-config"}}]
    assert pod["spec"]["volumes"][-2]["projected"]["sources"] == [
        {"secret": {"name": "etl-secrets"}},
        {"configMap": {"name": "etl-config"}},
    ]
    assert pod["spec"]["volumes"][-1]["secret"] == {"secretName": "etl-secrets"}


def test_rewire_is_idempotent(default: dict[str, Any]) -> None:
    once = rewire(default, WIRING, source="t")
    assert rewire(once, WIRING, source="t") == once


def test_foreign_references_are_errors(default: dict[str, Any]) -> None:
    default["spec"]["volumes"][1]["persistentVolumeClaim"]["claimName"] = "someone-elses-pvc"
    default["spec"]["containers"][0]["env"].append(
        {"name": "X", "valueFrom": {"secretKeyRef": {"name": "airflow-secrets", "key": "password"}}}
    )
    with pytest.raises(RewireError) as info:
        rewire(default, WIRING, source="pod_templates/x.yaml")
    message = str(info.value)
    assert "pod_templates/x.yaml" in message
    assert (
        "PersistentVolumeClaim 'someone-elses-pvc' is not created by the platform (templates say 'airflow-dags')"
        in message
    )
    assert "the platform Secret has no key 'password'" in message


def test_service_account_is_always_the_workers(default: dict[str, Any]) -> None:
    default["spec"]["serviceAccountName"] = "etl-scheduler"
    default["spec"]["serviceAccount"] = "etl-scheduler"
    pod = rewire(default, WIRING, source="t")
    assert pod["spec"]["serviceAccountName"] == "etl-worker"
    assert "serviceAccount" not in pod["spec"]


def test_fernet_env_is_added_once(default: dict[str, Any]) -> None:
    wiring = TemplateWiring("c", "p", "s", "w", ("database-url", "fernet-key"), "fernet-key")
    pod = rewire(default, wiring, source="t")
    again = rewire(pod, wiring, source="t")
    names = [e["name"] for e in again["spec"]["containers"][0]["env"]]
    assert names.count(FERNET_ENV) == 1
    without = [e["name"] for e in rewire(default, WIRING, source="t")["spec"]["containers"][0]["env"]]
    assert FERNET_ENV not in without  # no Fernet key configured, no env var


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
