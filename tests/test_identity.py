"""Pod identity: deterministic DNS-1123 names, injection-proof labels, exact annotations."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_k8s.executor.contract import k8snames
from airflow_k8s.executor.tasks import identity
from airflow_k8s.executor.tasks.key import TaskKey

ids = st.text(min_size=1, max_size=250).filter(lambda s: not any(ord(c) < 32 or ord(c) == 127 for c in s))
keys = st.builds(TaskKey, ids, ids, ids, st.integers(-1, 10**6), st.integers(0, 100))


@given(keys)
def test_pod_names_are_valid_dns_labels_of_at_most_63_chars(key):
    name = identity.pod_name(key)
    assert k8snames.is_dns1123_label(name) and len(name) <= 63


@given(keys)
def test_pod_names_are_deterministic(key):
    assert identity.pod_name(key) == identity.pod_name(
        TaskKey(key.dag_id, key.task_id, key.run_id, key.map_index, key.try_number)
    )


def test_each_part_of_the_key_changes_the_name():
    base = TaskKey("dag", "task", "run", -1, 1)
    variants = [
        TaskKey("dag2", "task", "run", -1, 1),
        TaskKey("dag", "task2", "run", -1, 1),
        TaskKey("dag", "task", "run2", -1, 1),
        TaskKey("dag", "task", "run", 0, 1),
        TaskKey("dag", "task", "run", -1, 2),
    ]
    names = {identity.pod_name(k) for k in [base, *variants]}
    assert len(names) == 6


def test_names_keep_a_readable_prefix():
    name = identity.pod_name(TaskKey("custom_pod_dag", "heavy_computation", "manual__2024-01-01T00:00:00"))
    assert name.startswith("custom-pod-dag-heavy-computation-")


def test_ids_made_only_of_symbols_still_give_a_valid_name():
    assert identity.pod_name(TaskKey("___", "!!!", "r")).startswith("task-")


@given(st.text(max_size=300))
def test_sanitised_label_values_are_always_valid(value):
    assert k8snames.is_label_value(identity.safe_label_value(value))


def test_valid_label_values_are_kept_as_they_are():
    assert identity.safe_label_value("heavy_computation") == "heavy_computation"


def test_selector_syntax_cannot_be_injected_through_a_label_value():
    hostile = "x,airflow-worker!=1"
    safe = identity.safe_label_value(hostile)
    assert all(c not in safe for c in ",!= ()")
    assert safe != identity.safe_label_value("x,airflow-worker==1")  # the hash keeps them apart


def test_long_values_are_truncated_with_a_hash_suffix():
    a, b = "a" * 100, "a" * 99 + "b"
    assert len(identity.safe_label_value(a)) <= 63
    assert identity.safe_label_value(a) != identity.safe_label_value(b)


@given(keys, st.sampled_from(["default", "prod-1", "a.b_c"]))
def test_every_identity_label_is_a_valid_label(key, instance):
    labels = identity.task_labels(key, instance)
    assert all(k8snames.is_label_key(k) and k8snames.is_label_value(v) for k, v in labels.items())
    assert ("map_index" in labels) == (key.map_index >= 0)


def test_labels_carry_sanitised_ids_and_annotations_the_exact_key():
    key = TaskKey("my dag", "task/1", "scheduled__2024-01-01T00:00:00+00:00", 3, 2)
    labels = identity.task_labels(key, "default")
    assert all(k8snames.is_label_value(v) for v in labels.values())
    assert labels["kubernetes_executor"] == "True" and labels["airflow-worker"] == "default"
    annotations = identity.task_annotations(key)
    assert annotations["run_id"] == key.run_id
    assert identity.key_from_annotations(annotations) == key


@pytest.mark.parametrize(
    "annotations", [None, {}, {"dag_id": "d"}, {"dag_id": "d", "task_id": "t", "run_id": "r", "map_index": "x"}]
)
def test_pods_without_a_complete_key_are_not_claimed(annotations):
    assert identity.key_from_annotations(annotations) is None
