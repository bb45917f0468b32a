"""The other schedulers: who keeps N_min warm, what they want, and the placeholders nobody owns any more.

Airflow 3 runs several schedulers active-active against one database; each runs this executor and owns
only the pods labelled ``airflow-worker=<its job id>`` (it launches, watches, cleans up and counts against
``worker_pods_max`` only those; a dead one's task pods reach a survivor through Airflow's orphan adoption,
:mod:`.adoption`).  What has to be decided *across* them is here:

* **Who keeps N_min.**  ``worker_pods_min`` is the namespace's warm capacity, not each scheduler's: the
  oldest live scheduler - the lowest job id among scheduler jobs that are running and heartbeated within
  ``[scheduler] scheduler_health_check_threshold``, Airflow's own test in ``adopt_or_reset_orphaned_tasks``
  - keeps the placeholders; the others keep none.  Job ids only grow, so the role moves only when its
  holder stops or is taken for dead, and every scheduler reaches the same answer from the same rows.
* **P(t) of the namespace.**  The keeper adds the task instances the other schedulers have queued or
  running for this executor (one COUNT) to its own, so N(t) = min(max(P, N_min), N_max) holds for the
  namespace, not per scheduler.
* **Placeholders of dead schedulers.**  They are not task instances, so Airflow never offers them for
  adoption: the keeper deletes those whose ``airflow-worker`` label names no live scheduler.

:class:`Peers` is the seam: :class:`DatabasePeers` runs the two queries (exercised end to end against
PostgreSQL); adapter tests pass their own.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from airflow_k8s.executor.contract.config import EXECUTOR_CLASS, ExecutorConfig
from airflow_k8s.executor.contract.errors import KubeApiError, NotFound
from airflow_k8s.executor.engine.core import Engine
from airflow_k8s.executor.engine.placeholders import WarmShare
from airflow_k8s.executor.kube.client import KubeClient
from airflow_k8s.executor.tasks import identity

log = logging.getLogger(__name__)
REFRESH_SECONDS = 5.0  # how often a scheduler re-reads its share while N_min > 0
PLACEHOLDER_SELECTOR = f"{identity.LABEL_EXECUTOR}=True,{identity.LABEL_PLACEHOLDER}=True"


@dataclass(frozen=True)
class ExecutorMatch:
    """Which task instances are this executor's: ``executor`` column in ``names``, or unset when it is the default."""

    names: frozenset[str]
    default: bool


class Peers(Protocol):
    def live_schedulers(self) -> list[int]:
        """Job ids of the scheduler jobs Airflow considers alive, lowest first."""
        ...

    def wanted_elsewhere(self, own_job: int, executor: ExecutorMatch) -> int:
        """Task instances of this executor queued or running under other scheduler jobs."""
        ...


class DatabasePeers:
    """The metadata database through Airflow's ORM (an independent session per call, as in :mod:`.instances`)."""

    def live_schedulers(self) -> list[int]:
        from airflow.configuration import conf
        from airflow.jobs.job import Job, JobState
        from airflow.utils.session import create_session
        from sqlalchemy import select

        threshold = conf.getint("scheduler", "scheduler_health_check_threshold")
        since = datetime.now(UTC) - timedelta(seconds=threshold)
        query = select(Job.id).where(
            Job.job_type == "SchedulerJob", Job.state == JobState.RUNNING, Job.latest_heartbeat >= since
        )
        with create_session(scoped=False) as session:
            return sorted(int(job_id) for job_id in session.scalars(query))

    def wanted_elsewhere(self, own_job: int, executor: ExecutorMatch) -> int:
        from airflow.models.taskinstance import TaskInstance as TI
        from airflow.utils.session import create_session
        from airflow.utils.state import TaskInstanceState
        from sqlalchemy import func, or_, select

        ours = TI.executor.in_(sorted(executor.names))
        query = (
            select(func.count())
            .select_from(TI)
            .where(
                TI.state.in_([TaskInstanceState.QUEUED, TaskInstanceState.RUNNING]),
                TI.queued_by_job_id != own_job,
                or_(TI.executor.is_(None), ours) if executor.default else ours,
            )
        )
        with create_session(scoped=False) as session:
            return int(session.scalar(query) or 0)


def refresh(
    view: Peers, engine: Engine, kube: KubeClient, config: ExecutorConfig, *, own_job: int, executor: ExecutorMatch
) -> WarmShare:
    """Tell ``engine`` its share (module docstring); as the keeper, delete dead schedulers' placeholders."""
    live = view.live_schedulers()
    keeper = own_job in live and own_job == min(live)
    warm = config.worker_pods_min > 0
    share = WarmShare(
        keeper=keeper, wanted_elsewhere=view.wanted_elsewhere(own_job, executor) if keeper and warm else 0
    )
    engine.share_warm_capacity(share)
    if keeper:
        remove_orphan_placeholders(kube, config.namespace, live)
    return share


def match(executor: Any) -> ExecutorMatch:
    """The names a task's ``executor=`` may give ``executor`` by, and whether leaving it unset means this one."""
    cls = type(executor)
    names = {cls.__name__, f"{cls.__module__}.{cls.__name__}", EXECUTOR_CLASS}
    name = getattr(executor, "name", None)  # Airflow's ExecutorName, set by its loader
    if name is None:
        return ExecutorMatch(frozenset(names), default=True)
    names.update(value for value in (name.alias, name.module_path) if value)
    try:
        from airflow.executors.executor_loader import ExecutorLoader

        default = bool(ExecutorLoader.get_default_executor_name() == name)
    except Exception:
        default = True
    return ExecutorMatch(frozenset(names), default)


def remove_orphan_placeholders(kube: KubeClient, namespace: str, live: Collection[int]) -> list[str]:
    """Delete placeholders whose scheduler is not live; the names deleted."""
    owners = {identity.safe_label_value(str(job_id)) for job_id in live}
    removed = []
    for pod in kube.list_pods(namespace, label_selector=PLACEHOLDER_SELECTOR).items:
        metadata = pod.get("metadata") or {}
        owner = (metadata.get("labels") or {}).get(identity.LABEL_INSTANCE)
        if owner in owners or metadata.get("deletionTimestamp"):
            continue
        try:
            kube.delete_pod(namespace, metadata["name"], grace_period=0)
        except NotFound:
            continue
        except KubeApiError as exc:
            log.warning("cannot delete placeholder %s of scheduler %s: %s", metadata["name"], owner, exc)
            continue
        log.info("deleted placeholder %s of scheduler job %s, which is no longer alive", metadata["name"], owner)
        removed.append(str(metadata["name"]))
    return removed


def remove_own_placeholders(kube: KubeClient, config: ExecutorConfig) -> None:
    """At a clean stop: nobody adopts placeholders, so their scheduler removes them itself; closes ``kube``."""
    selector = f"{PLACEHOLDER_SELECTOR},{identity.LABEL_INSTANCE}={config.scheduler_instance_id}"
    try:
        for pod in kube.list_pods(config.namespace, label_selector=selector).items:
            with contextlib.suppress(NotFound):
                kube.delete_pod(config.namespace, pod["metadata"]["name"], grace_period=0)
    except KubeApiError as exc:
        log.warning("placeholders of this scheduler not deleted: %s", exc)
    finally:
        kube.close()
