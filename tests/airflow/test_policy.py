"""The package's Airflow cluster policy (``airflow.policy`` entry point): DAGs parsed by a real Airflow 3.3.2 DagBag,
in a process of their own configured as the platform's dag-processor is (airflow.cfg through environment variables)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from tests.conftest import ROOT

EXECUTOR = "airflow_k8s.executor.airflow.KubernetesPlatformExecutor"
E2E_DAGS = ROOT / "tests" / "airflow" / "e2e" / "dags"
PARSE = """
import json
from airflow.configuration import conf
from airflow.dag_processing.dagbag import DagBag
if {blocked!r}:  # as Airflow's supervisor keeps DAG code off the database in a DAG file processor
    conf.set("database", "sql_alchemy_conn_cmd", "/bin/false")
bag = DagBag(dag_folder={folder!r})
errors = {{path.rsplit("/", 1)[-1]: text for path, text in bag.import_errors.items()}}
print(json.dumps({{"dags": sorted(bag.dags), "errors": errors}}))
"""


def parse(folder: Path, home: Path, *, blocked_database: bool = True, **settings: str) -> dict:
    """Parse ``folder`` in a fresh Airflow process whose configuration is ``settings`` (section__key: value),
    with the database blocked as in a DAG file processor."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(AIRFLOW_HOME=str(home), AIRFLOW__CORE__LOAD_EXAMPLES="False", AIRFLOW__CORE__UNIT_TEST_MODE="True")
    env.update({f"AIRFLOW__{name.upper()}": value for name, value in settings.items()})
    code = PARSE.format(folder=str(folder), blocked=blocked_database)
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


PLATFORM = {
    "core__executor": EXECUTOR,
    "kubernetes_executor__namespace": "airflow",
    "kubernetes_executor__pod_template_dir": str(ROOT / "pod_templates"),
    "kubernetes_executor__worker_container_image": "apache/airflow:3.3.2",
}


@pytest.fixture
def dags(tmp_path: Path) -> Path:
    folder = tmp_path / "dags"
    folder.mkdir()
    shutil.copy(E2E_DAGS / "e2e_broken_configs.py", folder)
    return folder


def test_the_package_registers_its_cluster_policy_with_airflow():
    (plugin,) = [ep for ep in entry_points(group="airflow.policy") if ep.name == "airflow_k8s"]
    assert plugin.value == "airflow_k8s.executor.airflow.policy"


def test_a_dag_with_six_broken_executor_configs_is_an_import_error_naming_each_task_field_and_rule(dags, tmp_path):
    parsed = parse(dags, tmp_path, **PLATFORM)
    assert parsed["dags"] == []
    error = parsed["errors"]["e2e_broken_configs.py"]
    assert error.startswith(
        "AirflowClusterPolicyViolation: 6 task(s) of DAG 'e2e_broken_configs' have an executor_config that "
        "KubernetesPlatformExecutor refuses:"
    ), error
    for line in (
        "task 'misspelt_key': executor_config: unknown key(s) ['kubernetes_confg']; did you mean 'kubernetes_config'?",
        "task 'misspelt_field': executor_config.kubernetes_config: unknown key 'resource'; did you mean 'resources'?",
        "task 'unknown_tier': kubernetes_config.tier: unknown tier 'huge' (known: light, medium, heavy, gpu)",
        "task 'not_a_quantity': executor_config.kubernetes_config.resources.requests.cpu: '500x' is not a Kubernetes "
        "quantity",
        "task 'host_path_volume': pod_override violates the task pod policy:\n"
        "      - spec.volumes[4] (example-kubernetes-test-volume): hostPath volumes are not allowed",
        "task 'request_over_limit': executor_config.kubernetes_config.resources: requests.cpu = '8' is greater than "
        "limits.cpu = '4'",
    ):
        assert line in error, (line, error)
    assert "'fine'" not in error


def test_the_example_dags_pass_the_policy(tmp_path):
    parsed = parse(ROOT / "examples" / "dags", tmp_path, **PLATFORM)
    assert parsed["errors"] == {}
    assert parsed["dags"] == ["custom_pod_dag", "resource_aware_k8s_dag"]


def test_the_policy_checks_nothing_where_another_executor_runs_the_tasks(dags, tmp_path):
    assert parse(dags, tmp_path, core__executor="LocalExecutor")["dags"] == ["e2e_broken_configs"]
    # This executor configured, but not the default, and the DAG's tasks not routed to it.
    second = parse(dags, tmp_path, **{**PLATFORM, "core__executor": f"LocalExecutor,{EXECUTOR}"})
    assert second["dags"] == ["e2e_broken_configs"]


def test_the_seeds_task_keyword_is_refused_by_airflow_and_the_helper_is_its_one_line_equivalent():
    from airflow.sdk import dag, task

    from airflow_k8s.executor.airflow.workloads import overrides_from_executor_config
    from airflow_k8s.executor.tasks.dag import kubernetes_config

    seed = {"pod_template_file": "heavy_computation.yaml", "resources": {"requests": {"cpu": "2", "memory": "4Gi"}}}
    with pytest.raises(TypeError, match="kubernetes_config"):

        @dag(schedule=None)
        def seed_form():
            @task(kubernetes_config=seed)
            def heavy(): ...

            heavy()

        seed_form()

    @dag(schedule=None)
    def helper_form():
        @task(executor_config=kubernetes_config(**seed))
        def heavy(): ...

        heavy()

    (built,) = helper_form().tasks
    assert built.executor_config == {"kubernetes_config": seed}
    assert overrides_from_executor_config(built.executor_config).pod_template == "heavy_computation.yaml"
