"""``pulumi up`` without the CLI: the stack program under mocks, its objects applied in the order it declares.

The Pulumi CLI cannot exist here, so the tier does what its engine and pulumi-kubernetes do, from the same
evaluation the offline render makes (:func:`airflow_k8s.infra.render.offline.evaluate` - the real stack program,
the tier's stack config):

* **order**: a resource is applied once every resource it depends on (``dependsOn`` plus the implicit
  dependencies of its inputs, as the registration recorded them) is *ready*; independent resources go together.
  For this program that is namespace, quota and limits, RBAC, NetworkPolicies, PriorityClasses, the DAGs claim,
  the Secret and the ConfigMaps, then the ``airflow db migrate`` Job - and the four Deployments only once it has
  completed;
* **ready**, as pulumi-kubernetes awaits it: a Job has completed (a failed Job fails the ``up`` with its pod's
  log), a Deployment's rollout is complete (observed generation, every replica updated, ready and available, no
  old replica left), a claim is Bound, a Service with a selector has an endpoint; other kinds when accepted;
* **apply** is server-side apply with one field manager (pulumi-kubernetes 4's default), so a field the program
  stops setting is removed;
* **update or replace**, as pulumi-kubernetes decides it: against the previous evaluation (the stack "state"),
  an object whose change touches a replace-on path the render records
  (:mod:`airflow_k8s.infra.render.replacement`: a Job's template, a PriorityClass value, ...) is deleted first
  and created again; any other change is an in-place update; an unchanged object is left alone;
* secrets: the Secret is applied with its real values (unwrapped from the evaluation), never printed.

**Adaptations to Kubernetes 1.20** (the kit's version), all here and nowhere in the platform - see
:func:`adapt_to_1_20`: ``policy/v1`` PodDisruptionBudget -> ``policy/v1beta1`` without
``unhealthyPodEvictionPolicy`` (added in 1.26); ``batch/v1`` CronJob -> ``batch/v1beta1``; objects of APIs the
server does not serve (PodMonitor, Karpenter NodePool) are skipped, named in :attr:`Result.skipped`.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from airflow_k8s.infra.render.manifests import normalize_numbers, provider_flags, to_manifest
from airflow_k8s.infra.render.offline import Evaluation, unwrap
from airflow_k8s.infra.render.replacement import replacing_changes
from tests.realcluster.kit import Kit, KitError

FIELD_MANAGER = "pulumi-kubernetes"
# pulumi-kubernetes' default await timeouts (Deployment 10 min; the migration Job's customTimeouts is longer and
# comes from the program), stretched: this cluster shares 2 cores with other work
DEFAULT_TIMEOUT = 1500.0
JOB_TIMEOUT = 2400.0


@dataclass
class Planned:
    urn: str
    obj: dict[str, Any]  # as the provider receives it: real secret values, numbers normalized
    replace_on: tuple[str, ...]
    delete_before_replace: bool
    depends_on: tuple[str, ...]

    @property
    def kind(self) -> str:
        return str(self.obj["kind"])

    @property
    def name(self) -> str:
        return str(self.obj["metadata"]["name"])

    @property
    def namespace(self) -> str | None:
        return self.obj["metadata"].get("namespace")

    @property
    def ref(self) -> str:
        api = self.obj["apiVersion"]
        group = api.split("/")[0] if "/" in api else ""
        return f"{self.kind.lower()}.{group}/{self.name}" if group else f"{self.kind.lower()}/{self.name}"

    def label(self) -> str:
        return f"{self.kind} {self.namespace + '/' if self.namespace else ''}{self.name}"


def adapt_to_1_20(obj: dict[str, Any], served: set[str]) -> tuple[dict[str, Any] | None, str]:
    """``obj`` as a 1.20 server takes it, or None and why it is skipped (module docstring)."""
    obj = copy.deepcopy(obj)
    api, kind = obj.get("apiVersion"), obj.get("kind")
    if (api, kind) == ("policy/v1", "PodDisruptionBudget"):
        obj["apiVersion"] = "policy/v1beta1"
        obj["spec"].pop("unhealthyPodEvictionPolicy", None)
        return obj, "policy/v1 -> policy/v1beta1, unhealthyPodEvictionPolicy dropped (Kubernetes 1.26+)"
    if (api, kind) == ("batch/v1", "CronJob"):
        obj["apiVersion"] = "batch/v1beta1"
        return obj, "batch/v1 -> batch/v1beta1 (CronJob is batch/v1 from Kubernetes 1.21)"
    if api not in served:
        return None, f"{api} is not served by this cluster"
    return obj, ""


def plan(evaluation: Evaluation) -> list[Planned]:
    """Every Kubernetes object of ``evaluation`` in a dependency order (ties: registration order)."""
    resources = evaluation.kubernetes()
    urns = {r.urn for r in resources}
    # a dependency on a component stands for its Kubernetes descendants (as the engine expands it)
    children: dict[str, list[str]] = {}
    for r in evaluation.resources:
        children.setdefault(r.parent, []).append(r.urn)

    def expand(urn: str) -> set[str]:
        if urn in urns:
            return {urn}
        out: set[str] = set()
        for child in children.get(urn, []):
            out |= expand(child)
        return out

    planned = []
    for r in resources:
        manifest = to_manifest(r, provider_flags(evaluation, r))
        obj = normalize_numbers(unwrap(r.inputs))
        obj = {k: obj[k] for k in ("apiVersion", "kind", "metadata") if k in obj} | {
            k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")
        }
        deps: set[str] = set()
        for urn in r.depends_on:
            deps |= expand(urn)
        planned.append(Planned(r.urn, obj, manifest.replace_on, r.delete_before_replace, tuple(sorted(deps))))
    order: list[Planned] = []
    done: set[str] = set()
    remaining = list(planned)
    while remaining:
        ready = [p for p in remaining if set(p.depends_on) <= done]
        if not ready:
            raise ValueError(f"dependency cycle among {[p.urn for p in remaining]}")
        order.append(ready[0])
        done.add(ready[0].urn)
        remaining.remove(ready[0])
    return order


@dataclass
class Step:
    planned: Planned
    action: str  # create, update, replace, same
    old: Planned | None = None  # what the state held (a replacement deletes that object first)
    started: float = 0.0
    ready_at: float | None = None


@dataclass
class Result:
    steps: list[Step] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (object, why)
    adapted: list[tuple[str, str]] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0

    def actions(self) -> dict[str, str]:
        return {s.planned.label(): s.action for s in self.steps}

    def changed(self) -> dict[str, str]:
        return {label: action for label, action in self.actions().items() if action != "same"}

    def order(self) -> list[str]:
        """Objects in the order they were applied."""
        return [s.planned.label() for s in sorted(self.steps, key=lambda s: s.started)]

    def ready_order(self) -> list[tuple[str, float, float]]:
        """(object, applied at, ready at) in seconds from the start of the ``up``."""
        return [
            (s.planned.label(), s.started - self.started, (s.ready_at or self.finished) - self.started)
            for s in sorted(self.steps, key=lambda s: s.started)
        ]

    @property
    def seconds(self) -> float:
        return self.finished - self.started


class UpFailed(RuntimeError):
    pass


class Applier:
    """Applies evaluations to the kit's cluster, keeping the last one as the stack's state."""

    def __init__(self, kit: Kit, *, log: Callable[[str], None] = print) -> None:
        self.kit = kit
        self.state: dict[str, Planned] = {}
        self.log = log
        self._served: set[str] | None = None

    def served(self) -> set[str]:
        if self._served is None:
            self._served = set(self.kit.kubectl("api-versions").split())
        return self._served

    def up(self, evaluation: Evaluation) -> Result:
        result = Result(started=time.monotonic())
        steps: list[Step] = []
        for planned in plan(evaluation):
            adapted, why = adapt_to_1_20(planned.obj, self.served())
            if adapted is None:
                result.skipped.append((planned.label(), why))
                continue
            if why:
                result.adapted.append((planned.label(), why))
            planned.obj = adapted
            old = self.state.get(planned.urn)
            if old is None:
                action = "create"
            elif old.obj == planned.obj:
                action = "same"
            elif replacing_changes(old.obj, planned.obj, planned.replace_on):
                action = "replace"
            else:
                action = "update"
            steps.append(Step(planned, action, old))
        skipped = {label for label, _ in result.skipped}
        by_urn = {s.planned.urn: s for s in steps}
        pending = list(steps)
        started: list[Step] = []
        try:
            self._converge(pending, started, by_urn)
        finally:  # like Pulumi's state after a failed up: what was applied is recorded, the rest is as before
            self.state.update({s.planned.urn: s.planned for s in started})
        for urn, old in reversed(list(self.state.items())):  # removed from the program: deleted, dependents first
            if urn not in by_urn and old.label() not in skipped:
                self.kit.kubectl("delete", old.ref, *self._ns(old), "--ignore-not-found", "--wait=true", timeout=600)
                result.deleted.append(old.label())
        self.state = {s.planned.urn: s.planned for s in steps}
        result.steps = steps
        result.finished = time.monotonic()
        return result

    def _converge(self, pending: list[Step], started: list[Step], by_urn: dict[str, Step]) -> None:
        while pending or any(s.ready_at is None for s in started):
            progressed = False
            for step in list(pending):
                deps = [by_urn[u] for u in step.planned.depends_on if u in by_urn]
                if all(d.ready_at is not None for d in deps):
                    pending.remove(step)
                    self._start(step)
                    started.append(step)
                    progressed = True
            for step in started:
                if step.ready_at is None and self._ready(step):
                    step.ready_at = time.monotonic()
                    progressed = True
            if not progressed:
                time.sleep(2)

    # -- one object ------------------------------------------------------------------------------------------------
    @staticmethod
    def _ns(p: Planned) -> list[str]:
        return ["-n", p.namespace] if p.namespace else []

    def _start(self, step: Step) -> None:
        p = step.planned
        step.started = time.monotonic()
        if step.action == "same":
            step.ready_at = step.started
            return
        if step.action == "replace":
            self.log(f"replace {p.label()}")
            gone = step.old or p  # a new name (a check Job named by its image's hash) replaces the old object
            self.kit.kubectl("delete", gone.ref, *self._ns(gone), "--ignore-not-found", "--wait=true", timeout=600)
        else:
            self.log(f"{step.action} {p.label()}")
        self.kit.kubectl(
            "apply", "--server-side", f"--field-manager={FIELD_MANAGER}", "--force-conflicts", "-f", "-",
            input=json.dumps(p.obj), timeout=300,
        )  # fmt: skip

    def _ready(self, step: Step) -> bool:
        p = step.planned
        timeout = JOB_TIMEOUT if p.kind == "Job" else DEFAULT_TIMEOUT
        if time.monotonic() - step.started > timeout:
            raise UpFailed(f"{p.label()} not ready after {timeout:.0f}s:\n{self._describe(p)}")
        if p.kind not in ("Deployment", "Job", "PersistentVolumeClaim", "Service"):
            return True
        try:
            live = self.kit.get(p.ref, namespace=p.namespace)
        except KitError:
            return False
        status = live.get("status") or {}
        if p.kind == "PersistentVolumeClaim":
            return status.get("phase") == "Bound"
        if p.kind == "Service":
            if not (live.get("spec") or {}).get("selector"):
                return True
            endpoints = self.kit.get("endpoints", p.name, p.namespace)
            return any(subset.get("addresses") for subset in endpoints.get("subsets") or [])
        if p.kind == "Job":
            conditions = {c["type"]: c for c in status.get("conditions") or [] if c.get("status") == "True"}
            if "Failed" in conditions:
                raise UpFailed(f"{p.label()} failed: {conditions['Failed'].get('message')}\n{self._describe(p)}")
            return "Complete" in conditions
        wanted = live["spec"].get("replicas", 1)
        return (
            status.get("observedGeneration", 0) >= live["metadata"]["generation"]
            and status.get("updatedReplicas", 0) == wanted
            and status.get("readyReplicas", 0) == wanted
            and status.get("availableReplicas", 0) == wanted
            and status.get("replicas", 0) == wanted
        )

    def _describe(self, p: Planned) -> str:
        """What went wrong, for the failure message: the object, its pods' states and their logs' tails."""
        out = [self.kit.kubectl("describe", p.ref, *self._ns(p), check=False)[-3000:]]
        if p.namespace:
            for pod in self.kit.items("pods", p.namespace):
                owner = pod["metadata"]["name"]
                if owner.startswith(p.name):
                    out.append(f"--- pod {owner}: {json.dumps(pod.get('status', {}).get('containerStatuses'))[:1500]}")
                    out.append(self.kit.kubectl("logs", owner, "-n", p.namespace, "--all-containers", "--tail=40",
                                                check=False))  # fmt: skip
        return "\n".join(out)
