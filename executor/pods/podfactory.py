"""The pod factory: one task -> one Kubernetes Pod manifest (a plain dict).

Merge order, each step applied on top of the previous one:

1. **Template** - the task's ``pod_template`` / ``pod_template_file`` if it names one, else its
   tier's template, else ``pod_template_file`` from airflow.cfg.  The task runs in the container
   named ``base``.
2. **Config defaults** (airflow.cfg ``[kubernetes_executor]``):
   ``namespace`` is the executor's; only in ``multi_namespace_mode`` may the template or the
   task's ``pod_override`` name another one, from ``multi_namespace_mode_namespace_list`` (a
   security boundary: anything else is an error, never silently ignored);
   ``worker_container_image`` *replaces* the template's image (one knob rolls the Airflow
   version everywhere, as Airflow's worker_container_repository does).  Everything else only
   *fills gaps*: ``image_pull_policy``, ``worker_service_account_name``, ``worker_priority_class``,
   each ``worker_resource_*`` key, each ``worker_node_selector`` key; ``worker_tolerations`` are
   appended.  Templates exist to specialise pods, so a heavy template's 2 CPUs and its
   compute-optimized node selector survive the global defaults.  With ``[core]
   execution_api_server_url`` set, the base container gets ``AIRFLOW__CORE__EXECUTION_API_SERVER_URL``
   (the Execution API is all an Airflow 3 worker talks to) and, unless the template sets them, how
   the Task SDK retries it: ``AIRFLOW__WORKERS__EXECUTION_API_RETRIES``, ``_RETRY_WAIT_MIN``,
   ``_RETRY_WAIT_MAX`` from ``[workers]`` (the executor's defaults ride out an api-server restart).
3. **Tier** (the task's ``tier``, or the one the scheduler chose for ``tier: auto``): its
   requests/limits replace those keys on the base container.
4. **Task overrides** (``kubernetes_config``): ``image`` replaces; ``resources`` replace per key
   (``requests.cpu`` alone leaves ``requests.memory`` as it was); ``node_selector`` replaces per
   key; ``tolerations`` are appended (duplicates dropped); ``env`` replaces by name and appends
   new names; ``labels``/``annotations`` replace per key.
   ``pod_override`` comes last, with the provider's ``reconcile_pods`` semantics
   (:func:`merge_pod_override`): what it sets replaces the template's - ``nodeSelector``,
   ``tolerations``, ``affinity``, security contexts, any other field - except labels/annotations
   (per key), containers, init containers and volumes (by name) and a container's env, mounts,
   ports (by name/path/port) and resources (per key); ``null`` deletes a key.
5. **Executor identity** - name (a function of the task key and its launch), identity labels
   (the provider's, ``airflow_version`` included) and annotations, ``restartPolicy: Never``, the
   task command as the base container's ``args``, ``AIRFLOW_IS_K8S_EXECUTOR_POD=True`` (as Airflow's
   own pods carry).  Applied last, so nothing can forge them.

The task's changes (step 4) are judged by the task pod policy (:mod:`airflow_k8s.executor.pods.policy`)
against the pod steps 1-3 built, after the typed overrides and again after ``pod_override``
(which is first validated against the pinned Kubernetes schema, being free-form).  Then the
result is checked, before any API call: requests <= limits on every container, an image is set,
the pod passes Pod Security Standards "restricted" and the platform hardening (read-only root
filesystems, requests and limits everywhere, no API token), and no container gets database
credentials, the JWT signing secret or the Fernet key (Airflow 3 workers reach only the
Execution API, with their workload's token).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from airflow_k8s.executor.contract import jsonfast, k8snames
from airflow_k8s.executor.contract.config import ExecutorConfig, Tier
from airflow_k8s.executor.contract.errors import PodPolicyError, TaskSpecError
from airflow_k8s.executor.pods import policy, schema, security
from airflow_k8s.executor.pods.allowances import store_templates
from airflow_k8s.executor.pods.templates import TemplateStore
from airflow_k8s.executor.tasks import identity
from airflow_k8s.executor.tasks.task import AUTO_TIER, KubernetesOverrides, Task

BASE_CONTAINER = "base"
EXECUTION_API_ENV = "AIRFLOW__CORE__EXECUTION_API_SERVER_URL"
# Control-plane secrets a task pod must never see, in every form Airflow reads them.
_SECRET_SETTINGS = ("DATABASE__SQL_ALCHEMY_CONN", "CORE__SQL_ALCHEMY_CONN", "API_AUTH__JWT_SECRET", "CORE__FERNET_KEY")
FORBIDDEN_ENV = frozenset(f"AIRFLOW__{name}{suffix}" for name in _SECRET_SETTINGS for suffix in ("", "_CMD", "_SECRET"))


def choose_template(task: Task, config: ExecutorConfig, tier: Tier | None) -> str:
    """The template reference step 1 loads."""
    if task.overrides.pod_template is not None:
        return task.overrides.pod_template
    if tier is not None and tier.pod_template is not None:
        return tier.pod_template
    return config.pod_template_file


def resolve_tier(task: Task, config: ExecutorConfig, chosen: str | None = None) -> Tier | None:
    """The task's tier: explicit name, or ``chosen`` for ``auto`` (default_tier offline)."""
    name = task.overrides.tier
    if name is None:
        return None
    if name == AUTO_TIER:
        name = chosen or config.default_tier
    try:
        return config.tier(name)
    except KeyError as exc:
        raise TaskSpecError(f"{task.key}: kubernetes_config.tier: {exc.args[0]}") from exc


