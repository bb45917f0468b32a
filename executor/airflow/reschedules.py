"""Tries that come back: telling a task's own reschedule from a loop nobody asked for.

Airflow 3 can hand the executor the *same* try again after its pod ended: the task's pod always
exits 0 (``execute_workload`` reports the task's state through the Execution API, not its exit
code), and the task instance goes back to ``scheduled`` -> ``queued`` with the same try number.
That is legitimate when the task asked for it:

* a reschedule-mode sensor (or any operator) raised ``AirflowRescheduleException`` - the Task SDK
  logs ``Rescheduling task, marking task as UP_FOR_RESCHEDULE``;
* a deferred task resumes after its trigger fired - the Task SDK logged ``Pausing task as
  DEFERRED`` and Airflow kept ``next_method``.

It is a loop when the task never got to ask: the worker could not load its DAG or task at start-up
(``Dag not found during start up`` - an image whose ``AIRFLOW_HOME`` hides the platform's
airflow.cfg, a DAGs volume not mounted...) and the Task SDK reschedules the try
(``Rescheduling task during startup``), as often as ``[workers] missing_dag_retries`` *in the
worker's own config* allows - which, with the platform's airflow.cfg out of sight, nothing here
controls.  Each round the executor reported success and nobody learnt why.

:class:`RescheduleLoops` keeps, per try, the outcome of its last pod (bounded, most recent
first).  When Airflow hands a try back (:meth:`RescheduleLoops.returned`):

1. the first time, nothing is known about the pod that ended (its log was not read: reading every
   successful pod's log would cost an API call per task), so the resumed pod is marked to have
   its last log lines read when it ends (:attr:`Decision.read_log`);
2. from then on, the previous pod's log tail is judged (:func:`judge`): the task asked (either
   line above) - the count starts again; it shows a start-up failure, or no sign of the task
   asking at all - the count goes up; no log could be read - the count stays;
3. at ``unrequested_reschedule_limit`` counted returns the try is failed at once with the
   previous pod's last log lines as the reason (:attr:`Decision.fail`), instead of another pod.

Every return is also a *resumption*: it needs a pod of its own even if the previous pod (same
try, same name) is still there (``delete_worker_pods = False``, or its deletion still under way),
so :attr:`Decision.resumed` asks the engine to replace that finished pod rather than adopt it.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from airflow_k8s.executor.tasks.key import TaskKey
from airflow_k8s.executor.tasks.results import TaskResult

REMEMBERED_MAX = 10_000  # tries whose last pod's outcome is kept (a loop comes back within minutes)
ASKED = "asked"  # the task asked to come back
LOOP = "loop"  # it came back without asking
UNKNOWN = "unknown"  # the previous pod's log is unknown
ASKED_LINES = (
    "Rescheduling task, marking task as UP_FOR_RESCHEDULE",  # task_runner: the task's own reschedule
    "Pausing task as DEFERRED",  # task_runner: the task deferred
)
STARTUP_LINES = (
    "Dag not found during start up",
    "Task not found in Dag during start up",
    "Rescheduling task during startup",
)
UNREADABLE = "(logs unavailable"  # what the engine puts in a log tail it could not read


@dataclass(frozen=True)
class Decision:
    """What to do with a try Airflow handed (back) to the executor."""

    resumed: bool = False  # the same try ran before: replace its finished pod, never adopt it
    read_log: bool = False  # read the new pod's last log lines even if it succeeds
    fail: str | None = None  # fail the try with this reason instead of launching it


def judge(log_tail: tuple[str, ...]) -> str:
    """:data:`ASKED`, :data:`LOOP` or :data:`UNKNOWN` for the last log lines of a pod that ended."""
    text = "\n".join(log_tail)
    if not log_tail or UNREADABLE in text:
        return UNKNOWN
    if any(line in text for line in STARTUP_LINES):
        return LOOP
    if any(line in text for line in ASKED_LINES):
        return ASKED
    return LOOP


def reason(result: TaskResult, count: int) -> str:
    """The failure Airflow records: how often, which pod, and what its log said last."""
    lines = "\n".join(result.log_tail)
    return (
        f"the same try came back {count} times without the task asking to be rescheduled "
        f"(unrequested_reschedule_limit); pod {result.pod_name} ended with these last log lines:\n{lines}"
    )[:4000]


class RescheduleLoops:
    """Per try: the last pod's outcome and how often the try came back unasked (module docstring).

    Used from the scheduler's thread only (``_process_workloads`` and ``sync``), like the rest of
    the executor's bookkeeping.
    """

    def __init__(self, limit: int, remembered_max: int = REMEMBERED_MAX) -> None:
        self.limit = limit
        self.remembered_max = remembered_max
        self._ended: OrderedDict[TaskKey, TaskResult] = OrderedDict()
        self._returns: dict[TaskKey, int] = {}  # counted (unasked) returns of tries that came back

    def ended(self, result: TaskResult) -> None:
        """A pod of this try ended and the try's state is Airflow's to decide (the pod succeeded)."""
        self._ended.pop(result.key, None)
        self._ended[result.key] = result
        while len(self._ended) > self.remembered_max:
            old, _ = self._ended.popitem(last=False)
            self._returns.pop(old, None)

    def returned(self, key: TaskKey) -> Decision:
        """Airflow hands over ``key``: a first run, a legitimate return, or one return too many."""
        previous = self._ended.pop(key, None)
        if previous is None:
            return Decision()
        verdict = judge(previous.log_tail)
        count = self._returns.get(key, 0)
        if verdict == ASKED:
            count = 0
        elif verdict == LOOP:
            count += 1
        self._returns[key] = count
        if count >= self.limit:
            self._returns.pop(key, None)
            return Decision(resumed=True, fail=reason(previous, count))
        return Decision(resumed=True, read_log=True)

    def forget(self, key: TaskKey) -> None:
        """The try is over for the executor (failed, revoked): nothing of it will come back."""
        self._ended.pop(key, None)
        self._returns.pop(key, None)
