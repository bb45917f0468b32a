"""Tasks as the executor sees them: a key, a command and typed Kubernetes overrides.

Inside Airflow a task is built from an ``ExecuteTask`` workload (``executor/airflow/``); for the
standalone runner it arrives as JSON (the spool intake, the CLI) and is validated here, before
any pod is built or any API call is made::

    {"dag_id": "custom_pod_dag", "task_id": "heavy_computation", "run_id": "manual__2024-01-01",
     "map_index": -1, "try_number": 1,
     "command": ["python", "-m", "airflow.sdk.execution_time.execute_workload", ...],
     "start_deadline": "2026-12-01T10:00:00+00:00",          # optional: must run by then
     "ti_id": "0190...",                                      # optional: Airflow's task instance id
     "kubernetes_config": {                                   # optional, see KubernetesOverrides
        "pod_template_file": "/opt/airflow/pod_templates/heavy_computation.yaml",
        "resources": {"requests": {"cpu": "2", "memory": "4Gi"}, "limits": {"cpu": "4", "memory": "8Gi"}}}}
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from airflow_k8s.executor.contract import config_keys, jsonfast, k8snames, quantity
from airflow_k8s.executor.contract.config import Toleration
from airflow_k8s.executor.contract.errors import QuantityError, TaskSpecError
from airflow_k8s.executor.tasks import identity
from airflow_k8s.executor.tasks.key import ID_MAX, TaskKey

_TASK_FIELDS = (
    "dag_id", "task_id", "run_id", "map_index", "try_number", "command", "kubernetes_config", "start_deadline", "ti_id",
    "launch",
)  # fmt: skip
_OVERRIDE_FIELDS = (
    "pod_template",
    "pod_template_file",
    "tier",
    "image",
    "resources",
    "node_selector",
    "tolerations",
    "env",
    "labels",
    "annotations",
    "pod_override",
)
AUTO_TIER = "auto"
MAX_OVERRIDE_DEPTH = 24  # a Pod's deepest fields (affinity match expressions) are about 10 levels down


Pairs = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class KubernetesOverrides:
    """Per-task ``kubernetes_config``, validated.  Merge semantics live in :mod:`airflow_k8s.executor.pods.podfactory`.

    ``pod_override`` is a partial Pod manifest merged last (Airflow's pod_override); treat it as
    read-only, the factory deep-copies it.
    """

    pod_template: str | None = None
    tier: str | None = None
    image: str | None = None
    requests: Pairs = ()
    limits: Pairs = ()
    node_selector: Pairs = ()
    tolerations: tuple[Toleration, ...] = ()
    env: Pairs = ()
    labels: Pairs = ()
    annotations: Pairs = ()
    pod_override: Mapping[str, Any] | None = field(default=None, compare=True)


@dataclass(frozen=True)
class Task:
    """One task try: its key, the base container's command, its overrides.

    ``start_deadline`` (aware UTC) is when the task's credentials expire (Airflow 3's workload
    token): a pod not running shortly before it is deleted and the task failed, rather than
    started late.  ``ti_id`` is Airflow's task instance id, kept in the pod's annotations so an
    adopting scheduler can tell a pod of a superseded task instance from the current one.
    ``launch`` identifies this queueing of the try (a deferred task or a rescheduled sensor is
    queued again with the same key): each launch gets a pod of its own (:mod:`.identity`).
    """

    key: TaskKey
    command: tuple[str, ...]
    overrides: KubernetesOverrides = KubernetesOverrides()
    start_deadline: datetime | None = None
    ti_id: str | None = None
    launch: str | None = None
    # Read the pod's last log lines even when it succeeds: set on a try Airflow handed back, whose
    # log says whether the task asked for it (executor.airflow.reschedules).
    log_tail_on_success: bool = False

    @property
    def pod_name(self) -> str:
        """The name of this launch's pod."""
        return identity.pod_name(self.key, self.launch)

    @classmethod
    def from_dict(cls, data: object, *, source: str = "task") -> Task:
        """Validate a task description; errors are TaskSpecError naming ``source`` and the key."""
        if not isinstance(data, dict):
            raise TaskSpecError(f"{source}: a task must be a JSON object, got {type(data).__name__}")
        _reject_unknown(data, _TASK_FIELDS, source)
        try:
            key = TaskKey(
                dag_id=data.get("dag_id"),  # type: ignore[arg-type]
                task_id=data.get("task_id"),  # type: ignore[arg-type]
                run_id=data.get("run_id"),  # type: ignore[arg-type]
                map_index=data.get("map_index", -1),
                try_number=data.get("try_number", 1),
            )
        except TaskSpecError as exc:
            raise TaskSpecError(f"{source}: {exc}") from exc
        command = data.get("command")
        if not isinstance(command, list) or not command or not all(isinstance(a, str) for a in command):
            raise TaskSpecError(
                f"{source}: command must be a non-empty list of strings, got {command!r} (Airflow 3 tasks run "
                "python -m airflow.sdk.execution_time.execute_workload; submit those through Airflow)"
            )
        overrides = parse_overrides(data.get("kubernetes_config") or {}, source=f"{source}: kubernetes_config")
        deadline = _deadline(data.get("start_deadline"), source)
        ti_id, launch = data.get("ti_id"), data.get("launch")
        for name, value in (("ti_id", ti_id), ("launch", launch)):
            valid = isinstance(value, str) and 0 < len(value) <= ID_MAX and value.isascii() and value.isprintable()
            if value is not None and not valid:
                raise TaskSpecError(f"{source}: {name} must be a non-empty printable ASCII string, got {value!r}")
        return cls(
            key=key, command=tuple(command), overrides=overrides, start_deadline=deadline, ti_id=ti_id, launch=launch
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form accepted by :meth:`from_dict` (used by the intake spool)."""
        return {
            "dag_id": self.key.dag_id,
            "task_id": self.key.task_id,
            "run_id": self.key.run_id,
            "map_index": self.key.map_index,
            "try_number": self.key.try_number,
            "command": list(self.command),
            "kubernetes_config": overrides_to_dict(self.overrides),
            **({"start_deadline": self.start_deadline.isoformat()} if self.start_deadline else {}),
            **({"ti_id": self.ti_id} if self.ti_id else {}),
            **({"launch": self.launch} if self.launch else {}),
        }


def _deadline(value: object, source: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise TaskSpecError(f"{source}: start_deadline must be an ISO 8601 time with a UTC offset, got {value!r}")
    return parsed.astimezone(UTC)


def _reject_unknown(data: Mapping[str, Any], allowed: tuple[str, ...], source: str) -> None:
    for name in data:
        if name not in allowed:
            close = difflib.get_close_matches(str(name), allowed, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else f"; allowed: {', '.join(allowed)}"
            raise TaskSpecError(f"{source}: unknown key {name!r}{hint}")


def _pairs(value: object, what: str, check_key: Any, check_value: Any) -> Pairs:
    if not isinstance(value, dict):
        raise TaskSpecError(f"{what} must be a JSON object, got {value!r}")
    for k, v in value.items():
        problem = check_key(k)
        if problem:
            raise TaskSpecError(f"{what}: {problem}")
        problem = check_value(v)
        if problem:
            raise TaskSpecError(f"{what}[{k!r}]: {problem}")
    return tuple(sorted(value.items()))


def _annotation_value(value: object) -> str | None:
    return None if isinstance(value, str) else f"annotation value {value!r} must be a string"


def _env_name(name: object) -> str | None:
    if isinstance(name, str) and k8snames.is_env_name(name):
        return None
    return f"{name!r} is not a valid environment variable name"


def _resources(value: object, source: str) -> tuple[Pairs, Pairs]:
    if not isinstance(value, dict):
        raise TaskSpecError(f"{source}.resources must be an object with requests/limits")
    _reject_unknown(value, ("requests", "limits"), f"{source}.resources")
    out: list[Pairs] = []
    for part in ("requests", "limits"):
        amounts = value.get(part) or {}
        if not isinstance(amounts, dict):
            raise TaskSpecError(f"{source}.resources.{part} must be an object, got {amounts!r}")
        for name, amount in amounts.items():
            if not isinstance(name, str) or not k8snames.is_label_key(name):
                raise TaskSpecError(f"{source}.resources.{part}: {name!r} is not a resource name")
            try:
                quantity.for_resource(name, amount)
            except QuantityError as exc:
                raise TaskSpecError(f"{source}.resources.{part}.{name}: {exc}") from exc
        out.append(tuple(sorted((k, str(v)) for k, v in amounts.items())))
    requests, limits = out
    limit_map = dict(limits)
    for name, amount in requests:
        if name in limit_map and quantity.parse(amount) > quantity.parse(limit_map[name]):
            raise TaskSpecError(
                f"{source}.resources: requests.{name} = {amount!r} is greater than limits.{name} = {limit_map[name]!r}"
            )
    return requests, limits


def parse_overrides(data: object, *, source: str = "kubernetes_config") -> KubernetesOverrides:
    """Validate a task's ``kubernetes_config`` dict into :class:`KubernetesOverrides`."""
    if not isinstance(data, dict):
        raise TaskSpecError(f"{source} must be a JSON object, got {data!r}")
    _reject_unknown(data, _OVERRIDE_FIELDS, source)
    if "pod_template" in data and "pod_template_file" in data:
        raise TaskSpecError(f"{source}: give pod_template or pod_template_file, not both")
    values: dict[str, Any] = {}
    template = data.get("pod_template", data.get("pod_template_file"))
    if template is not None:
        if not isinstance(template, str) or not template:
            raise TaskSpecError(f"{source}.pod_template must be a template name, got {template!r}")
        values["pod_template"] = template
    if "tier" in data:
        tier = data["tier"]
        if not isinstance(tier, str) or not (tier == AUTO_TIER or k8snames.is_dns1123_label(tier)):
            raise TaskSpecError(f"{source}.tier must be a tier name or 'auto', got {tier!r}")
        values["tier"] = tier
    if "image" in data:
        try:
            if not isinstance(data["image"], str):
                raise ValueError("expected an image reference (a string)")
            values["image"] = config_keys.image(data["image"])
        except ValueError as exc:
            raise TaskSpecError(f"{source}.image = {data['image']!r}: {exc}") from exc
    if "resources" in data:
        values["requests"], values["limits"] = _resources(data["resources"], source)
    if "node_selector" in data:
        values["node_selector"] = _pairs(
            data["node_selector"], f"{source}.node_selector", k8snames.label_key_problem, k8snames.label_value_problem
        )
    if "tolerations" in data:
        items = data["tolerations"]
        if not isinstance(items, list):
            raise TaskSpecError(f"{source}.tolerations must be a list, got {items!r}")
        try:
            values["tolerations"] = tuple(config_keys.toleration(item) for item in items)
        except ValueError as exc:
            raise TaskSpecError(f"{source}.tolerations: {exc}") from exc
    if "env" in data:
        env = data["env"]
        if isinstance(env, list):  # [{"name": ..., "value": ...}] as in pod specs
            if not all(isinstance(e, dict) and set(e) == {"name", "value"} for e in env):
                raise TaskSpecError(
                    f"{source}.env: list items must be {{'name', 'value'}} (secrets belong in templates)"
                )
            env = {e["name"]: e["value"] for e in env}
        values["env"] = _pairs(env, f"{source}.env", _env_name, _annotation_value)
    if "labels" in data:
        labels = _pairs(data["labels"], f"{source}.labels", k8snames.label_key_problem, k8snames.label_value_problem)
        reserved = sorted(k for k, _ in labels if k in identity.RESERVED_LABELS)
        if reserved:
            raise TaskSpecError(f"{source}.labels: {reserved} are set by the executor and cannot be overridden")
        values["labels"] = labels
    if "annotations" in data:
        annotations = _pairs(
            data["annotations"], f"{source}.annotations", k8snames.label_key_problem, _annotation_value
        )
        reserved = sorted(k for k, _ in annotations if k in identity.RESERVED_ANNOTATIONS)
        if reserved:
            raise TaskSpecError(f"{source}.annotations: {reserved} are set by the executor and cannot be overridden")
        values["annotations"] = annotations
    if data.get("pod_override") is not None:
        override = data["pod_override"]
        if not isinstance(override, dict):
            raise TaskSpecError(f"{source}.pod_override must be a partial Pod manifest (an object)")
        _reject_unknown(override, ("apiVersion", "kind", "metadata", "spec"), f"{source}.pod_override")
        _check_pod_override(override, f"{source}.pod_override")
        values["pod_override"] = json.loads(json.dumps(override))  # a private, JSON-clean copy
    return KubernetesOverrides(**values)


def _check_pod_override(override: Mapping[str, Any], source: str) -> None:
    """The shape the merge relies on (the schema checks the rest once merged), and a depth bound."""
    for part in ("metadata", "spec"):
        value = override.get(part)
        if value is not None and not isinstance(value, dict):
            raise TaskSpecError(f"{source}.{part} must be an object, got {type(value).__name__}")
    metadata = override.get("metadata") or {}
    for part in ("labels", "annotations"):
        value = metadata.get(part)
        if value is not None and not isinstance(value, dict):
            raise TaskSpecError(f"{source}.metadata.{part} must be an object, got {type(value).__name__}")
    if jsonfast.depth(override) > MAX_OVERRIDE_DEPTH:
        raise TaskSpecError(f"{source} is nested more than {MAX_OVERRIDE_DEPTH} levels deep (no pod field is)")


def overrides_to_dict(overrides: KubernetesOverrides) -> dict[str, Any]:
    """Inverse of :func:`parse_overrides` (only the fields that are set)."""
    out: dict[str, Any] = {}
    if overrides.pod_template is not None:
        out["pod_template"] = overrides.pod_template
    if overrides.tier is not None:
        out["tier"] = overrides.tier
    if overrides.image is not None:
        out["image"] = overrides.image
    if overrides.requests or overrides.limits:
        out["resources"] = {"requests": dict(overrides.requests), "limits": dict(overrides.limits)}
    for name in ("node_selector", "env", "labels", "annotations"):
        value = getattr(overrides, name)
        if value:
            out[name] = dict(value)
    if overrides.tolerations:
        out["tolerations"] = [t.to_k8s() for t in overrides.tolerations]
    if overrides.pod_override is not None:
        out["pod_override"] = json.loads(json.dumps(overrides.pod_override))
    return out