def build_pod(
    task: Task,
    config: ExecutorConfig,
    templates: TemplateStore,
    *,
    tier_name: str | None = None,
    validate_schema: bool | None = None,
) -> dict[str, Any]:
    """The Pod manifest for ``task``; see the module docstring for the merge semantics.

    ``tier_name`` is the scheduler's choice for ``tier: auto`` tasks.  ``validate_schema``
    forces a schema validation of the final pod; a ``pod_override`` is always validated once
    merged (templates are validated when loaded and typed overrides cannot produce schema errors;
    strict validation costs milliseconds).
    """
    tier = resolve_tier(task, config, tier_name)
    ref = choose_template(task, config, tier)
    if not _changes_pod(task.overrides) and not validate_schema:
        # The same template, config and tier give the same checked pod for every such task: build and
        # check it once per template version, then only copy it and stamp the task's identity on it.
        key = (id(config), tier.name if tier is not None else None)
        base, template_file, namespace, checked_for = templates.derived(
            ref, key, lambda pod, name: _checked_base(pod, name, task, config, tier)
        )
        if checked_for is config:
            pod = jsonfast.clone(base)
            billed = tier.name if tier is not None else tier_of_template(template_file, config)
            _apply_identity(pod, task, config, billed, namespace)
            return pod
    pod, template_file = templates.load_named(ref)
    pod.setdefault("spec", {})
    base_container = _base_container(pod, task)
    namespace = choose_namespace(task, pod.get("metadata") or {}, config)

    _apply_config(pod, base_container, config, namespace)
    if tier is not None:
        _set_resources(base_container, tier.requests(), tier.limits())
    judge = policy.TaskPodJudge(pod, config, store_templates(templates)) if _changes_pod(task.overrides) else None
    _apply_overrides(pod, task, judge)
    billed = tier.name if tier is not None else tier_of_template(template_file, config)
    _apply_identity(pod, task, config, billed, namespace)

    _check(pod, task, namespace)
    if validate_schema:
        schema.validate_manifest(pod, where=f"pod for task {task.key}")
    return pod


def _checked_base(
    pod: dict[str, Any], template_file: str, task: Task, config: ExecutorConfig, tier: Tier | None
) -> tuple[dict[str, Any], str, str, ExecutorConfig]:
    """Steps 1-3 for a task that changes nothing itself, checked (with its identity) as :func:`build_pod` does."""
    pod.setdefault("spec", {})
    namespace = choose_namespace(task, pod.get("metadata") or {}, config)
    _apply_config(pod, _base_container(pod, task), config, namespace)
    if tier is not None:
        _set_resources(_base_container(pod, task), tier.requests(), tier.limits())
    stamped = jsonfast.clone(pod)
    billed = tier.name if tier is not None else tier_of_template(template_file, config)
    _apply_identity(stamped, task, config, billed, namespace)
    _check(stamped, task, namespace)  # identity changes nothing these checks read; checked with it anyway
    return pod, template_file, namespace, config


