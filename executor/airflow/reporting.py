"""Engine outcomes to Airflow events: the executor's ``sync`` half that reports (a mixin of the executor).

* ``running`` when a pod starts (its name becomes the task instance's external executor id),
  ``success`` when it succeeds, ``failed`` with the pod's reason, exit code and last log lines as
  the event's info - and that info also written into the try's log (:mod:`.reasons`), where the
  DAG author looks;
* only the pod of a try's *current* launch reports: an earlier launch's pod (a deferred task
  resumed, a rescheduled sensor) finishing late is ignored, never taken for the current one;
* a pod that failed before its task started (the task instance still ``queued``) is relaunched
  without using a task retry, up to Airflow's ``pod_launch_failure_retries``;
* an outcome for a task Airflow has not handed this scheduler is kept for adoption;
* a try handed back before its previous pod ended is handed to the engine once that pod's
  (stale) outcome arrives, which also tells the reschedule-loop check why it came back
  (:mod:`.reschedules`); a task another scheduler adopted is dropped without an event.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import TYPE_CHECKING, Any

from airflow_k8s.executor.airflow import reasons
from airflow_k8s.executor.airflow.instances import QUEUED, TaskInstances
from airflow_k8s.executor.airflow.outcomes import Outcomes, airflow_key, failure_info
from airflow_k8s.executor.contract.config import ExecutorConfig
from airflow_k8s.executor.contract.config_loader import EXECUTOR_CLASS_NAME
from airflow_k8s.executor.tasks.key import TaskKey
from airflow_k8s.executor.tasks.results import SUCCESS, TaskResult
from airflow_k8s.executor.tasks.task import Task

if TYPE_CHECKING:
    from airflow.models.taskinstancekey import TaskInstanceKey

    from airflow_k8s.executor.airflow.reschedules import RescheduleLoops
    from airflow_k8s.executor.engine.core import Engine

log = logging.getLogger(__name__)
# Failures the engine decided for reasons a new pod cannot fix: never relaunched.
NOT_LAUNCH_FAILURES = frozenset(
    {"StartDeadlineExceeded", "QuotaExceeded", "PolicyViolation", "InvalidTask", "NameConflict", "Forbidden", "Invalid"}
)


class Reporting:
    """The reporting half of :class:`~airflow_k8s.executor.airflow.executor.KubernetesPlatformExecutor`."""

    # Provided by the executor (BaseExecutor's bookkeeping and event methods, and its own state).
    settings: ExecutorConfig | None
    engine: Engine | None
    instances: TaskInstances
    outcomes: Outcomes
    pods: dict[TaskKey, str]
    log_folder: str | None
    running: set[Any]
    loops: RescheduleLoops
    _tasks: dict[TaskKey, Task]
    _relaunches: Counter[TaskKey]
    _log_paths: dict[TaskKey, str]
    _returning: dict[TaskKey, tuple[TaskInstanceKey, Task]]

    if TYPE_CHECKING:  # BaseExecutor's, which must not be shadowed at run time

        def running_state(self, key: Any, info: Any = None) -> None: ...
        def success(self, key: Any, info: Any = None) -> None: ...
        def fail(self, key: Any, info: Any = None) -> None: ...
        def _hand_over(self, key: TaskInstanceKey, task: Task) -> None: ...

    def _report(self) -> None:
        for key, owner in self.outcomes.handed_over():
            log.warning("task %s was adopted by scheduler job %s; no longer tracked here", key, owner)
            self.running.discard(airflow_key(key))
            self._forget(key)
        for key, pod_name in self.outcomes.started():
            if airflow_key(key) in self.running and self._current(key, pod_name):
                self.running_state(airflow_key(key), info=pod_name)
        failed = []
        for result in self.outcomes.results():
            key = airflow_key(result.key)
            returning = self._returning.pop(result.key, None)
            if returning is not None:
                # An earlier round of a try Airflow has already handed back: its outcome is stale for
                # Airflow (reporting it would fail the queued try), but its log says why it came back.
                self._tasks.pop(result.key, None)
                self._relaunches.pop(result.key, None)
                self.loops.ended(result)
                self._hand_over(*returning)
                continue
            if key not in self.running:
                self.outcomes.keep_unclaimed(result)
            elif not self._current(result.key, result.pod_name):
                log.info("ignoring the outcome of pod %s: an earlier launch of %s", result.pod_name, key)
            elif result.state == SUCCESS:
                self._forget(result.key)
                self.loops.ended(result)  # Airflow decides whether the try is over or comes back
                self.success(key, info=result.pod_name)
            else:
                failed.append(result)
        if failed:
            self._fail_or_relaunch(failed)

    def _current(self, key: TaskKey, pod_name: str) -> bool:
        """Whether ``pod_name`` is the pod of the try's current launch (unknown: yes)."""
        expected = self.pods.get(key)
        return expected is None or expected == pod_name

    def _forget(self, key: TaskKey) -> None:
        self._tasks.pop(key, None)
        self._relaunches.pop(key, None)
        self.pods.pop(key, None)
        self._log_paths.pop(key, None)

    def _fail(self, key: TaskKey, info: str) -> None:
        """Report ``failed`` with ``info``, and put ``info`` where the DAG author looks: the try's log (.reasons)."""
        log_path = self._log_paths.get(key)
        self._forget(key)
        self.fail(airflow_key(key), info=info)
        if self.log_folder and log_path:
            reasons.write_reason(self.log_folder, log_path, f"{EXECUTOR_CLASS_NAME}: {info}")

    def _fail_or_relaunch(self, failed: list[TaskResult]) -> None:
        """Relaunch pods that failed before their task started (still queued); report the rest."""
        assert self.engine is not None and self.settings is not None
        candidates = {r.key: self._tasks[r.key] for r in failed if self._may_relaunch(r)}
        states = {}
        if candidates:
            try:
                states = self.instances.current([task.ti_id for task in candidates.values() if task.ti_id])
            except Exception:
                log.exception("cannot read task instance states; failing without relaunch")
        for result in failed:
            task = candidates.get(result.key)
            current = states.get(task.ti_id or "") if task is not None else None
            if task is not None and current is not None and current.state == QUEUED:
                self._relaunches[result.key] += 1
                log.warning(
                    "pod %s failed before its task started (%s); relaunching (%d of %s)",
                    result.pod_name,
                    result.reason,
                    self._relaunches[result.key],
                    self.settings.pod_launch_failure_retries,
                )
                self.engine.submit(task, relaunch=True)
                continue
            self.loops.forget(result.key)
            self._fail(result.key, failure_info(result))

    def _may_relaunch(self, result: TaskResult) -> bool:
        assert self.settings is not None
        limit = self.settings.pod_launch_failure_retries
        excluded = NOT_LAUNCH_FAILURES | set(self.settings.pod_launch_failure_excluded_container_reasons)
        return (
            result.key in self._tasks
            and result.reason not in excluded
            and (limit == -1 or self._relaunches[result.key] < limit)
        )
