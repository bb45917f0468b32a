"""Executor identity of a pod: deterministic names, sanitised labels, exact annotations.

Why deterministic names: the pod name is a pure function of the task key, so re-creating the
pod of the same task try (after a timeout, a 5xx, a scheduler restart) hits 409 AlreadyExists
instead of starting a duplicate.  The exact key lives in annotations (any string is allowed
there); labels carry sanitised copies for selection.  A value that is not a valid label value
as-is (``x,airflow-worker!=1``) is rewritten and suffixed with a hash of the original, so it can
neither inject selector syntax nor collide with another sanitised value.

Label keys follow Airflow's KubernetesExecutor (``dag_id``, ``task_id``, ``kubernetes_executor``,
``airflow-worker`` ...) so Airflow-aware tooling recognises the pods.
"""

from __future__ import annotations

import hashlib
import re

from airflow_k8s.executor.contract import k8snames
from airflow_k8s.executor.tasks.key import TaskKey

LABEL_EXECUTOR = "kubernetes_executor"
LABEL_INSTANCE = "airflow-worker"
LABEL_DONE = "airflow_executor_done"
LABEL_PLACEHOLDER = "airflow_executor_placeholder"
LABEL_TIER = "airflow_executor_tier"
KEY_FIELDS = ("dag_id", "task_id", "run_id", "map_index", "try_number")
RESERVED_LABELS = frozenset({LABEL_EXECUTOR, LABEL_INSTANCE, LABEL_DONE, LABEL_PLACEHOLDER, LABEL_TIER, *KEY_FIELDS})
RESERVED_ANNOTATIONS = frozenset(KEY_FIELDS)

_HASH_LEN = 12
_LABEL_HASH_LEN = 8
_NAME_PREFIX_MAX = k8snames.DNS1123_LABEL_MAX - _HASH_LEN - 1


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def pod_name(key: TaskKey) -> str:
    """``<dag>-<task>`` squeezed to DNS-1123, then ``-`` and 12 hex chars of the key's hash.

    At most 63 characters, so the name is also a valid hostname.  48 bits of hash make a
    collision between two live tasks negligible (about 1e-7 at 10,000 pods).
    """
    prefix = re.sub(r"[^a-z0-9-]+", "-", f"{key.dag_id}-{key.task_id}".lower())
    prefix = re.sub(r"-{2,}", "-", prefix).strip("-")[:_NAME_PREFIX_MAX].rstrip("-")
    return f"{prefix or 'task'}-{key.digest()[:_HASH_LEN]}"


def safe_label_value(value: str) -> str:
    """``value`` itself when it is a valid label value; otherwise a sanitised, hashed form."""
    if k8snames.is_label_value(value):
        return value
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", value)
    cleaned = re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", cleaned)
    cleaned = cleaned[: k8snames.LABEL_VALUE_MAX - _LABEL_HASH_LEN - 1]
    cleaned = re.sub(r"[^A-Za-z0-9]+$", "", cleaned)
    suffix = _digest(value)[:_LABEL_HASH_LEN]
    return f"{cleaned}-{suffix}" if cleaned else suffix


def task_labels(key: TaskKey, instance_id: str) -> dict[str, str]:
    """Selection labels of a task pod (``map_index`` only for mapped tasks: "-1" is not a valid label value)."""
    labels = {
        LABEL_EXECUTOR: "True",
        LABEL_INSTANCE: instance_id,
        "dag_id": safe_label_value(key.dag_id),
        "task_id": safe_label_value(key.task_id),
        "run_id": safe_label_value(key.run_id),
        "try_number": str(key.try_number),
    }
    if key.map_index >= 0:
        labels["map_index"] = str(key.map_index)
    return labels


def task_annotations(key: TaskKey) -> dict[str, str]:
    """The exact task key (annotations accept any string)."""
    return {
        "dag_id": key.dag_id,
        "task_id": key.task_id,
        "run_id": key.run_id,
        "map_index": str(key.map_index),
        "try_number": str(key.try_number),
    }


def key_from_annotations(annotations: dict[str, str] | None) -> TaskKey | None:
    """The task key a pod was created for, or None if the annotations do not carry one."""
    if not annotations:
        return None
    try:
        return TaskKey(
            dag_id=annotations["dag_id"],
            task_id=annotations["task_id"],
            run_id=annotations["run_id"],
            map_index=int(annotations.get("map_index", "-1")),
            try_number=int(annotations.get("try_number", "1")),
        )
    except (KeyError, ValueError, TypeError):
        return None


def instance_selector(instance_id: str) -> str:
    """Label selector for every pod (tasks and placeholders) of one executor instance."""
    return f"{LABEL_EXECUTOR}=True,{LABEL_INSTANCE}={instance_id}"


def placeholder_labels(instance_id: str) -> dict[str, str]:
    return {LABEL_EXECUTOR: "True", LABEL_INSTANCE: instance_id, LABEL_PLACEHOLDER: "True"}