def _changes_pod(o: KubernetesOverrides) -> bool:
    """The task changes the operator's pod (choosing a template or tier does not)."""
    typed = (o.requests, o.limits, o.node_selector, o.tolerations, o.env, o.labels, o.annotations)
    return o.image is not None or o.pod_override is not None or any(typed)


def _base_container(pod: dict[str, Any], task: Task) -> dict[str, Any]:
    for container in pod["spec"].get("containers", []):
        if container.get("name") == BASE_CONTAINER:
            return container
    raise TaskSpecError(f"{task.key}: the pod template has no container named {BASE_CONTAINER!r}")


def choose_namespace(task: Task, template_metadata: Mapping[str, Any], config: ExecutorConfig) -> str:
    """The namespace of the task's pod: the executor's, or - in multi-namespace mode - an allowed one."""
    override_metadata = (task.overrides.pod_override or {}).get("metadata") or {}
    requested = override_metadata.get("namespace") or template_metadata.get("namespace") or config.namespace
    if requested == config.namespace:
        return requested
    where = "pod_override" if override_metadata.get("namespace") else "pod template"
    if not config.multi_namespace_mode:
        raise PodPolicyError(
            f"{task.key}: {where} asks for namespace {requested!r}; task pods run in {config.namespace!r} "
            "unless multi_namespace_mode is on"
        )
    allowed = config.namespaces()
    if not isinstance(requested, str) or not k8snames.is_dns1123_label(requested):
        raise PodPolicyError(f"{task.key}: {where} namespace {requested!r} is not a namespace name")
    if requested in k8snames.SYSTEM_NAMESPACES or (allowed is not None and requested not in allowed):
        listed = ", ".join(allowed) if allowed else "any but the system namespaces"
        raise PodPolicyError(
            f"{task.key}: {where} namespace {requested!r} is not allowed "
            f"(multi_namespace_mode_namespace_list: {listed})"
        )
    return requested


def _set_env(container: dict[str, Any], name: str, value: str) -> None:
    env = container.setdefault("env", [])
    for index, item in enumerate(env):
        if item.get("name") == name:
            env[index] = {"name": name, "value": value}
            return
    env.append({"name": name, "value": value})


def task_api_env(config: ExecutorConfig) -> dict[str, str]:
    """How a task pod's Task SDK retries the Execution API (Airflow's ``[workers]`` keys as env vars)."""
    return {
        "AIRFLOW__WORKERS__EXECUTION_API_RETRIES": str(config.execution_api_retries),
        "AIRFLOW__WORKERS__EXECUTION_API_RETRY_WAIT_MIN": repr(config.execution_api_retry_wait_min),
        "AIRFLOW__WORKERS__EXECUTION_API_RETRY_WAIT_MAX": repr(config.execution_api_retry_wait_max),
    }


def _apply_config(pod: dict[str, Any], base: dict[str, Any], config: ExecutorConfig, namespace: str) -> None:
    spec = pod["spec"]
    pod.setdefault("metadata", {})["namespace"] = namespace
    if config.execution_api_server_url:
        _set_env(base, EXECUTION_API_ENV, config.execution_api_server_url)
        present = {item.get("name") for item in base.get("env") or ()}
        for name, value in task_api_env(config).items():
            if name not in present:
                _set_env(base, name, value)
    if config.worker_container_image:
        base["image"] = config.worker_container_image
    base.setdefault("imagePullPolicy", config.image_pull_policy)
    if config.worker_service_account_name:
        spec.setdefault("serviceAccountName", config.worker_service_account_name)
    if config.worker_priority_class:
        spec.setdefault("priorityClassName", config.worker_priority_class)
    resources = base.setdefault("resources", {})
    for part, defaults in (("requests", config.default_requests()), ("limits", config.default_limits())):
        for name, amount in defaults.items():
            resources.setdefault(part, {}).setdefault(name, amount)
    selector = spec.setdefault("nodeSelector", {})
    for key, value in config.worker_node_selector:
        selector.setdefault(key, value)
    if not selector:
        del spec["nodeSelector"]
    _append_tolerations(spec, [t.to_k8s() for t in config.worker_tolerations])


def _set_resources(container: dict[str, Any], requests: Mapping[str, str], limits: Mapping[str, str]) -> None:
    resources = container.setdefault("resources", {})
    for part, amounts in (("requests", requests), ("limits", limits)):
        if amounts:
            resources.setdefault(part, {}).update(amounts)


