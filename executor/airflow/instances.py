"""What Airflow's database says about task instances, one query per batch.

The executor asks two questions of the metadata database, and only in batches (never one
round-trip per task):

* before creating pods: is each workload still what the scheduler wants run (the task instance
  still ``queued``, for this try, by this scheduler job)?  A workload that was retried, cleared
  or re-queued by another scheduler while it waited must not start a stale pod;
* after a pod failed: did the task ever start (``queued`` still)?  Then the failure was the
  pod's, not the task's, and Airflow's ``pod_launch_failure_retries`` relaunches it.

:class:`TaskInstances` is the seam: :class:`DatabaseInstances` runs the real query (exercised by
the end-to-end test against PostgreSQL); unit tests of the executor's bookkeeping pass their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

QUEUED = "queued"
_CHUNK = 500  # ids per IN (...) clause


@dataclass(frozen=True)
class InstanceState:
    state: str | None
    try_number: int
    queued_by_job_id: int | None


class TaskInstances(Protocol):
    def current(self, ids: Sequence[str]) -> dict[str, InstanceState]:
        """State, try number and queuing job of each task instance id that still exists."""
        ...


class DatabaseInstances:
    """The metadata database, through Airflow's ORM, with a session of its own per call.

    An independent (non-scoped) session, as the provider's executor uses, so a query never joins
    - and commits - a transaction the scheduler has open in the same thread.
    """

    def current(self, ids: Sequence[str]) -> dict[str, InstanceState]:
        from airflow.models.taskinstance import TaskInstance
        from airflow.utils.session import create_session
        from sqlalchemy import select

        try:
            id_type = TaskInstance.id.type.python_type
        except NotImplementedError:  # pragma: no cover - a string column on other releases
            id_type = str
        out: dict[str, InstanceState] = {}
        with create_session(scoped=False) as session:
            for start in range(0, len(ids), _CHUNK):
                chunk = [id_type(str(value)) for value in ids[start : start + _CHUNK]]
                query = select(
                    TaskInstance.id, TaskInstance.state, TaskInstance.try_number, TaskInstance.queued_by_job_id
                ).where(TaskInstance.id.in_(chunk))
                for ti_id, state, try_number, job_id in session.execute(query):
                    out[str(ti_id)] = InstanceState(str(state) if state else None, int(try_number), job_id)
        return out
