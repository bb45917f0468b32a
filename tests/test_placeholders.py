"""Placeholder pods: how many, what they are, and that they warm the pool task pods go to."""

from __future__ import annotations

import dataclasses

import pytest

from airflow_k8s.executor.contract.config import Toleration
from airflow_k8s.executor.engine.placeholders import (
    build_placeholder,
    desired_placeholders,
    placeholder_index,
    placeholder_name,
)
from airflow_k8s.executor.pods import schema, security
from airflow_k8s.executor.pods.podfactory import build_pod
from airflow_k8s.executor.tasks.task import Task


@pytest.mark.parametrize(
    ("n_min", "n_max", "wanted", "expected"),
    [(0, 10, 0, 0), (3, 10, 0, 3), (3, 10, 2, 1), (3, 10, 5, 0), (4, 2, 0, 2)],
)
def test_placeholders_fill_n_min_minus_wanted_capped_by_n_max(n_min, n_max, wanted, expected):
    assert desired_placeholders(n_min, n_max, wanted) == expected


@pytest.mark.parametrize("instance", ["default", "Prod_East.1", "___"])
def test_placeholder_names_round_trip_to_their_index(instance):
    assert placeholder_index(placeholder_name(instance, 7)) == 7
    assert placeholder_index("dag-task-0123456789ab") is None


def test_a_placeholder_is_restricted_and_lands_where_default_tasks_land(seed_config, templates):
    config = dataclasses.replace(
        seed_config,
        worker_node_selector=(("arch", "amd64"),),
        worker_tolerations=(Toleration("spot", "Exists", None, "NoSchedule"),),
        placeholder_priority_class="airflow-placeholder",
    )
    placeholder = build_placeholder(config, templates, 0)
    schema.validate_manifest(placeholder, where="placeholder")
    assert security.restricted_violations(placeholder) == []
    medium_task = Task.from_dict(
        {"dag_id": "d", "task_id": "t", "run_id": "r", "command": ["true"], "kubernetes_config": {"tier": "medium"}}
    )
    task_pod = build_pod(medium_task, config, templates)
    assert placeholder["spec"]["nodeSelector"] == task_pod["spec"]["nodeSelector"]
    assert placeholder["spec"]["tolerations"] == task_pod["spec"]["tolerations"]
    assert placeholder["spec"]["containers"][0]["resources"]["requests"] == {"cpu": "1", "memory": "2Gi"}
    assert placeholder["spec"]["priorityClassName"] == "airflow-placeholder"
