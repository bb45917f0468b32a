"""What survives `pulumi up` after `pulumi up`: protection, replacements and the PodMonitor."""

from __future__ import annotations

from airflow_k8s.infra.render.crd_schemas import crd_problems
from airflow_k8s.infra.render.manifests import manifests
from airflow_k8s.infra.render.offline import Evaluation

from .conftest import one


def _resource(evaluation: Evaluation, kind: str, name: str):  # type: ignore[no-untyped-def]
    (found,) = [r for r in evaluation.of_type(kind) if r.inputs["metadata"]["name"] == name]
    return found


def test_the_namespace_and_the_dags_claim_are_protected_and_retained_by_default(stack, default_eval) -> None:
    for kind, name in (
        ("kubernetes:core/v1:Namespace", "airflow"),
        ("kubernetes:core/v1:PersistentVolumeClaim", "airflow-dags"),
    ):
        resource = _resource(default_eval, kind, name)
        assert resource.protect and resource.retain_on_delete, name
    throwaway = stack(protectNamespace=False, protectDagsVolume=False)
    for kind, name in (
        ("kubernetes:core/v1:Namespace", "airflow"),
        ("kubernetes:core/v1:PersistentVolumeClaim", "airflow-dags"),
    ):
        resource = _resource(throwaway, kind, name)
        assert not resource.protect and not resource.retain_on_delete, name
    others = [
        r
        for r in default_eval.kubernetes()
        if r.type not in ("kubernetes:core/v1:Namespace", "kubernetes:core/v1:PersistentVolumeClaim")
    ]
    assert not any(r.protect for r in others)  # everything else can be replaced freely


def test_priority_classes_are_replaced_delete_first_when_their_immutable_fields_change(default_eval) -> None:
    for name in ("airflow-task", "airflow-placeholder"):
        resource = _resource(default_eval, "kubernetes:scheduling.k8s.io/v1:PriorityClass", name)
        assert resource.replace_on_changes == ("value", "preemptionPolicy")
        assert resource.delete_before_replace  # pinned name: create-first would collide


def test_every_manifest_header_states_its_replace_rules(default_eval) -> None:
    rules = {m.file_name: m.replace_on for m in manifests(default_eval)}
    assert rules["priorityclass-cluster-airflow-task.yaml"][-2:] == (".value", ".preemptionPolicy")
    assert ".spec.storageClassName" in rules["persistentvolumeclaim-airflow-airflow-dags.yaml"]
    assert ".spec.template" in rules["job-airflow-airflow-db-migrate.yaml"]
    assert ".data" not in rules["configmap-airflow-airflow-config.yaml"]  # updated in place
    assert all(r[:2] == (".metadata.name", ".metadata.namespace") for r in rules.values())


def test_the_pod_monitor_scrapes_the_schedulers_metrics_port_and_fits_the_operators_schema(stack) -> None:
    evaluation = stack(podMonitor=True, podMonitorLabels=["release=kube-prometheus-stack"])
    monitor = one(evaluation, "PodMonitor")
    assert crd_problems(monitor) == []
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    scheduler = one(evaluation, "Deployment", "airflow-scheduler")
    assert monitor["spec"]["selector"]["matchLabels"] == scheduler["spec"]["selector"]["matchLabels"]
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    ports = {p["name"] for p in scheduler["spec"]["template"]["spec"]["containers"][0]["ports"]}
    assert endpoint["port"] in ports and endpoint["path"] == "/metrics"
    assert evaluation.plain_outputs()["podMonitorName"] == "airflow-scheduler"


def test_no_pod_monitor_unless_asked(default_eval) -> None:
    assert default_eval.of_type("kubernetes:monitoring.coreos.com/v1:PodMonitor") == []


def test_the_crd_schema_check_is_strict() -> None:
    monitor = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": {"name": "m"},
        "spec": {"selector": {}, "podMetricsEndpoints": [{"port": "metrics", "interval": "30 seconds"}], "foo": 1},
    }
    problems = crd_problems(monitor)
    assert problems is not None and len(problems) == 2
    assert any("'foo' was unexpected" in p for p in problems)
    assert any(p.startswith("spec.podMetricsEndpoints.0.interval:") for p in problems)
    assert crd_problems({"apiVersion": "example.com/v1", "kind": "Other"}) is None  # unknown kinds: no claim
