"""Adopting the pods of a scheduler that died: find them, relabel them, keep their task instances.

Airflow calls ``try_adopt_task_instances`` with task instances queued or running under scheduler
jobs that stopped heartbeating.  For each such job, one list call per namespace finds its pods
(``kubernetes_executor=True,airflow-worker=<that job>``); a pod is matched to a task instance by
the exact task key in its annotations, and - when both carry one - by Airflow's task instance
id, so a pod of a superseded task instance (cleared and re-queued meanwhile) is never adopted.
A try may have several pods - one per launch (a deferred task resumed, a rescheduled sensor,
kept by ``delete_worker_pods = False``): the task instance's ``external_executor_id`` (the launch
id, or the pod name once it reported running) picks the current launch's pod, so a finished pod of
an earlier launch is never adopted in its place.

An adopted pod is relabelled ``airflow-worker=<this job>`` (the engine's watch then follows it:
a running pod is tracked, a finished one is finished and reported) and its ``done`` label, if an
old scheduler had set one before its outcome reached Airflow, is removed so the outcome is
reported again.  A task instance with no pod but an outcome the engine already saw is adopted
too; anything else is returned, and Airflow resets it for rescheduling.  No pod is created here.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_k8s.executor.airflow.workloads import task_key
from airflow_k8s.executor.contract.config import ExecutorConfig
from airflow_k8s.executor.contract.errors import KubeApiError, NotFound
from airflow_k8s.executor.tasks import identity
from airflow_k8s.executor.tasks.key import TaskKey

if TYPE_CHECKING:
    from airflow_k8s.executor.airflow.executor import KubernetesPlatformExecutor

log = logging.getLogger(__name__)


def adopt(executor: KubernetesPlatformExecutor, tis: Sequence[Any]) -> list[Any]:
    """The task instances of ``tis`` that could not be adopted (module docstring)."""
    assert executor.kube is not None and executor.settings is not None
    own = str(executor.job_id)
    not_adopted: list[Any] = []
    by_job: dict[str, list[Any]] = defaultdict(list)
    for ti in tis:
        if ti.key in executor.running:
            log.info("%s is already adopted", ti)
        elif not ti.queued_by_job_id or str(ti.queued_by_job_id) == own:
            not_adopted.append(ti)
        else:
            by_job[str(ti.queued_by_job_id)].append(ti)
    for job_id, group in by_job.items():
        pods = _pods_of_job(executor, job_id)
        for ti in group:
            if _adopt_one(executor, ti, pods):
                executor.running.add(ti.key)
            else:
                not_adopted.append(ti)
    return not_adopted


def _pods_of_job(executor: KubernetesPlatformExecutor, job_id: str) -> dict[TaskKey, list[dict[str, Any]]]:
    assert executor.kube is not None and executor.settings is not None
    selector = f"{identity.LABEL_EXECUTOR}=True,{identity.LABEL_INSTANCE}={identity.safe_label_value(job_id)}"
    namespaces = executor.settings.namespaces()
    pods: dict[TaskKey, list[dict[str, Any]]] = defaultdict(list)
    for namespace in namespaces if namespaces is not None else (None,):
        for pod in executor.kube.list_pods(namespace, label_selector=selector).items:
            key = identity.key_from_annotations((pod.get("metadata") or {}).get("annotations"))
            if key is not None:
                pods[key].append(pod)
    return pods


def candidate_pod_names(key: TaskKey, external_executor_id: object) -> list[str]:
    """The names the current launch's pod may have, most likely first: the task instance's
    ``external_executor_id`` is the pod's name once it reported running, before that the launch id."""
    names = []
    if isinstance(external_executor_id, str) and external_executor_id:
        names.extend([external_executor_id, identity.pod_name(key, external_executor_id)])
    names.append(identity.pod_name(key))  # a pod named by the key alone (no launch id)
    return list(dict.fromkeys(names))


def current_pod(ti: Any, key: TaskKey, pods: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The pod of the task instance's current launch among ``pods`` (the try's), or None."""
    by_name = {(p.get("metadata") or {}).get("name"): p for p in pods}
    external_id = getattr(ti, "external_executor_id", None)
    for name in candidate_pod_names(key, external_id):
        if name in by_name:
            return by_name[name]
    if external_id:
        return None  # the current launch's pod does not exist: never take an earlier launch's for it
    live = [p for p in pods if ((p.get("metadata") or {}).get("labels") or {}).get(identity.LABEL_DONE) != "True"]
    newest = sorted(live, key=lambda p: str((p.get("metadata") or {}).get("creationTimestamp") or ""))
    return newest[-1] if newest else None


def _adopt_one(executor: KubernetesPlatformExecutor, ti: Any, pods: dict[TaskKey, list[dict[str, Any]]]) -> bool:
    assert executor.kube is not None and executor.settings is not None
    key = task_key(ti)
    pod = current_pod(ti, key, pods.get(key, ()))
    external_id = getattr(ti, "external_executor_id", None)
    launch_pods = candidate_pod_names(key, external_id) if external_id else None
    if pod is None:  # finished while no scheduler ran: sync reports it (the current launch's outcome only)
        return executor.outcomes.claim(key, launch_pods)
    metadata = pod.get("metadata") or {}
    pod_ti_id = (metadata.get("annotations") or {}).get(identity.ANNOTATION_TI_ID)
    if pod_ti_id and str(getattr(ti, "id", "") or "") not in ("", pod_ti_id):
        log.info("not adopting pod %s: it belongs to a superseded task instance %s", metadata.get("name"), pod_ti_id)
        return False
    labels = {identity.LABEL_INSTANCE: executor.settings.scheduler_instance_id, identity.LABEL_DONE: None}
    try:
        executor.kube.patch_pod_metadata(metadata["namespace"], metadata["name"], labels=labels)
    except NotFound:
        return executor.outcomes.claim(key, launch_pods)
    except KubeApiError as exc:
        log.warning("cannot adopt pod %s: %s", metadata.get("name"), exc)
        return False
    executor.pods[key] = metadata["name"]
    log.info("adopted pod %s of %s from scheduler job %s", metadata["name"], ti, ti.queued_by_job_id)
    return True


def log_namespaces(ti: Any, config: ExecutorConfig) -> list[str]:
    """Where a task's pod can be: its pod_override's namespace (multi-namespace mode), then the default."""
    out = []
    pod_override = (getattr(ti, "executor_config", None) or {}).get("pod_override")
    namespace = getattr(getattr(pod_override, "metadata", None), "namespace", None)
    if isinstance(pod_override, dict):
        namespace = (pod_override.get("metadata") or {}).get("namespace")
    if config.multi_namespace_mode and namespace:
        out.append(namespace)
    out.append(config.namespace)
    return out
