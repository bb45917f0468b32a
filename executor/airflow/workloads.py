"""From Airflow 3's ``ExecuteTask`` workload to the engine's :class:`~airflow_k8s.executor.tasks.task.Task`.

The pod runs what Airflow's own KubernetesExecutor runs::

    python -m airflow.sdk.execution_time.execute_workload --json-string <workload>

The workload carries a JWT valid for ``[scheduler] task_queued_timeout``; its ``exp`` claim
becomes the task's start deadline, so a pod that cannot start in time is failed with that reason
instead of starting and failing on an expired token.

Each workload is one *launch* of its task try (:mod:`airflow_k8s.executor.tasks.identity`): a
deferred task resumed by the triggerer, or a sensor in reschedule mode, is queued again with the
same try number.  The launch id is the ``external_executor_id`` Airflow's scheduler assigns when it
queues the task instance (this executor sets ``pre_assigns_external_executor_id``, so the id is
committed with the ``queued`` state and survives a scheduler crash); a workload without one falls
back to its token's ``jti`` (unique per workload), then to none (the pod name of the key alone).

Per-task settings come from ``ti.executor_config`` in two forms, both accepted:

* Airflow's: ``{"pod_override": k8s.V1Pod(...), "pod_template_file": "/path/in/pod_template_dir.yaml"}``;
* this project's typed form: ``{"kubernetes_config": {"tier": ..., "resources": ..., "node_selector": ...,
  "tolerations": ..., "env": ..., "image": ..., "labels": ..., "annotations": ..., "pod_template_file": ...}}``.

Merge order (docs/executor.md): template -> airflow.cfg defaults -> tier -> ``kubernetes_config``
-> ``pod_override`` (last, as in Airflow).  Anything else in ``executor_config`` is an error with
the key named: a typo must not silently launch a pod without the settings the DAG asked for.
"""

from __future__ import annotations

import base64
import difflib
import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from airflow_k8s.executor.contract.errors import TaskSpecError
from airflow_k8s.executor.tasks.key import TaskKey
from airflow_k8s.executor.tasks.task import KubernetesOverrides, Task, parse_overrides

EXECUTOR_CONFIG_KEYS = ("pod_override", "pod_template_file", "kubernetes_config")
COMMAND = ("python", "-m", "airflow.sdk.execution_time.execute_workload", "--json-string")


def task_key(ti: Any, try_number: int | None = None) -> TaskKey:
    """The engine's key for an Airflow task instance (any object with Airflow's TI fields)."""
    return TaskKey(
        dag_id=ti.dag_id,
        task_id=ti.task_id,
        run_id=ti.run_id,
        map_index=int(ti.map_index),
        try_number=int(ti.try_number if try_number is None else try_number),
    )


def task_from_workload(workload: Any) -> Task:
    """The :class:`Task` for an ``ExecuteTask`` workload; :class:`TaskSpecError` names what is wrong."""
    ti = workload.ti
    try:
        key = task_key(ti)
    except TaskSpecError as exc:
        raise TaskSpecError(f"task instance {ti.dag_id!r}.{ti.task_id!r}: {exc}") from exc
    source = f"{key}: executor_config"
    overrides = overrides_from_executor_config(ti.executor_config, source=source)
    return Task(
        key=key,
        command=(*COMMAND, workload.model_dump_json()),
        overrides=overrides,
        start_deadline=token_expiry(workload.token),
        ti_id=str(ti.id),
        launch=launch_id(workload),
    )


def launch_id(workload: Any) -> str | None:
    """Which queueing of the try this workload is (module docstring)."""
    assigned = getattr(workload.ti, "external_executor_id", None)
    if assigned:
        return str(assigned)
    claims = token_claims(workload.token)
    jti = claims.get("jti") if claims else None
    return str(jti) if isinstance(jti, str) and jti else None


def overrides_from_executor_config(executor_config: Any, *, source: str = "executor_config") -> KubernetesOverrides:
    """Both forms of ``executor_config`` (module docstring) as one :class:`KubernetesOverrides`."""
    if not executor_config:
        return KubernetesOverrides()
    if not isinstance(executor_config, dict):
        raise TaskSpecError(f"{source} must be a dict, got {type(executor_config).__name__}")
    unknown = sorted(set(executor_config) - set(EXECUTOR_CONFIG_KEYS), key=str)
    if unknown:
        close = difflib.get_close_matches(str(unknown[0]), EXECUTOR_CONFIG_KEYS, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise TaskSpecError(
            f"{source}: unknown key(s) {unknown}{hint} (this executor reads {', '.join(EXECUTOR_CONFIG_KEYS)})"
        )
    typed = dict(executor_config.get("kubernetes_config") or {})
    template = executor_config.get("pod_template_file")
    if template is not None:
        if "pod_template" in typed or "pod_template_file" in typed:
            raise TaskSpecError(f"{source}: pod_template_file is given both outside and inside kubernetes_config")
        typed["pod_template_file"] = template
    overrides = parse_overrides(typed, source=f"{source}.kubernetes_config" if typed else source)
    pod_override = executor_config.get("pod_override")
    if pod_override is None:
        return overrides
    if overrides.pod_override is not None:
        raise TaskSpecError(f"{source}: pod_override is given both outside and inside kubernetes_config")
    manifest = pod_manifest(pod_override, source=f"{source}.pod_override")
    checked = parse_overrides({"pod_override": manifest}, source=source)
    return replace(overrides, pod_override=checked.pod_override)


def pod_manifest(pod: Any, *, source: str) -> dict[str, Any]:
    """A ``V1Pod`` (or a Pod dict) as the camelCase dict the API server receives."""
    if isinstance(pod, dict):
        return pod
    if type(pod).__name__ != "V1Pod":
        raise TaskSpecError(f"{source} must be a kubernetes.client.V1Pod, got {type(pod).__name__}")
    from kubernetes.client import ApiClient

    serialised = ApiClient().sanitize_for_serialization(pod)
    if not isinstance(serialised, dict):  # pragma: no cover - sanitize returns a dict for a model
        raise TaskSpecError(f"{source} could not be serialised")
    return serialised


def token_claims(token: str | None) -> dict[str, Any] | None:
    """The claims of a JWT (read, not verified: the API server verifies it), or None."""
    if not token or token.count(".") != 2:
        return None
    payload = token.split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, TypeError):
        return None
    return claims if isinstance(claims, dict) else None


def token_expiry(token: str | None) -> datetime | None:
    """The ``exp`` claim of a JWT (read, not verified: the API server verifies it), or None."""
    claims = token_claims(token)
    expiry = claims.get("exp") if claims else None
    if expiry is None:
        return None
    if isinstance(expiry, bool) or not isinstance(expiry, int | float):
        return None
    return datetime.fromtimestamp(expiry, UTC)
