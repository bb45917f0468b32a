"""Publishing the pod templates: rewire their references to the platform's objects, re-validate.

The files in ``pod_templates/`` refer to the platform's objects by placeholder names
(:data:`PLACEHOLDERS`): ConfigMap ``airflow-config``, PVC ``airflow-dags`` and service account
``airflow-worker``.  :func:`rewire` replaces them with
the names of the objects the platform really created.  It works on the parsed YAML, field by
field (volumes, env ``valueFrom``, ``envFrom``, ``serviceAccountName``) - never by string
replacement, which would also hit labels, comments or a task's env value that happens to contain
the same text.

Templates may reference only platform objects: any other ConfigMap or PVC name is an error at
deploy time rather than a ``CreateContainerConfigError`` at task time.  And no Secret at all:
Airflow 3 task pods need no database URL, Fernet key or JWT secret (they call the Execution API
with the token in their workload), and the only Secret the platform creates holds exactly those
control-plane credentials - a template reaching for it is refused, whatever name it uses.
The service account is always the worker's: a template naming another one (say, the
scheduler's, which may create pods) is overridden.  So are the user and group the pod runs as
(``runAsUser``/``runAsGroup``/``fsGroup`` from the stack keys ``runAsUser``/``runAsGroup``): one
setting for every pod of the platform.

Task pods never depend on the image's layout: where a template's ``base`` container mounts the
platform's airflow.cfg, ``AIRFLOW_CONFIG`` is set to that path and ``AIRFLOW_HOME`` to its
directory, unless the template sets them (the shipped templates do, explicitly); a template whose
``AIRFLOW_CONFIG`` names another path than its airflow.cfg mount is refused.

:func:`render_template` dumps the result and parses it back with the executor's own
:func:`airflow_k8s.executor.pods.templates.parse_template` (schema, PSS restricted), then applies the platform's
hardening policy for task pods (no API token, read-only root, requests and limits), so the
ConfigMap only ever holds templates the scheduler will accept.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow_k8s.executor.contract.errors import PodPolicyError, TemplateError
from airflow_k8s.executor.pods import security
from airflow_k8s.executor.pods.templates import parse_template
from airflow_k8s.infra.render import yamlio

PLACEHOLDERS = {
    "config_map": "airflow-config",
    "pvc": "airflow-dags",
    "service_account": "airflow-worker",
}
_CONTAINER_LISTS = ("initContainers", "containers")
NO_SECRETS = (
    "task pods read no Secret (Airflow 3 workers need no credentials; the platform Secret is the control plane's)"
)


@dataclass(frozen=True)
class TemplateWiring:
    """The real names of the objects templates refer to, and the user pods run as."""

    config_map: str
    pvc: str
    service_account: str
    run_as_user: int = 50000
    run_as_group: int = 0


def _pin_layout(spec: dict[str, Any], config_map: str, problems: list[str]) -> None:
    """AIRFLOW_CONFIG / AIRFLOW_HOME of the base container from its airflow.cfg mount (module doc)."""
    volumes = {v.get("name"): v for v in spec.get("volumes") or []}
    for index, container in enumerate(spec.get("containers") or []):
        if container.get("name") != "base":
            continue
        mounts = [
            m
            for m in container.get("volumeMounts") or []
            if ((volumes.get(m.get("name")) or {}).get("configMap") or {}).get("name") == config_map
            and str(m.get("mountPath", "")).endswith("/airflow.cfg")
        ]
        if not mounts:
            continue
        path = mounts[0]["mountPath"]
        env = container.setdefault("env", [])
        values = {e.get("name"): e.get("value") for e in env}
        if values.get("AIRFLOW_CONFIG", path) != path:
            problems.append(
                f"spec.containers[{index}] (base): AIRFLOW_CONFIG={values['AIRFLOW_CONFIG']!r} but airflow.cfg "
                f"is mounted at {path!r}"
            )
        for name, value in (("AIRFLOW_HOME", path.rsplit("/", 1)[0]), ("AIRFLOW_CONFIG", path)):
            if name not in values:
                env.append({"name": name, "value": value})


class RewireError(TemplateError):
    """A template references an object the platform does not create."""


def rewire(template: Mapping[str, Any], wiring: TemplateWiring, *, source: str) -> dict[str, Any]:
    """A copy of ``template`` whose references name the platform's objects (see module doc)."""
    pod = copy.deepcopy(dict(template))
    spec = pod.setdefault("spec", {})
    problems: list[str] = []
    cm = (PLACEHOLDERS["config_map"], wiring.config_map, "ConfigMap")
    pvc = (PLACEHOLDERS["pvc"], wiring.pvc, "PersistentVolumeClaim")

    def swap(holder: dict[str, Any], field: str, names: tuple[str, str, str], where: str) -> None:
        placeholder, real, what = names
        current = holder.get(field)
        if current in (placeholder, real):
            holder[field] = real
        else:
            problems.append(
                f"{where}: {what} {current!r} is not created by the platform (templates say {placeholder!r})"
            )

    for index, volume in enumerate(spec.get("volumes") or []):
        where = f"spec.volumes[{index}] ({volume.get('name')})"
        if isinstance(volume.get("configMap"), dict):
            swap(volume["configMap"], "name", cm, where)
        if isinstance(volume.get("secret"), dict):
            problems.append(f"{where}: {NO_SECRETS}")
        if isinstance(volume.get("persistentVolumeClaim"), dict):
            swap(volume["persistentVolumeClaim"], "claimName", pvc, where)
        for s_index, source_ in enumerate((volume.get("projected") or {}).get("sources") or []):
            s_where = f"{where}.projected.sources[{s_index}]"
            if isinstance(source_.get("configMap"), dict):
                swap(source_["configMap"], "name", cm, s_where)
            if isinstance(source_.get("secret"), dict):
                problems.append(f"{s_where}: {NO_SECRETS}")

    for list_name in _CONTAINER_LISTS:
        for index, container in enumerate(spec.get(list_name) or []):
            where = f"spec.{list_name}[{index}] ({container.get('name')})"
            for e_index, env in enumerate(container.get("env") or []):
                value_from = env.get("valueFrom") or {}
                e_where = f"{where}.env[{e_index}] ({env.get('name')})"
                if isinstance(value_from.get("secretKeyRef"), dict):
                    problems.append(f"{e_where}: {NO_SECRETS}")
                if isinstance(value_from.get("configMapKeyRef"), dict):
                    swap(value_from["configMapKeyRef"], "name", cm, e_where)
            for f_index, env_from in enumerate(container.get("envFrom") or []):
                f_where = f"{where}.envFrom[{f_index}]"
                if isinstance(env_from.get("secretRef"), dict):
                    problems.append(f"{f_where}: {NO_SECRETS}")
                if isinstance(env_from.get("configMapRef"), dict):
                    swap(env_from["configMapRef"], "name", cm, f_where)

    _pin_layout(spec, wiring.config_map, problems)
    context = spec.setdefault("securityContext", {})
    context.update(runAsUser=wiring.run_as_user, runAsGroup=wiring.run_as_group, fsGroup=wiring.run_as_group)
    spec["serviceAccountName"] = wiring.service_account
    spec.pop("serviceAccount", None)  # deprecated alias; it would fight serviceAccountName
    if problems:
        details = "\n".join(f"  - {p}" for p in problems)
        raise RewireError(f"{source}: references outside the platform:\n{details}")
    return pod


HEADER = (
    "# Published by infra from pod_templates/{name}, with the platform's object names wired in.\n"
    "# Edit the source file, not this ConfigMap.\n"
)


def render_template(name: str, template: Mapping[str, Any], wiring: TemplateWiring) -> str:
    """The ConfigMap value for template ``name``: rewired, dumped, re-validated.

    Raises :class:`TemplateError` (rewiring, schema, PSS) or :class:`PodPolicyError` (hardening).
    """
    source = f"pod_templates/{name} (as published)"
    pod = rewire(template, wiring, source=source)
    text = HEADER.format(name=name) + yamlio.dump(pod)
    parsed = parse_template(text, source=source)
    violations = security.hardening_violations(parsed, allow_token=False)
    if violations:
        lines = "\n".join(f"  - {v}" for v in violations)
        raise PodPolicyError(f"{source}: violates the platform hardening policy for task pods:\n{lines}")
    return text
