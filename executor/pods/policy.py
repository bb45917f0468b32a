"""The task pod policy: what a task adds or changes must be on the operator's allow-list.

The pod factory builds the *operator's pod* first (template + airflow.cfg defaults + tier, all
trusted) and keeps a copy; then it applies the task's typed ``kubernetes_config`` overrides and
calls :meth:`TaskPodJudge.check`, then deep-merges ``pod_override`` and calls it again.  Each
check compares the current pod with the operator's pod, so it judges exactly what the task
changed, whichever way it got there (a typed override, a merge, a ``null`` that deletes), and it
runs after every merge step, so each error names the step that caused it.  Anything not covered
by a rule below is refused: the policy is an allow-list, not a list of known-bad settings.

Rules (defaults and keys in :mod:`airflow_k8s.executor.contract.task_policy`):

* metadata: a task may add labels and annotations, never change or remove the template's, never
  set the executor's identity keys or keys under ``kubernetes.io`` / ``k8s.io``;
  ``metadata.namespace`` only where ``config.namespaces()`` allows; nothing else.
* spec fields: only those in ``task_allowed_pod_fields``; never ``nodeName``, host namespaces,
  ``schedulerName``... (:data:`~airflow_k8s.executor.contract.task_policy.NEVER_POD_FIELDS`).
* placement: the template's nodeSelector keys stay; added pairs and tolerations must be the
  platform's (templates, ``worker_*``, ``task_allowed_node_selectors`` / ``_tolerations``).
* identity: ``serviceAccountName`` and ``priorityClassName`` from the allowed lists;
  ``automountServiceAccountToken`` and ``enableServiceLinks`` only ``false``.
* security contexts only get stricter (:mod:`airflow_k8s.executor.pods.policy_rules`).
* containers and volumes: :mod:`airflow_k8s.executor.pods.policy_rules` (images, secrets,
  ConfigMaps, claims, volume kinds, mounts).

PSS "restricted" and the platform hardening are checked on the final pod as well (pod factory).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from airflow_k8s.executor.contract import jsonfast
from airflow_k8s.executor.contract.config import ExecutorConfig
from airflow_k8s.executor.contract.errors import PodPolicyError
from airflow_k8s.executor.contract.task_policy import (
    ALLOWED_RESERVED_ANNOTATIONS,
    NEVER_POD_FIELDS,
    OPTIONAL_POD_FIELDS,
    RESERVED_ANNOTATION_DOMAINS,
    RESERVED_LABEL_DOMAINS,
    TERMINATION_GRACE_MAX,
    reserved_key,
)
from airflow_k8s.executor.pods import policy_rules as rules
from airflow_k8s.executor.pods.allowances import Allowances, TemplateSource
from airflow_k8s.executor.pods.policy_rules import MISSING, Ctx, show
from airflow_k8s.executor.tasks import identity

ANNOTATIONS_MAX_BYTES = 256 * 1024  # the API server's limit on a pod's annotations, keys and values together
_TOP_LEVEL = frozenset({"apiVersion", "kind", "metadata", "spec"})


class TaskPodJudge:
    """Judges a task's changes against the operator's pod it was given (copied at creation)."""

    def __init__(self, operator_pod: Mapping[str, Any], config: ExecutorConfig, templates: TemplateSource) -> None:
        self.before: dict[str, Any] = jsonfast.clone(operator_pod)
        self.allowed = Allowances(config, templates)

    def check(self, pod: Mapping[str, Any], *, where: str, step: str) -> None:
        """Raise :class:`PodPolicyError` listing every violation of what ``step`` changed."""
        found = violations(self.before, pod, self.allowed)
        if found:
            lines = "\n".join(f"  - {line}" for line in found)
            raise PodPolicyError(f"{where}: {step} violates the task pod policy:\n{lines}")


def violations(before: Mapping[str, Any], after: Mapping[str, Any], allowed: Allowances) -> list[str]:
    """One line per change from ``before`` (the operator's pod) to ``after`` that the policy refuses."""
    extra = sorted(set(after) - _TOP_LEVEL, key=str)
    out = [f"{key}: a task may not set it" for key in extra if after[key] != before.get(key, MISSING)]
    out += _metadata(rules.mapping(before.get("metadata")), rules.mapping(after.get("metadata")), allowed)
    old_spec, new_spec = rules.mapping(before.get("spec")), rules.mapping(after.get("spec"))
    ctx = Ctx(allowed, new_spec)
    for field in sorted(set(old_spec) | set(new_spec), key=str):
        old, new = old_spec.get(field, MISSING), new_spec.get(field, MISSING)
        if old == new:
            continue
        path = f"spec.{field}"
        if field in NEVER_POD_FIELDS:
            out.append(f"{path}: a task may never set it: {NEVER_POD_FIELDS[field]}")
        elif field not in allowed.policy.pod_fields:
            why = f" ({OPTIONAL_POD_FIELDS[field]})" if field in OPTIONAL_POD_FIELDS else ""
            out.append(f"{path}: not a field a task may set{why} (task_allowed_pod_fields)")
        else:
            rule = _SPEC_RULES.get(field)
            if rule is not None:
                out.extend(rule(path, old, new, ctx))
    return out


def _metadata(before: Mapping[str, Any], after: Mapping[str, Any], allowed: Allowances) -> list[str]:
    out = []
    for field in sorted(set(before) | set(after), key=str):
        old, new = before.get(field, MISSING), after.get(field, MISSING)
        if old == new:
            continue
        path = f"metadata.{field}"
        if field == "labels":
            out += _keyed(path, old, new, identity.RESERVED_LABELS, RESERVED_LABEL_DOMAINS, frozenset())
        elif field == "annotations":
            out += _keyed(
                path, old, new, identity.RESERVED_ANNOTATIONS, RESERVED_ANNOTATION_DOMAINS, ALLOWED_RESERVED_ANNOTATIONS
            )
            size = sum(len(str(k).encode()) + len(str(v).encode()) for k, v in rules.mapping(new).items())
            if size > ANNOTATIONS_MAX_BYTES:
                out.append(f"{path}: {size} bytes; the API server takes at most {ANNOTATIONS_MAX_BYTES} in all")
        elif field == "namespace":
            if not allowed.namespace_allowed(new):
                out.append(f"{path}: {show(new)} is not a namespace this executor runs task pods in")
        else:
            out.append(f"{path}: a task may set only labels and annotations (the executor owns the rest)")
    return out


def _keyed(
    path: str, old: object, new: object, executor_keys: frozenset[str], domains: tuple[str, ...], exempt: frozenset[str]
) -> list[str]:
    before, after = rules.mapping(old), rules.mapping(new)
    out = [
        f"{path}.{key}: the template's value {show(value)} cannot be changed or removed by a task"
        for key, value in before.items()
        if after.get(key, MISSING) != value
    ]
    for key in sorted(set(after) - set(before), key=str):
        if key in executor_keys:
            out.append(f"{path}.{key}: set by the executor; a task cannot set it")
        elif isinstance(key, str) and reserved_key(key, domains) and key not in exempt:
            out.append(f"{path}.{key}: keys under {', '.join(domains)} are reserved for Kubernetes and the platform")
    return out


def _node_selector(path: str, old: object, new: object, ctx: Ctx) -> list[str]:
    before, after = rules.mapping(old), rules.mapping(new)
    out = [
        f"{path}: the template's {key}={show(value)} cannot be removed (it keeps task pods on the platform's pools)"
        for key, value in before.items()
        if key not in after
    ]
    for key, value in after.items():
        if before.get(key, MISSING) != value and (key, rules.named(value)) not in ctx.allowed.node_selectors:
            out.append(
                f"{path}: {key}={show(value)} does not select one of the platform's pools (task_allowed_node_selectors)"
            )
    return out


def _tolerations(path: str, old: object, new: object, ctx: Ctx) -> list[str]:
    before = rules.listed(old)
    out: list[str] = []
    for index, item in rules.objects(path, new, out):
        if item in before:
            continue
        if not any(rules.toleration_within(item, allowed) for allowed in ctx.allowed.tolerations):
            out.append(
                f"{path}[{index}]: {show(item)} tolerates taints of nodes outside the platform's pools "
                "(task_allowed_tolerations)"
            )
    return out


def _one_of(names: Callable[[Ctx], frozenset[str]], key: str, what: str) -> rules.Rule:
    def rule(path: str, old: object, new: object, ctx: Ctx) -> list[str]:
        allowed = names(ctx)
        if rules.named(new) in allowed:
            return []
        listed = ", ".join(sorted(allowed)) or "none"
        return [f"{path}: {show(new)} is not {what} a task may use (allowed: {listed}; {key})"]

    return rule


def _only(value: object, why: str) -> rules.Rule:
    def rule(path: str, old: object, new: object, ctx: Ctx) -> list[str]:
        return [] if new == value else [f"{path}: a task may only set it to {show(value)} ({why})"]

    return rule


def _grace(path: str, old: object, new: object, ctx: Ctx) -> list[str]:
    limit = max(TERMINATION_GRACE_MAX, old if isinstance(old, int) else 0)
    if new is MISSING or (isinstance(new, int) and not isinstance(new, bool) and new <= limit):
        return []
    return [f"{path}: at most {limit} s (a deleted pod keeps running, and holding quota, that long)"]


def _pull_secrets(path: str, old: object, new: object, ctx: Ctx) -> list[str]:
    before = rules.listed(old)
    out: list[str] = []
    for index, item in rules.objects(path, new, out):
        if item not in before:
            out += rules.secret_ref(f"{path}[{index}]", item.get("name"), ctx)
    return out


_SPEC_RULES: dict[str, rules.Rule] = {
    "containers": rules.containers_rule(init=False),
    "initContainers": rules.containers_rule(init=True),
    "volumes": rules.volumes,
    "nodeSelector": _node_selector,
    "tolerations": _tolerations,
    "serviceAccountName": _one_of(
        lambda c: c.allowed.service_accounts, "task_allowed_service_accounts", "a service account"
    ),
    "priorityClassName": _one_of(
        lambda c: c.allowed.priority_classes, "task_allowed_priority_classes", "a PriorityClass"
    ),
    "automountServiceAccountToken": _only(False, "task pods get no Kubernetes API token"),
    "enableServiceLinks": _only(False, "service environment variables would expose every Service of the namespace"),
    "securityContext": rules.pod_security_context,
    "imagePullSecrets": _pull_secrets,
    "terminationGracePeriodSeconds": _grace,
}
