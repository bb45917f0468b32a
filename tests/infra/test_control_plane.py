"""The Airflow 3 control plane: what each role runs, with which credentials, probes and rollout."""

from __future__ import annotations

from typing import Any

import pytest
from pulumi.output import Unknown

from airflow_k8s.executor.pods import security
from airflow_k8s.infra.render.offline import Evaluation, Recorded

from .conftest import objects, one

ROLES = ("scheduler", "api-server", "dag-processor", "triggerer")


def deployments(evaluation: Evaluation) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"].removeprefix("airflow-"): d for d in objects(evaluation, "Deployment")}


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    """The role's own container (the pod also runs its log-groomer: test_logs.py)."""
    main, *sidecars = deployment["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in sidecars] == ["log-groomer"]
    return main


def env(container_: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container_.get("env", [])}


@pytest.fixture(scope="module")
def control_plane(default_eval: Evaluation) -> dict[str, dict[str, Any]]:
    return deployments(default_eval)


def test_the_four_roles_run_airflow_3_commands_from_the_platform_image(control_plane: dict[str, Any]) -> None:
    assert set(control_plane) == set(ROLES)
    args = {role: container(d)["args"] for role, d in control_plane.items()}
    assert args == {
        "scheduler": ["airflow", "scheduler"],
        "api-server": ["airflow", "api-server", "--port", "8080", "--proxy-headers"],
        "dag-processor": ["airflow", "dag-processor"],
        "triggerer": ["airflow", "triggerer"],
    }
    for deployment in control_plane.values():
        assert container(deployment)["image"] == "ghcr.io/airflow-k8s/airflow:0.1.0"
        assert "command" not in container(deployment)  # the image's entrypoint stays in charge


def test_every_pod_is_restricted_read_only_and_runs_as_the_airflow_user(default_eval: Evaluation) -> None:
    workloads = [*objects(default_eval, "Deployment"), *objects(default_eval, "Job")]
    for workload in workloads:
        pod = workload["spec"]["template"]["spec"]
        token = pod["automountServiceAccountToken"]
        assert security.restricted_violations(workload) == [], workload["metadata"]["name"]
        assert security.hardening_violations(workload, allow_token=token) == [], workload["metadata"]["name"]
        assert pod["securityContext"]["runAsUser"] == 50000 and pod["securityContext"]["runAsGroup"] == 0
        for c in pod["containers"] + pod.get("initContainers", []):
            assert c["securityContext"]["readOnlyRootFilesystem"] is True
            writable = {m["mountPath"] for m in c["volumeMounts"] if not m.get("readOnly")}
            if c["name"] == "log-groomer":  # it deletes old log files and reads nothing else
                assert writable == {"/opt/airflow/logs"} and len(c["volumeMounts"]) == 1
                continue
            if c["name"] == "admin-password":  # writes the simple auth manager's passwords file into /tmp
                assert writable == {"/tmp"} and len(c["volumeMounts"]) == 1
                continue
            assert writable == {"/opt/airflow/logs", "/tmp"}, c["name"]
            assert {"/opt/airflow/airflow.cfg"} <= {m["mountPath"] for m in c["volumeMounts"] if m.get("readOnly")}


SECRET_ENV = {
    "database-url": "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    "fernet-key": "AIRFLOW__CORE__FERNET_KEY",
    "jwt-secret": "AIRFLOW__API_AUTH__JWT_SECRET",
    "api-secret-key": "AIRFLOW__API__SECRET_KEY",
}


def _secret_keys(c: dict[str, Any]) -> set[str]:
    keys = set()
    for name, value in env(c).items():
        if isinstance(value, dict):
            ref = value["secretKeyRef"]
            assert ref["name"] == "airflow-secrets" and SECRET_ENV[ref["key"]] == name
            keys.add(ref["key"])
    return keys


def test_each_role_gets_only_the_secrets_it_needs_as_env(default_eval: Evaluation, control_plane: dict) -> None:
    granted = {role: _secret_keys(container(d)) for role, d in control_plane.items()}
    granted["db-migrate"] = _secret_keys(
        one(default_eval, "Job", "airflow-db-migrate")["spec"]["template"]["spec"]["containers"][0]
    )
    assert granted == {
        "scheduler": {"database-url", "fernet-key", "jwt-secret"},
        "api-server": {"database-url", "fernet-key", "jwt-secret", "api-secret-key"},
        "dag-processor": {"database-url", "fernet-key"},
        "triggerer": {"database-url", "fernet-key", "api-secret-key"},
        "db-migrate": {"database-url", "fernet-key"},
    }


def test_the_scheduler_and_the_dag_processor_mount_templates_only_dag_readers_mount_dags(control_plane: dict) -> None:
    # The dag-processor builds each task's pod while parsing (the executor's cluster policy).
    mounts = {role: {m["mountPath"] for m in container(d)["volumeMounts"]} for role, d in control_plane.items()}
    templated = {role for role, paths in mounts.items() if "/opt/airflow/pod_templates" in paths}
    assert templated == {"scheduler", "dag-processor"}
    assert {role for role, paths in mounts.items() if "/opt/airflow/dags" in paths} == {"dag-processor", "triggerer"}


def test_probes_use_airflows_own_health_checks(control_plane: dict[str, Any]) -> None:
    scheduler, api = container(control_plane["scheduler"]), container(control_plane["api-server"])
    assert {p["name"]: p["containerPort"] for p in scheduler["ports"]} == {"health": 8974, "metrics": 9102}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert scheduler[probe]["httpGet"] == {"path": "/health", "port": "health"}
        assert api[probe]["httpGet"] == {"path": "/api/v2/monitor/health", "port": "api"}
    for role, job in (("dag-processor", "DagProcessorJob"), ("triggerer", "TriggererJob")):
        check = ["airflow", "jobs", "check", "--job-type", job, "--local"]
        assert container(control_plane[role])["livenessProbe"]["exec"]["command"] == check


def test_rollouts_never_run_two_schedulers_and_never_drop_the_execution_api(stack, control_plane: dict) -> None:
    strategies = {role: d["spec"]["strategy"] for role, d in control_plane.items()}
    assert strategies.pop("api-server") == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    assert set(map(str, strategies.values())) == {str({"type": "Recreate"})}
    assert {role: d["spec"]["replicas"] for role, d in control_plane.items()} == dict.fromkeys(ROLES, 1)
    assert deployments(stack(apiServerReplicas=2))["api-server"]["spec"]["replicas"] == 2


def test_long_running_roles_wait_for_migrations(control_plane: dict[str, Any]) -> None:
    for role, deployment in control_plane.items():
        init, *others = deployment["spec"]["template"]["spec"]["initContainers"]
        assert [o["name"] for o in others] == (["admin-password"] if role == "api-server" else []), role
        assert init["args"] == ["airflow", "db", "check-migrations", "--migration-wait-timeout", "600"], role
        assert set(env(init)) == {
            "AIRFLOW_HOME",
            "AIRFLOW_CONFIG",
            "PYTHONUNBUFFERED",
            "PYTHONDONTWRITEBYTECODE",
            SECRET_ENV["database-url"],
        }


def test_migration_job_runs_once_per_release_before_every_deployment(default_eval: Evaluation) -> None:
    job = one(default_eval, "Job", "airflow-db-migrate")
    pod = job["spec"]["template"]["spec"]
    assert pod["containers"][0]["args"] == ["airflow", "db", "migrate"]
    assert pod["restartPolicy"] == "Never" and "initContainers" not in pod
    assert "ttlSecondsAfterFinished" not in job["spec"]  # a collected Job would run again on the next up
    (resource,) = [r for r in default_eval.of_type("kubernetes:batch/v1:Job") if r.name == "airflow-db-migrate-job"]
    assert resource.delete_before_replace  # the name is pinned: the old Job must go first
    policies = {p.name for p in default_eval.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")}
    waits_for = {urn.rsplit("::", 1)[-1] for urn in resource.depends_on}
    assert policies <= waits_for  # its database egress exists before it connects
    for deployment in default_eval.of_type("kubernetes:apps/v1:Deployment"):
        assert resource.urn in deployment.depends_on, deployment.name


def _by_name(resources: list[Recorded], name: str) -> Recorded:
    (found,) = [r for r in resources if r.inputs["metadata"]["name"] == name]
    return found


def test_metadata_is_known_in_a_preview_where_every_output_is_unknown(stack) -> None:
    """A preview on a new cluster, or with a provider built from another resource's output."""
    from airflow_k8s.infra.render.offline import evaluate

    from .conftest import stack_config

    config, secret_keys = stack_config()
    evaluation = evaluate(config, secret_keys=secret_keys, unknown_outputs=True)
    for kind in ("apps/v1:Deployment", "batch/v1:Job", "core/v1:Service", "core/v1:ConfigMap"):
        for resource in evaluation.of_type(f"kubernetes:{kind}"):
            meta = resource.inputs["metadata"]
            assert isinstance(meta, dict) and isinstance(meta["name"], str), resource.urn
            assert meta["labels"]["app.kubernetes.io/instance"] == "airflow", resource.urn
    scheduler = _by_name(evaluation.of_type("kubernetes:apps/v1:Deployment"), "airflow-scheduler")
    assert scheduler.inputs["metadata"]["name"] == "airflow-scheduler"
    assert isinstance(scheduler.inputs["spec"], Unknown)  # the preview really had no outputs to build it from


def test_triggerer_is_optional(stack) -> None:
    evaluation = stack(triggererEnabled=False)
    assert set(deployments(evaluation)) == {"scheduler", "api-server", "dag-processor"}
    assert evaluation.plain_outputs()["triggererDeploymentName"] is None


def test_services_and_disruption_budgets(default_eval: Evaluation, control_plane: dict) -> None:
    services = {s["metadata"]["name"]: s["spec"] for s in objects(default_eval, "Service")}
    assert services == {
        "airflow-api-server": {
            "ports": [{"name": "api", "port": 8080, "protocol": "TCP", "targetPort": "api"}],
            "selector": control_plane["api-server"]["spec"]["selector"]["matchLabels"],
            "type": "ClusterIP",
        },
        "airflow-scheduler-metrics": {
            "ports": [{"name": "metrics", "port": 9102, "protocol": "TCP", "targetPort": "metrics"}],
            "selector": control_plane["scheduler"]["spec"]["selector"]["matchLabels"],
            "type": "ClusterIP",
        },
    }
    budgets = {p["metadata"]["name"]: p["spec"] for p in objects(default_eval, "PodDisruptionBudget")}
    assert set(budgets) == {f"airflow-{role}" for role in ROLES}
    for spec in budgets.values():
        assert spec["maxUnavailable"] == 1 and "minAvailable" not in spec  # never blocks a drain
        assert spec["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


def test_image_and_resources_from_config(stack) -> None:
    digest = "registry.example/airflow@sha256:" + "a" * 64
    evaluation = stack(airflowImage=digest, airflowImagePullPolicy="IfNotPresent", triggererCpuLimit="750m")
    found = deployments(evaluation)
    assert {container(d)["image"] for d in found.values()} == {digest}
    assert one(evaluation, "Job", "airflow-db-migrate")["spec"]["template"]["spec"]["containers"][0]["image"] == digest
    assert {container(d)["imagePullPolicy"] for d in found.values()} == {"IfNotPresent"}
    assert container(found["triggerer"])["resources"] == {
        "limits": {"cpu": "750m", "memory": "1Gi"},
        "requests": {"cpu": "250m", "memory": "512Mi"},
    }
