"""Task descriptions: validation of keys, commands and kubernetes_config before any API call."""

import pytest

from airflow_k8s.executor.contract.config import Toleration
from airflow_k8s.executor.contract.errors import TaskSpecError
from airflow_k8s.executor.tasks.task import KubernetesOverrides, Task, TaskKey, parse_overrides

BASE = {"dag_id": "custom_pod_dag", "task_id": "heavy_computation", "run_id": "manual__1", "command": ["true"]}


def test_a_minimal_task_has_a_key_and_a_command():
    task = Task.from_dict(BASE)
    assert task.key == TaskKey("custom_pod_dag", "heavy_computation", "manual__1", -1, 1)
    assert task.command == ("true",)


def test_a_task_without_a_command_is_rejected_pointing_at_airflow():
    """Airflow 3 removed ``airflow tasks run --local``: there is no command to derive from a key."""
    data = {k: v for k, v in BASE.items() if k != "command"}
    with pytest.raises(TaskSpecError, match="execute_workload"):
        Task.from_dict(data)


def test_start_deadline_and_task_instance_id_round_trip():
    task = Task.from_dict({**BASE, "start_deadline": "2026-12-01T10:00:00+02:00", "ti_id": "0190-abc"})
    assert task.start_deadline is not None and task.start_deadline.isoformat() == "2026-12-01T08:00:00+00:00"
    assert Task.from_dict(task.to_dict()) == task
    with pytest.raises(TaskSpecError, match="UTC offset"):
        Task.from_dict({**BASE, "start_deadline": "2026-12-01T10:00:00"})
    with pytest.raises(TaskSpecError, match="ti_id"):
        Task.from_dict({**BASE, "ti_id": "id\n"})


def test_the_seeds_heavy_computation_config_is_accepted():
    task = Task.from_dict(
        {
            **BASE,
            "kubernetes_config": {
                "pod_template_file": "/opt/airflow/pod_templates/heavy_computation.yaml",
                "resources": {"requests": {"cpu": "2", "memory": "4Gi"}, "limits": {"cpu": "4", "memory": "8Gi"}},
            },
        }
    )
    assert task.overrides.pod_template == "/opt/airflow/pod_templates/heavy_computation.yaml"
    assert dict(task.overrides.requests) == {"cpu": "2", "memory": "4Gi"}


def test_to_dict_round_trips():
    task = Task.from_dict(
        {
            **BASE,
            "command": ["echo", "hi"],
            "kubernetes_config": {
                "tier": "auto",
                "image": "python:3.11",
                "node_selector": {"disk": "ssd"},
                "tolerations": [{"key": "a", "operator": "Exists", "effect": "NoSchedule"}],
                "env": {"A": "1"},
                "labels": {"team": "data"},
                "annotations": {"note": "x"},
                "pod_override": {"spec": {"terminationGracePeriodSeconds": 5}},
            },
        }
    )
    assert Task.from_dict(task.to_dict()) == task
    assert task.overrides.tolerations == (Toleration("a", "Exists", None, "NoSchedule"),)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ([], "must be a JSON object"),
        ({**BASE, "dag_id": ""}, "dag_id"),
        ({**BASE, "task_id": "x" * 251}, "task_id"),
        ({**BASE, "run_id": "a\nb"}, "run_id"),
        ({**BASE, "map_index": -2}, "map_index"),
        ({**BASE, "try_number": "1"}, "try_number"),
        ({**BASE, "command": "airflow tasks run"}, "command must be a non-empty list"),
        ({**BASE, "comand": ["x"]}, "did you mean 'command'"),
        ({**BASE, "kubernetes_config": {"resource": {}}}, "did you mean 'resources'"),
        ({**BASE, "kubernetes_config": {"resources": {"requests": {"cpu": "500x"}}}}, "not a Kubernetes quantity"),
        ({**BASE, "kubernetes_config": {"resources": {"requests": {"cpu": "0"}}}}, "greater than zero"),
        (
            {**BASE, "kubernetes_config": {"resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}}},
            "greater than limits.cpu",
        ),
        ({**BASE, "kubernetes_config": {"resources": {"request": {}}}}, "did you mean 'requests'"),
        ({**BASE, "kubernetes_config": {"resources": "{{ resources }}"}}, "must be an object"),
        ({**BASE, "kubernetes_config": {"tier": "Heavy!"}}, "tier"),
        ({**BASE, "kubernetes_config": {"image": "bad image"}}, "container image"),
        ({**BASE, "kubernetes_config": {"node_selector": {"a": "b c"}}}, r"node_selector\['a'\]: 'b c' is not a valid"),
        ({**BASE, "kubernetes_config": {"labels": {"team": "data science"}}}, r"labels\['team'\]: 'data scien"),
        ({**BASE, "kubernetes_config": {"tolerations": {"key": "a"}}}, "must be a list"),
        ({**BASE, "kubernetes_config": {"env": {"1BAD": "x"}}}, "environment variable"),
        ({**BASE, "kubernetes_config": {"env": [{"name": "DB", "valueFrom": {}}]}}, "secrets belong in templates"),
        ({**BASE, "kubernetes_config": {"labels": {"dag_id": "other"}}}, "set by the executor"),
        ({**BASE, "kubernetes_config": {"annotations": {"try_number": "9"}}}, "set by the executor"),
        ({**BASE, "kubernetes_config": {"pod_override": {"status": {}}}}, "unknown key 'status'"),
        ({**BASE, "kubernetes_config": {"pod_template": "a", "pod_template_file": "b"}}, "not both"),
    ],
)
def test_bad_task_descriptions_are_rejected_with_the_offending_key(data, fragment):
    with pytest.raises(TaskSpecError, match=fragment):
        Task.from_dict(data, source="task.json")


def test_errors_name_the_source():
    with pytest.raises(TaskSpecError, match=r"^spool/1.json: "):
        Task.from_dict({**BASE, "map_index": "x"}, source="spool/1.json")


def test_empty_overrides_are_the_defaults():
    assert parse_overrides({}) == KubernetesOverrides()
