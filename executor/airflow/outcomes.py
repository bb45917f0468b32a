"""Engine outcomes on their way to Airflow's event buffer.

:class:`Outcomes` is the engine's :class:`~airflow_k8s.executor.tasks.results.ResultSink` inside
Airflow: the engine's threads put results and "running" reports on queues, and the executor's
``sync`` (the scheduler's thread) drains them into ``running`` / ``success`` / ``failed`` events.
Airflow's database is the durable record - Airflow 3 tasks report their own state through the
Execution API - so ``has_result`` is always False, and the executor reports only what Airflow
handed it.  An outcome for a task Airflow has not handed this scheduler (yet) is kept, bounded,
for ``try_adopt_task_instances`` after a restart.
"""

from __future__ import annotations

import queue
from collections.abc import Collection
from typing import Any

from airflow.models.taskinstancekey import TaskInstanceKey

from airflow_k8s.executor.tasks.key import TaskKey
from airflow_k8s.executor.tasks.results import TaskResult

UNCLAIMED_MAX = 10_000  # outcomes kept for try_adopt_task_instances after a restart


def airflow_key(key: TaskKey) -> TaskInstanceKey:
    return TaskInstanceKey(key.dag_id, key.task_id, key.run_id, key.try_number, key.map_index)


def failure_info(result: TaskResult) -> str:
    """What Airflow records about a failed pod (the 'state mismatch' log's extra info)."""
    exit_code = f", exit code {result.exit_code}" if result.exit_code is not None else ""
    parts = [f"pod {result.pod_name} failed: {result.reason}{exit_code}"]
    if result.message:
        parts.append(result.message.strip())
    if result.log_tail:
        parts.append("last log lines:\n" + "\n".join(result.log_tail))
    return "; ".join(parts)[:4000]


class Outcomes:
    """Results and running reports from the engine's threads, for the scheduler's thread."""

    def __init__(self) -> None:
        self._results: queue.SimpleQueue[TaskResult] = queue.SimpleQueue()
        self._started: queue.SimpleQueue[tuple[TaskKey, str]] = queue.SimpleQueue()
        self._released: queue.SimpleQueue[tuple[TaskKey, str]] = queue.SimpleQueue()
        self._unclaimed: dict[TaskKey, TaskResult] = {}

    # -- the engine's side (any thread) ---------------------------------------------------------
    def has_result(self, key: TaskKey) -> bool:
        return False

    def record(self, result: TaskResult) -> None:
        self._results.put(result)

    def running(self, key: TaskKey, pod_name: str) -> None:
        self._started.put((key, pod_name))

    def released(self, key: TaskKey, owner: str) -> None:
        """Another scheduler (``owner``) adopted the task's pod: the task is no longer this one's."""
        self._released.put((key, owner))

    # -- the scheduler's side ---------------------------------------------------------------------
    def started(self) -> list[tuple[TaskKey, str]]:
        return _drain(self._started)

    def results(self) -> list[TaskResult]:
        return _drain(self._results)

    def handed_over(self) -> list[tuple[TaskKey, str]]:
        return _drain(self._released)

    def keep_unclaimed(self, result: TaskResult) -> None:
        """An outcome for a task Airflow has not handed us: kept (bounded) for adoption."""
        self._unclaimed[result.key] = result
        while len(self._unclaimed) > UNCLAIMED_MAX:
            self._unclaimed.pop(next(iter(self._unclaimed)))

    def claim(self, key: TaskKey, pod_names: Collection[str] | None = None) -> bool:
        """Adopt a kept outcome (of one of ``pod_names`` when given: the current launch's): the next
        ``sync`` reports it.  False when there is none."""
        result = self._unclaimed.get(key)
        if result is None or (pod_names is not None and result.pod_name not in pod_names):
            return False
        del self._unclaimed[key]
        self._results.put(result)
        return True

    def has_unclaimed(self, key: TaskKey) -> bool:
        return key in self._unclaimed


def _drain(source: queue.SimpleQueue[Any]) -> list[Any]:
    items = []
    while True:
        try:
            items.append(source.get_nowait())
        except queue.Empty:
            return items