def _append_tolerations(spec: dict[str, Any], extra: list[dict[str, Any]]) -> None:
    if not extra:
        return
    tolerations = spec.setdefault("tolerations", [])
    for item in extra:
        if item not in tolerations:
            tolerations.append(item)


def _apply_overrides(pod: dict[str, Any], task: Task, judge: policy.TaskPodJudge | None) -> None:
    o = task.overrides
    spec = pod["spec"]
    base = _base_container(pod, task)
    if o.image is not None:
        base["image"] = o.image
    _set_resources(base, dict(o.requests), dict(o.limits))
    if o.node_selector:
        spec.setdefault("nodeSelector", {}).update(dict(o.node_selector))
    _append_tolerations(spec, [t.to_k8s() for t in o.tolerations])
    for name, value in o.env:
        _set_env(base, name, value)
    metadata = pod.setdefault("metadata", {})
    if o.labels:
        metadata.setdefault("labels", {}).update(dict(o.labels))
    if o.annotations:
        metadata.setdefault("annotations", {}).update(dict(o.annotations))
    if judge is not None:
        judge.check(pod, where=str(task.key), step="kubernetes_config")
    if o.pod_override is not None:
        override = copy.deepcopy(dict(o.pod_override))
        override.pop("apiVersion", None)
        override.pop("kind", None)
        _reject_reserved_metadata(override.get("metadata") or {}, task)
        merged = merge_pod_override(pod, override)
        pod.clear()
        pod.update(merged)
        schema.validate_manifest(pod, where=f"pod for task {task.key} (with its pod_override)")
        if judge is not None:
            judge.check(pod, where=str(task.key), step="pod_override")


def _reject_reserved_metadata(metadata: Mapping[str, Any], task: Task) -> None:
    for field in ("name", "generateName"):
        if field in metadata:
            raise PodPolicyError(f"{task.key}: pod_override may not set metadata.{field} (the executor owns it)")
    for part, reserved in (("labels", identity.RESERVED_LABELS), ("annotations", identity.RESERVED_ANNOTATIONS)):
        clash = sorted(set(metadata.get(part) or {}) & reserved)
        if clash:
            raise PodPolicyError(f"{task.key}: pod_override may not set metadata.{part} {clash}")


