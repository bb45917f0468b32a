"""The image preflight Jobs under Pulumi mocks: what they run, how they are built, named and ordered."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from airflow_k8s.executor.imagecheck import incontainer
from airflow_k8s.executor.pods import security
from airflow_k8s.infra.config.stack_config import StackConfigError, parse_stack_config
from airflow_k8s.infra.render.offline import Evaluation

from .conftest import objects, one

Stack = Callable[..., Evaluation]
JOB = "kubernetes:batch/v1:Job"


def checks(evaluation: Evaluation) -> dict[str, dict[str, Any]]:
    """``worker`` / ``airflow`` -> the preflight Job of that image."""
    found = {}
    for job in objects(evaluation, "Job"):
        name = job["metadata"]["name"]
        for role in ("worker", "airflow"):
            if name.startswith(f"airflow-check-{role}-"):
                found[role] = job
    return found


def pod(job: dict[str, Any]) -> dict[str, Any]:
    return job["spec"]["template"]["spec"]


def spec_of(job: dict[str, Any]) -> dict[str, Any]:
    args = pod(job)["containers"][0]["args"]
    assert args[:2] == ["python", "-c"] and args[3] == "--spec"
    return json.loads(args[4])


def env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env") or []}


@pytest.fixture(scope="module")
def default_checks(default_eval: Evaluation) -> dict[str, dict[str, Any]]:
    return checks(default_eval)


def test_each_image_gets_a_job_that_runs_the_packaged_checker_once(default_checks):
    assert sorted(default_checks) == ["airflow", "worker"]
    for job in default_checks.values():
        assert job["spec"]["backoffLimit"] == 0 and pod(job)["restartPolicy"] == "Never"
        assert "ttlSecondsAfterFinished" not in job["spec"]
        container = pod(job)["containers"][0]
        assert container["args"][2] == inspect.getsource(incontainer)  # the package's checker, verbatim
        assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
    worker, airflow = spec_of(default_checks["worker"]), spec_of(default_checks["airflow"])
    assert (worker["role"], worker["image"]) == ("worker", "apache/airflow:3.3.2")
    assert (airflow["role"], airflow["image"]) == ("scheduler", "ghcr.io/airflow-k8s/airflow:0.1.0")
    for spec in (worker, airflow):
        assert (spec["uid"], spec["gid"], spec["airflow_version"]) == (50000, 0, "3.3.2")
        assert (spec["airflow_home"], spec["airflow_config"]) == ("/opt/airflow", "/opt/airflow/airflow.cfg")
        assert spec["execution_api_url"] == "http://airflow-api-server.airflow.svc.cluster.local:8080/execution/"
    assert worker["executor_version"] == "" and airflow["executor_version"]  # only the scheduler's image has it


def test_the_worker_check_runs_in_the_pod_a_task_gets_with_the_layout_left_to_the_image(default_eval, default_checks):
    job = default_checks["worker"]
    spec = pod(job)
    (base,) = spec["containers"]
    assert base["name"] == "base" and base["image"] == "apache/airflow:3.3.2"
    # what the executor's pod factory adds to every task pod, from airflow.cfg
    assert env(base)["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"].endswith(":8080/execution/")
    assert env(base)["AIRFLOW_IS_K8S_EXECUTOR_POD"] == "True"
    assert "AIRFLOW_HOME" not in env(base) and "AIRFLOW_CONFIG" not in env(base)  # the checker sets them itself
    assert (spec["serviceAccountName"], spec["priorityClassName"]) == ("airflow-worker", "airflow-task")
    assert spec["automountServiceAccountToken"] is False
    # the published default template's hardening, mounts and placement
    template = next(t for t in objects(default_eval, "ConfigMap") if t["metadata"]["name"] == "airflow-pod-templates")[
        "data"
    ]["default_template.yaml"]
    import yaml

    published = yaml.safe_load(template)["spec"]
    assert spec["securityContext"] == published["securityContext"]
    assert spec["volumes"] == published["volumes"] and spec["nodeSelector"] == published["nodeSelector"]
    assert base["volumeMounts"] == published["containers"][0]["volumeMounts"]
    assert security.restricted_violations(job) == [] and security.hardening_violations(job, allow_token=False) == []
    labels = job["spec"]["template"]["metadata"]["labels"]
    assert "kubernetes_executor" not in labels and "airflow-worker" not in labels  # never mistaken for a task pod


def test_the_airflow_check_runs_as_the_control_plane_without_secrets_or_token(default_checks):
    spec = pod(default_checks["airflow"])
    (container,) = spec["containers"]
    assert container["image"] == "ghcr.io/airflow-k8s/airflow:0.1.0"
    assert (spec["serviceAccountName"], spec["automountServiceAccountToken"]) == ("airflow-control-plane", False)
    assert set(env(container)) == {"PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE"}  # no Secret, no layout override
    mounts = {m["mountPath"]: m.get("readOnly", False) for m in container["volumeMounts"]}
    assert mounts == {
        "/opt/airflow/airflow.cfg": True,
        "/opt/airflow/dags": True,
        "/opt/airflow/pod_templates": True,
        "/opt/airflow/logs": False,
        "/tmp": False,
    }
    assert (spec["securityContext"]["runAsUser"], spec["securityContext"]["runAsGroup"]) == (50000, 0)
    assert "initContainers" not in spec


def test_the_control_plane_rolls_only_after_both_checks_and_the_migration_after_the_airflow_check(default_eval):
    jobs = {r.inputs["metadata"]["name"]: r for r in default_eval.of_type(JOB)}
    worker = next(r for n, r in jobs.items() if "-check-worker-" in n)
    airflow = next(r for n, r in jobs.items() if "-check-airflow-" in n)
    migration = jobs["airflow-db-migrate"]
    for deployment in default_eval.of_type("kubernetes:apps/v1:Deployment"):
        assert {worker.urn, airflow.urn, migration.urn} <= set(deployment.depends_on), deployment.name
    assert airflow.urn in migration.depends_on and worker.urn not in migration.depends_on
    policies = {p.urn for p in default_eval.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")}
    for check in (worker, airflow):
        assert policies <= set(check.depends_on)  # DNS egress exists before they resolve the Execution API
        assert check.delete_before_replace  # a changed pod under the same name: the old Job goes first


def _names(evaluation: Evaluation) -> dict[str, str]:
    return {role: job["metadata"]["name"] for role, job in checks(evaluation).items()}


def test_a_new_image_or_user_creates_a_new_check_and_nothing_else_does(stack: Stack, default_eval):
    before = _names(default_eval)
    assert _names(stack()) == before  # deterministic
    assert _names(stack(workerPodsMax=6)) == before  # not a setting the checks look at
    worker = _names(stack(workerImage="registry.example/etl-worker:2"))
    assert worker["airflow"] == before["airflow"] and worker["worker"] != before["worker"]
    airflow = _names(stack(airflowImage="registry.example/airflow-k8s:0.2.0"))
    assert airflow["worker"] == before["worker"] and airflow["airflow"] != before["airflow"]
    user = stack(runAsUser=1000, runAsGroup=1000)
    assert set(_names(user).values()).isdisjoint(before.values())
    for job in checks(user).values():
        assert spec_of(job)["uid"] == 1000 and pod(job)["securityContext"]["runAsUser"] == 1000


def test_the_user_the_stack_names_runs_every_pod_and_every_published_template(stack: Stack):
    import yaml

    evaluation = stack(runAsUser=1234, runAsGroup=5678)
    pods = [d["spec"]["template"]["spec"] for d in [*objects(evaluation, "Deployment"), *objects(evaluation, "Job")]]
    templates = one(evaluation, "ConfigMap", "airflow-pod-templates")["data"]
    pods += [yaml.safe_load(text)["spec"] for text in templates.values()]
    assert len(pods) == 4 + 3 + 4
    for spec in pods:
        context = spec["securityContext"]
        assert (context["runAsUser"], context["runAsGroup"], context["fsGroup"]) == (1234, 5678, 5678)


def test_published_templates_pin_airflow_home_and_config_to_their_airflow_cfg_mount(default_eval):
    import yaml

    for name, text in one(default_eval, "ConfigMap", "airflow-pod-templates")["data"].items():
        base = yaml.safe_load(text)["spec"]["containers"][0]
        assert (env(base)["AIRFLOW_HOME"], env(base)["AIRFLOW_CONFIG"]) == ("/opt/airflow", "/opt/airflow/airflow.cfg")
        assert {"mountPath": "/opt/airflow/airflow.cfg", "name": "airflow-config", "readOnly": True,
                "subPath": "airflow.cfg"} in base["volumeMounts"], name  # fmt: skip


def test_a_template_whose_airflow_config_is_not_its_mount_is_refused():
    import yaml

    from airflow_k8s.infra.components.podtemplates import RewireError, TemplateWiring, rewire
    from tests.conftest import ROOT

    template = yaml.safe_load((ROOT / "pod_templates" / "default_template.yaml").read_text())
    for item in template["spec"]["containers"][0]["env"]:
        if item["name"] == "AIRFLOW_CONFIG":
            item["value"] = "/home/airflow/airflow.cfg"
    with pytest.raises(RewireError, match=r"AIRFLOW_CONFIG='/home/airflow/airflow.cfg' but airflow.cfg is mounted at"):
        rewire(template, TemplateWiring("airflow-config", "airflow-dags", "airflow-worker"), source="t")


def test_the_preflight_can_be_turned_off(stack: Stack):
    evaluation = stack(imagePreflight=False)
    assert checks(evaluation) == {}
    assert evaluation.plain_outputs()["imageCheckJobNames"] == []
    (migration,) = evaluation.of_type(JOB)
    for deployment in evaluation.of_type("kubernetes:apps/v1:Deployment"):
        assert migration.urn in deployment.depends_on


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("runAsUser", 0, "must be >= 1"),
        ("runAsGroup", -1, "must be >= 0"),
        ("airflowVersion", "latest", "expected an Airflow release such as 3.3.2"),
    ],
)
def test_bad_user_or_version_keys_fail_naming_the_key(key: str, value: Any, reason: str):
    with pytest.raises(StackConfigError) as raised:
        parse_stack_config({key: str(value)}, secrets_set={"databaseUrl"})
    assert f"airflow-k8s:{key}" in str(raised.value) and reason in str(raised.value)


def test_the_shipped_program_runs_on_a_bare_python_and_names_the_image_in_one_line(default_checks, tmp_path):
    """``python -S``: no site-packages, so neither this package nor Airflow - like a worker image without them."""
    spec = {**spec_of(default_checks["worker"]), "airflow_home": str(tmp_path), "resolve_seconds": 0}
    args = pod(default_checks["worker"])["containers"][0]["args"]
    done = subprocess.run(
        [sys.executable, "-S", "-c", args[2], "--spec", json.dumps(spec)],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("image apache/airflow:3.3.2 (worker) cannot run the platform's pods: ")
    assert "apache-airflow is not installed" in last
