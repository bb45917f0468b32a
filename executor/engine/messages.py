"""The engine's inbox: one frozen message type per thing that can happen to it.

Every thread but the loop thread talks to the engine only by putting one of these on its inbox
(:meth:`~airflow_k8s.executor.engine.core.Engine.post`); the loop matches on the type.  Messages
carry plain values - pods as the API returned them, results as recorded - never references to
state the loop owns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from airflow_k8s.executor.engine.placeholders import WarmShare
from airflow_k8s.executor.pods.capacity import Node
from airflow_k8s.executor.tasks.key import TaskKey
from airflow_k8s.executor.tasks.results import TaskResult
from airflow_k8s.executor.tasks.task import Task


@dataclass(frozen=True, slots=True)
class Submit:
    """Run ``task`` (idempotent: a key already known or recorded is ignored); ``relaunch`` replaces its old pod."""

    task: Task
    relaunch: bool = False


@dataclass(frozen=True, slots=True)
class Revoke:
    """Forget ``key`` (its launch with pod ``pod_name`` when given) and delete its pod, recording no result
    (Airflow's ``revoke_task``)."""

    key: TaskKey
    pod_name: str | None = None


@dataclass(frozen=True, slots=True)
class PodEvent:
    """A watch event (ADDED, MODIFIED, DELETED) for one of this executor's pods."""

    kind: str
    pod: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Relisted:
    """A full list of this executor's pods in ``scope`` (a namespace, or None for all) at ``resource_version``."""

    scope: str | None
    items: list[dict[str, Any]]
    resource_version: str


@dataclass(frozen=True, slots=True)
class Launched:
    """The API accepted pod ``name`` (or it already existed for the same task)."""

    name: str
    pod: dict[str, Any]


@dataclass(frozen=True, slots=True)
class LaunchFailed:
    """Pod ``name`` was not created: ``reason`` is a short word (Forbidden, Invalid, CreationTimeout ...).

    ``namespace`` is where a create may still have landed (None when no pod was built); ``quota``
    marks a refusal by ResourceQuota admission, which is backpressure rather than failure.
    """

    name: str
    reason: str
    message: str
    namespace: str | None = None
    quota: bool = False


@dataclass(frozen=True, slots=True)
class Finished:
    """The outcome of a terminal pod, read (with its log tail) off the loop thread."""

    name: str
    result: TaskResult


@dataclass(frozen=True, slots=True)
class Cleaned:
    """The cleanup (delete or label) of pod ``name`` is done."""

    name: str


@dataclass(frozen=True, slots=True)
class NodesListed:
    """Fresh node capacity for ``tier: auto``: the nodes, and the other pods of the executor's namespaces.

    ``others`` are the pods that are not the executor's own (the control plane, other workloads of the
    namespace; never placeholders, which any task pod preempts): their requests occupy the nodes too.
    """

    nodes: list[Node]
    others: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class PlaceholderGone:
    """A placeholder pod's deletion is done."""

    name: str


@dataclass(frozen=True, slots=True)
class ShareWarmCapacity:
    """This scheduler's part in keeping N_min warm, among the schedulers sharing the namespace."""

    share: WarmShare


@dataclass(frozen=True, slots=True)
class OwnerChecked:
    """What a GET found for pod ``name`` after it left this scheduler's watch (None: it is gone)."""

    name: str
    pod: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Stop:
    """Wake the loop so it notices the stop flag."""


Message = (
    Submit | Revoke | PodEvent | Relisted | Launched | LaunchFailed | Finished | Cleaned | NodesListed
    | PlaceholderGone | ShareWarmCapacity | OwnerChecked | Stop
)  # fmt: skip