def merge_pod_override(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Merge a ``pod_override`` into ``base`` with the provider's ``reconcile_pods`` semantics (module docstring).

    What the override sets *replaces* the template's - ``nodeSelector``, ``tolerations``,
    ``affinity``, the pod's and each container's ``securityContext`` and every other field - except
    where the provider merges: ``metadata.labels``/``annotations`` per key, ``containers`` and
    ``initContainers`` by name, ``volumes`` (by name here: the provider appends, and two volumes of
    one name are invalid), and in a container ``env`` (by name), ``volumeMounts`` (by mount path),
    ``ports`` (by container port), ``envFrom`` and ``volumeDevices`` (appended), and ``resources``
    (per key here: the provider replaces the whole block, dropping the template's requests).
    ``null`` deletes a key.  Neither input is modified.  Whether the result is allowed (a replaced
    security context must still be as strict) is the task pod policy's call, not the merge's.
    """
    out = dict(base)
    for key, value in override.items():
        if value is None:
            out.pop(key, None)
        elif key == "metadata" and isinstance(value, Mapping):
            out[key] = _merge_fields(out.get(key) or {}, value, _METADATA_MERGES)
        elif key == "spec" and isinstance(value, Mapping):
            out[key] = _merge_fields(out.get(key) or {}, value, _SPEC_MERGES)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _merge_fields(base: Mapping[str, Any], override: Mapping[str, Any], merges: Mapping[str, Any]) -> dict[str, Any]:
    """Each field of ``override`` replaces ``base``'s, unless ``merges`` names how to combine it."""
    out = dict(base)
    for key, value in override.items():
        if value is None:
            out.pop(key, None)
        elif key in merges and key in out:
            out[key] = merges[key](out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _per_key(base: Any, override: Any) -> Any:
    """Dicts merged key by key (``null`` deletes); anything else replaced."""
    if not isinstance(base, Mapping) or not isinstance(override, Mapping):
        return copy.deepcopy(override)
    out = dict(base)
    for key, value in override.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _resources(base: Any, override: Any) -> Any:
    """``requests`` and ``limits`` merged per resource."""
    if not isinstance(base, Mapping) or not isinstance(override, Mapping):
        return copy.deepcopy(override)
    out = dict(base)
    for part, amounts in override.items():
        out[part] = _per_key(out[part], amounts) if part in out and amounts is not None else copy.deepcopy(amounts)
        if out[part] is None:
            del out[part]
    return out


def _by(field: str, merge_item: Any = None) -> Any:
    """Lists of objects keyed by ``field``: an item of the override merges into (or replaces) the same-keyed one."""

    def merge(base: Any, override: Any) -> Any:
        if not isinstance(base, list) or not isinstance(override, list):
            return copy.deepcopy(override)
        out = list(base)
        for item in override:
            for index, existing in enumerate(out):
                keyed = isinstance(item, Mapping) and isinstance(existing, Mapping) and field in item
                if keyed and existing.get(field) == item[field]:
                    out[index] = merge_item(existing, item) if merge_item else copy.deepcopy(item)
                    break
            else:
                out.append(copy.deepcopy(item))
        return out

    return merge


def _appended(base: Any, override: Any) -> Any:
    if not isinstance(base, list) or not isinstance(override, list):
        return copy.deepcopy(override)
    return [*base, *(copy.deepcopy(item) for item in override if item not in base)]


def _container(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    return _merge_fields(base, override, _CONTAINER_MERGES)


_METADATA_MERGES = {"labels": _per_key, "annotations": _per_key}
_CONTAINER_MERGES = {
    "env": _by("name"),
    "volumeMounts": _by("mountPath"),
    "ports": _by("containerPort"),
    "envFrom": _appended,
    "volumeDevices": _appended,
    "resources": _resources,
}
_SPEC_MERGES = {
    "containers": _by("name", _container),
    "initContainers": _by("name", _container),
    "volumes": _by("name"),
}


def _apply_identity(pod: dict[str, Any], task: Task, config: ExecutorConfig, tier: str, namespace: str) -> None:
    rest = {k: v for k, v in (pod.get("metadata") or {}).items() if k not in ("name", "generateName", "namespace")}
    metadata = pod["metadata"] = {"name": task.pod_name, "namespace": namespace, **rest}
    labels = metadata.setdefault("labels", {})
    labels.update(identity.task_labels(task.key, config.scheduler_instance_id, config.airflow_version))
    labels[identity.LABEL_TIER] = tier
    metadata.setdefault("annotations", {}).update(identity.task_annotations(task.key, task.ti_id, task.launch))
    pod["apiVersion"], pod["kind"] = "v1", "Pod"
    pod["spec"]["restartPolicy"] = "Never"
    base = _base_container(pod, task)
    base["args"] = list(task.command)
    _set_env(base, "AIRFLOW_IS_K8S_EXECUTOR_POD", "True")


def tier_of_template(file_name: str, config: ExecutorConfig) -> str:
    """The tier a pod without an explicit tier is billed as: the one using its template."""
    for tier in config.tiers:
        if tier.pod_template == file_name:
            return tier.name
    return config.default_tier


def _check(pod: dict[str, Any], task: Task, namespace: str) -> None:
    spec = pod["spec"]
    if pod["metadata"].get("namespace") != namespace:  # pragma: no cover - identity sets it last
        raise PodPolicyError(f"{task.key}: pod namespace must be {namespace!r}")
    for container in [*spec.get("initContainers", []), *spec.get("containers", [])]:
        name = container.get("name")
        secret = sorted({e.get("name") for e in container.get("env") or []} & FORBIDDEN_ENV)
        if secret:
            raise PodPolicyError(
                f"{task.key}: container {name!r} would get {secret[0]}: task pods get no database credentials "
                "or control-plane secrets (Airflow 3 workers talk only to the Execution API); remove it from "
                "the template or the override"
            )
        if not container.get("image"):
            raise TaskSpecError(
                f"{task.key}: container {name!r} has no image; set worker_container_image in airflow.cfg "
                "or kubernetes_config.image on the task"
            )
    problems = schema.resource_problems(pod)
    if problems:
        raise TaskSpecError(f"{task.key}: {problems[0]} (after merging template, config, tier and task overrides)")
    security.check_restricted(pod, where=f"pod for task {task.key}")
    security.check_hardened(pod, where=f"pod for task {task.key}")
