"""The engine's bookkeeping of tasks: states, per-state counts and indices.

Owned by the engine's loop thread (no locks).  Counts are plain ints, so other threads may read
them for health checks and tests without tearing anything.
"""

from __future__ import annotations

import enum
from collections import OrderedDict, deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from airflow_k8s.executor.kube import slimpod
from airflow_k8s.executor.tasks.key import TaskKey
from airflow_k8s.executor.tasks.task import Task


class State(enum.Enum):
    QUEUED = "queued"  # waiting for a slot below N_max
    LAUNCHING = "launching"  # a create request is in flight
    PENDING = "pending"  # the pod exists, not running yet
    RUNNING = "running"
    FINISHING = "finishing"  # terminal pod seen; logs being read, result not yet recorded
    SUCCEEDED = "succeeded"
    FAILED = "failed"


GONE_MAX = 100_000  # UIDs of finished pods remembered (a few MB at most)
ACTIVE = frozenset({State.LAUNCHING, State.PENDING, State.RUNNING})  # what N_max bounds
FINAL = frozenset({State.SUCCEEDED, State.FAILED})


@dataclass(eq=False, slots=True)
class Record:
    """The engine's view of one task try (mutable, private to the loop thread).

    Once final (succeeded or failed) it keeps only what its cleanup and exactly-once need: the task
    description and the last pod seen are dropped, so tasks waiting for their pod's deletion are small.
    """

    key: TaskKey
    pod_name: str
    task: Task | None  # None for pods adopted without a task description
    state: State
    queued_at: float
    namespace: str | None = None  # known once the pod is built (multi-namespace mode) or seen
    tier: str | None = None
    launched_at: float | None = None
    created_at: float | None = None
    created_rv: int = 0
    pod: dict[str, Any] | None = None  # last seen object, while the task is active
    unschedulable: str | None = None
    cleaning: bool = False
    start_by: float | None = None  # monotonic: the pod must be running by then (workload token)
    relaunch: bool = False  # replace a finished pod of the same task when creating
    not_before: float = 0.0  # monotonic: quota backoff, no create attempt before this
    refused_since: float | None = None  # first ResourceQuota refusal of this task
    refusals: int = 0
    uid: str | None = None  # the pod incarnation this record follows, once known
    launch_pending: bool = False  # a create is in flight: keep the record until it answers
    early: tuple[dict[str, Any], bool] | None = None  # (pod, deleted) seen while a relaunch's create was in flight
    give_up: str | None = None  # set by a failure the engine decided: "delete" the pod, or "forget" (none)
    launch: str | None = None  # which launch of the task try (identity): a resumed try is another record
    pod_final: bool = False  # its pod's DELETED (or done-label) event was seen: nothing of it can follow
    vanished: str | None = None  # the pod left the watch; a GET decides (the message if it is gone)


class TaskBook:
    def __init__(self) -> None:
        self.records: dict[str, Record] = {}
        self.by_key: dict[TaskKey, Record] = {}
        self.counts = dict.fromkeys(State, 0)
        self.cleanups = 0  # cleanup jobs in flight
        self._queue: deque[Record] = deque()
        self._pending: set[str] = set()
        self._launching: set[str] = set()
        # Pod incarnations (UIDs) whose task is finished and forgotten: a late watch event for one
        # must not bring it back as an "adopted" pod.  Each leaves once its DELETED (or done-label)
        # event is seen - nothing older can follow - so this holds only pods still being deleted;
        # bounded anyway, the oldest dropped first.
        self.gone: OrderedDict[str, None] = OrderedDict()

    def get(self, pod_name: str) -> Record | None:
        return self.records.get(pod_name)

    def knows(self, key: TaskKey) -> bool:
        return key in self.by_key

    def add(self, rec: Record) -> None:
        """Track ``rec``; ``by_key`` follows the newest *submitted* launch of a key (an adopted pod of an
        earlier launch, found after a restart, never takes the place of the current one)."""
        self.records[rec.pod_name] = rec
        if rec.task is not None or rec.key not in self.by_key:
            self.by_key[rec.key] = rec
        self.counts[rec.state] += 1
        self._index(rec, rec.state)
        if rec.state is State.QUEUED:
            self._queue.append(rec)

    def set_state(self, rec: Record, state: State) -> None:
        self.counts[rec.state] -= 1
        self.counts[state] += 1
        self._index(rec, state)
        rec.state = state
        if state in FINAL:
            rec.task = rec.pod = None

    def _index(self, rec: Record, state: State) -> None:
        for bucket, member in ((self._pending, State.PENDING), (self._launching, State.LAUNCHING)):
            if state is member:
                bucket.add(rec.pod_name)
            else:
                bucket.discard(rec.pod_name)

    def forget(self, rec: Record, *, gone: bool = True) -> None:
        """Drop a finished task from memory (the result sink remembers it); its pod's UID is remembered as gone.

        ``gone=False`` (a pod handed over to another scheduler): the UID is not remembered, so the
        pod is adopted again if it is ever handed back.
        """
        if self.records.pop(rec.pod_name, None) is None:
            return
        if gone and rec.uid is not None and not rec.pod_final:
            self.gone[rec.uid] = None
            while len(self.gone) > GONE_MAX:
                self.gone.popitem(last=False)
        if self.by_key.get(rec.key) is rec:
            del self.by_key[rec.key]
        self.counts[rec.state] -= 1
        self._pending.discard(rec.pod_name)
        self._launching.discard(rec.pod_name)

    def next_queued(self) -> Record | None:
        """The oldest task still QUEUED (records adopted meanwhile are skipped)."""
        while self._queue:
            rec = self._queue.popleft()
            if rec.state is State.QUEUED and rec.task is not None and self.records.get(rec.pod_name) is rec:
                return rec
        return None

    def requeue(self, rec: Record, *, front: bool = False) -> None:
        """Put a task back in the queue (quota backoff, or skipped by this dispatch pass)."""
        if rec.state is not State.QUEUED:
            self.set_state(rec, State.QUEUED)
        if front:
            self._queue.appendleft(rec)
        else:
            self._queue.append(rec)

    def queued(self) -> list[Record]:
        """Every QUEUED record (for deadline checks)."""
        return [rec for rec in self._queue if rec.state is State.QUEUED and self.records.get(rec.pod_name) is rec]

    def has_queued(self) -> bool:
        return self.counts[State.QUEUED] > 0

    def active(self) -> int:
        return sum(self.counts[s] for s in ACTIVE)

    def wanted(self) -> int:
        """P(t): tasks that want a pod (queued or active)."""
        return self.counts[State.QUEUED] + self.active()

    def busy(self) -> int:
        return self.wanted() + self.counts[State.FINISHING]

    def pending(self) -> list[Record]:
        return [self.records[name] for name in self._pending]

    def launching(self) -> list[Record]:
        return [self.records[name] for name in self._launching]

    def active_pods(self) -> Iterator[dict[str, Any]]:
        """The last seen pod of every active task, with its whole spec (decoded here if it was left slim)."""
        for rec in self.records.values():
            if rec.state in ACTIVE and rec.pod is not None:
                yield slimpod.full_spec(rec.pod)

    def snapshot(self) -> dict[str, int]:
        return {state.value: count for state, count in self.counts.items()}
