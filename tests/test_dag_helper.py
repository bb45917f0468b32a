"""``kubernetes_config(...)``: the typed one-line form of the seed's ``@task(kubernetes_config={...})`` (Airflow 3)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from airflow_k8s.executor.contract.errors import TaskSpecError
from airflow_k8s.executor.tasks.dag import kubernetes_config
from airflow_k8s.executor.tasks.task import parse_overrides
from tests.conftest import ROOT

# The seed's heavy_computation task, verbatim.
SEED = {
    "pod_template_file": "/opt/airflow/pod_templates/heavy_computation.yaml",
    "resources": {"requests": {"cpu": "2", "memory": "4Gi"}, "limits": {"cpu": "4", "memory": "8Gi"}},
}


def test_the_helper_returns_the_executor_config_of_the_seeds_keyword_arguments():
    config = kubernetes_config(**SEED)
    assert config == {"kubernetes_config": SEED}
    assert parse_overrides(config["kubernetes_config"]) == parse_overrides(SEED)


def test_only_the_arguments_given_are_set_and_every_field_is_accepted():
    everything = kubernetes_config(
        pod_template_file="light_task.yaml",
        tier="auto",
        image="apache/airflow:3.3.2",
        resources={"requests": {"cpu": "250m"}},
        node_selector={"node-type": "worker"},
        tolerations=[{"key": "dedicated", "operator": "Equal", "value": "worker", "effect": "NoSchedule"}],
        env={"MODE": "fast"},
        labels={"team": "data"},
        annotations={"note": "x"},
        pod_override={"spec": {"terminationGracePeriodSeconds": 30}},
    )
    assert set(everything["kubernetes_config"]) == {
        "pod_template_file", "tier", "image", "resources", "node_selector", "tolerations", "env", "labels",
        "annotations", "pod_override",
    }  # fmt: skip
    assert kubernetes_config(tier="light") == {"kubernetes_config": {"tier": "light"}}


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        ({"resources": {"requests": {"cpu": "500x"}}}, "kubernetes_config.resources.requests.cpu: '500x'"),
        ({"tier": "Heavy Duty"}, "kubernetes_config.tier must be a tier name"),
        ({"labels": {"kubernetes_executor": "False"}}, "set by the executor"),
    ],
)
def test_a_bad_value_fails_where_the_dag_is_written_naming_the_field(arguments, fragment):
    with pytest.raises(TaskSpecError, match=fragment.replace(".", r"\.").replace("(", r"\(")):
        kubernetes_config(**arguments)


def test_a_type_checker_catches_a_misspelt_argument_or_a_wrong_shape(tmp_path):
    dag = tmp_path / "dag.py"
    dag.write_text(
        textwrap.dedent(
            """
            from airflow_k8s.executor.tasks.dag import kubernetes_config

            kubernetes_config(tier="light")
            kubernetes_config(resource={"requests": {"cpu": "1"}})
            kubernetes_config(tolerations=[{"key": "k", "operator": "Maybe"}])
            """
        )
    )
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", "--follow-imports=silent", str(dag)],
        capture_output=True, text=True, cwd=ROOT, check=False, timeout=600,
    )  # fmt: skip
    out = done.stdout
    assert done.returncode == 1, out
    assert 'Unexpected keyword argument "resource" for "kubernetes_config"' in out, out
    assert "dag.py:5" in out and "dag.py:6" in out and "dag.py:4" not in out, out
