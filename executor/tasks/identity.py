"""Executor identity of a pod: deterministic names, sanitised labels, exact annotations.

Why deterministic names: the pod name is a pure function of the task key and its *launch* (see
below), so re-creating the pod of the same launch (after a timeout, a 5xx, a lost response) hits
409 AlreadyExists instead of starting a duplicate.  The exact key lives in annotations (any
string is allowed there); labels carry sanitised copies for selection.

A launch is one queueing of a task try.  Airflow runs one try in several launches when the task
defers (a triggerer resumes it) or a sensor in ``reschedule`` mode pokes again: each resumption
is queued anew with the same try number.  Every launch gets a pod of its own - its name hashes
the launch id as well as the key, and the ``airflow_executor_launch`` annotation carries it - so
the finished pod of an earlier launch (kept with ``delete_worker_pods = False``) is never taken
for the new one.  Inside Airflow the launch id is the ``external_executor_id`` the scheduler
assigns when it queues the task instance; without one (the standalone runner) the name depends
on the key alone.

Labels are exactly the ones Airflow's KubernetesExecutor puts on its pods - ``dag_id``,
``task_id``, ``run_id`` sanitised by the provider's ``make_safe_label_value`` (re-implemented
here: invalid characters dropped, and an md5 suffix when anything was dropped or the value is
longer than 63), ``try_number``, ``map_index`` for mapped tasks, ``airflow_version`` (Airflow's version with
``+`` replaced by ``-``; set by the executor inside Airflow), ``kubernetes_executor=True`` and
``airflow-worker=<scheduler job id>`` - so Airflow's tooling (``airflow kubernetes cleanup-pods``
selects on ``dag_id,task_id,try_number,airflow_version``) and users' selectors find them.  The one
divergence: where Airflow's function would produce an invalid label (an id made only of
symbols gives ``-<hash>``), the hash alone is used, since the API server would refuse the pod.
A value such as ``x,airflow-worker!=1`` can therefore never inject selector syntax.
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
LABEL_AIRFLOW_VERSION = "airflow_version"
KEY_FIELDS = ("dag_id", "task_id", "run_id", "map_index", "try_number")
RESERVED_LABELS = frozenset(
    {LABEL_EXECUTOR, LABEL_INSTANCE, LABEL_DONE, LABEL_PLACEHOLDER, LABEL_TIER, LABEL_AIRFLOW_VERSION, *KEY_FIELDS}
)
ANNOTATION_TI_ID = "task_instance_id"  # the provider's annotation name
ANNOTATION_LAUNCH = "airflow_executor_launch"  # which launch of the task try the pod runs (module docstring)
RESERVED_ANNOTATIONS = frozenset({*KEY_FIELDS, ANNOTATION_TI_ID, ANNOTATION_LAUNCH})

_HASH_LEN = 12
_LABEL_HASH_LEN = 9  # the provider's md5 prefix length
# The provider's pattern: leading non-alphanumerics, characters outside [A-Za-z0-9_.-], trailing non-alphanumerics.
_UNSAFE = re.compile(r"^[^a-z0-9A-Z]*|[^a-zA-Z0-9_\-\.]|[^a-z0-9A-Z]*$")
_NAME_PREFIX_MAX = k8snames.DNS1123_LABEL_MAX - _HASH_LEN - 1


def pod_name(key: TaskKey, launch: str | None = None) -> str:
    """``<dag>-<task>`` squeezed to DNS-1123, then ``-`` and 12 hex chars of the key's (and launch's) hash.

    At most 63 characters, so the name is also a valid hostname.  48 bits of hash make a
    collision between two live tasks negligible (about 1e-7 at 10,000 pods).  ``launch`` (module
    docstring) gives each resumption of a try its own name; without it the name is the key's.
    """
    prefix = re.sub(r"[^a-z0-9-]+", "-", f"{key.dag_id}-{key.task_id}".lower())
    prefix = re.sub(r"-{2,}", "-", prefix).strip("-")[:_NAME_PREFIX_MAX].rstrip("-")
    digest = key.digest() if not launch else hashlib.sha256(f"{key.canonical()}\n{launch}".encode()).hexdigest()
    return f"{prefix or 'task'}-{digest[:_HASH_LEN]}"


def airflow_version_label(version: str) -> str:
    """The provider's ``airflow_version`` label value: the version with ``+`` (a local version) as ``-``."""
    return safe_label_value(version.replace("+", "-"))


def safe_label_value(value: str) -> str:
    """The provider's ``make_safe_label_value(value)``, or its hash alone where that would be invalid."""
    safe = _UNSAFE.sub("", value)
    if len(safe) > k8snames.LABEL_VALUE_MAX or safe != value:
        digest = hashlib.md5(value.encode(), usedforsecurity=False).hexdigest()[:_LABEL_HASH_LEN]
        safe = f"{safe[: k8snames.LABEL_VALUE_MAX - _LABEL_HASH_LEN - 1]}-{digest}" if safe else digest
    return safe


def task_labels(key: TaskKey, instance_id: str, airflow_version: str | None = None) -> dict[str, str]:
    """Selection labels of a task pod (``map_index`` only for mapped tasks: "-1" is not a valid label value)."""
    labels = {
        LABEL_EXECUTOR: "True",
        LABEL_INSTANCE: instance_id,
        "dag_id": safe_label_value(key.dag_id),
        "task_id": safe_label_value(key.task_id),
        "run_id": safe_label_value(key.run_id),
        "try_number": str(key.try_number),
    }
    if airflow_version:
        labels[LABEL_AIRFLOW_VERSION] = airflow_version_label(airflow_version)
    if key.map_index >= 0:
        labels["map_index"] = str(key.map_index)
    return labels


def task_annotations(key: TaskKey, ti_id: str | None = None, launch: str | None = None) -> dict[str, str]:
    """The exact task key (annotations accept any string), Airflow's task instance id and the launch if known."""
    annotations = {
        "dag_id": key.dag_id,
        "task_id": key.task_id,
        "run_id": key.run_id,
        "map_index": str(key.map_index),
        "try_number": str(key.try_number),
    }
    if ti_id:
        annotations[ANNOTATION_TI_ID] = ti_id
    if launch:
        annotations[ANNOTATION_LAUNCH] = launch
    return annotations


def launch_from_annotations(annotations: dict[str, str] | None) -> str | None:
    """The launch id a pod was created for (None: a pod of a launch without one, or not ours)."""
    return (annotations or {}).get(ANNOTATION_LAUNCH) or None


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
