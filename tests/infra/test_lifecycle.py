"""What survives `pulumi up` after `pulumi up`: protection, replacements and the PodMonitor."""

from __future__ import annotations

import pytest

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


# -- a failed migration is re-run by the next `pulumi up` (pulumi.com/replaceUnready) ---------------


def _job_status(**status: object) -> dict[str, object]:
    return {"apiVersion": "batch/v1", "kind": "Job", "status": status}


def _condition(kind: str, reason: str = "") -> dict[str, str]:
    return {"type": kind, "status": "True", "reason": reason}


STARTED = "2025-01-01T00:00:00Z"


def test_the_migration_job_asks_the_provider_to_replace_it_when_it_is_not_ready(default_eval) -> None:
    from airflow_k8s.infra.render.replacement import replaces_when_unready

    job = one(default_eval, "Job", "airflow-db-migrate")
    assert job["metadata"]["annotations"] == {"pulumi.com/replaceUnready": "true"}
    assert replaces_when_unready(job)
    # the annotation only means something on a Job: nothing else of the platform carries it
    others = [m.obj for m in manifests(default_eval) if m.kind != "Job"]
    assert not any("pulumi.com/replaceUnready" in (o["metadata"].get("annotations") or {}) for o in others)


@pytest.mark.parametrize(
    ("live", "rerun"),
    [
        # the await's own failures: the database was unreachable, the password wrong, the CIDR closed
        (_job_status(startTime=STARTED, failed=3, conditions=[_condition("Failed", "BackoffLimitExceeded")]), True),
        (_job_status(startTime=STARTED, conditions=[_condition("Failed", "DeadlineExceeded")]), True),
        (_job_status(startTime=STARTED, active=1), True),  # `up` was interrupted while it ran
        (_job_status(), True),  # never started (quota, image pull)
        (_job_status(startTime=STARTED, succeeded=1, conditions=[_condition("Complete")]), False),
        (None, False),  # gone from the cluster: created again, not replaced
    ],
)
def test_an_unready_migration_is_replaced_and_a_completed_one_is_left_alone(default_eval, live, rerun) -> None:
    from airflow_k8s.infra.render.replacement import unready_replacement

    reason = unready_replacement(one(default_eval, "Job", "airflow-db-migrate"), live)
    assert (reason is not None) == rerun
    if rerun:
        assert "replaced, delete-first" in reason and "pulumi.com/replaceUnready" in reason


def test_without_the_annotation_a_failed_job_would_never_be_replaced(default_eval) -> None:
    """What the issue saw: the same inputs, a failed Job, no replacement - only `pulumi up --replace` helped."""
    from airflow_k8s.infra.render.replacement import replacing_changes, unready_replacement

    job = one(default_eval, "Job", "airflow-db-migrate")
    plain = {**job, "metadata": {k: v for k, v in job["metadata"].items() if k != "annotations"}}
    failed = _job_status(startTime=STARTED, conditions=[_condition("Failed", "BackoffLimitExceeded")])
    assert replacing_changes(plain, plain, (".spec.template",)) == []
    assert unready_replacement(plain, failed) is None
    assert unready_replacement(job, failed) is not None
