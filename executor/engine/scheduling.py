"""Turning queued tasks into pod creations, and the clocks: timeouts, start deadlines, quota backoff.

Owned by the engine's loop thread, like :mod:`~airflow_k8s.executor.engine.lifecycle`, whose
records it reads and whose ``fail`` it calls.

N_max
    At most ``worker_pods_max`` tasks are LAUNCHING/PENDING/RUNNING; placeholder pods fill the
    gap up to N_min (:mod:`~airflow_k8s.executor.engine.placeholders`).  At most two creates per
    creation worker are handed to the launcher at once: when the API server paces writes
    (:mod:`~airflow_k8s.executor.kube.flowcontrol`) the rest wait QUEUED, where no creation clock
    runs, instead of timing out in the launcher's queue.  And creates pause while more than
    max(1000, 2 x N_max) finished pods wait for their deletion, so that backlog stays bounded.

ResourceQuota pushback
    The real quota charges a pod at create time and releases it only when its controller
    recalculates, so it refuses pods while real usage is below the limit.  A refusal is
    backpressure: the task goes back to the front of the queue with capped exponential backoff,
    the namespace gets no new create until that backoff ends (no spinning against a full
    namespace), the refusal is counted (``airflow_executor_quota_refusals_total``) and logged with
    the quota's message.  The task fails - with that message - only after
    ``quota_pushback_timeout`` seconds of refusals, or after ``task_publish_max_retries``
    refusals when that Airflow key is set.

Start deadline
    A task may carry the time its workload token expires (Airflow 3's ``[scheduler]
    task_queued_timeout``).  A pod not running 30 s before that would start only to fail on an
    expired token, so it is deleted and the task failed with ``StartDeadlineExceeded``, saying why.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import Any

from airflow_k8s.executor.contract.config import ExecutorConfig
from airflow_k8s.executor.engine.effects import PodEffects
from airflow_k8s.executor.engine.lifecycle import TaskLifecycle
from airflow_k8s.executor.engine.placeholders import PlaceholderPool
from airflow_k8s.executor.engine.records import Record, State
from airflow_k8s.executor.kube.launcher import PLACEHOLDER_PRIORITY, Launcher, LaunchJob
from airflow_k8s.executor.pods import capacity, preflight
from airflow_k8s.executor.pods.podfactory import build_pod
from airflow_k8s.executor.pods.podstate import pod_status
from airflow_k8s.executor.pods.templates import TemplateStore
from airflow_k8s.executor.tasks.task import AUTO_TIER, Task

log = logging.getLogger(__name__)
QUOTA_BACKOFF_BASE = 0.5
QUOTA_BACKOFF_MAX = 30.0
LAUNCH_QUEUE_PER_WORKER = 2  # creates handed to the launcher per creation worker: one in flight, one next
CLEANUP_BACKLOG_MIN = 1000  # finished pods waiting for deletion before creates pause (or 2 x N_max)


class Dispatcher:
    def __init__(
        self,
        config: ExecutorConfig,
        templates: TemplateStore,
        lifecycle: TaskLifecycle,
        launcher: Launcher,
        effects: PodEffects,
        placeholders: PlaceholderPool,
        clock: Callable[[], float],
    ) -> None:
        self.config = config
        self.templates = templates
        self.lifecycle = lifecycle
        self.book = lifecycle.book
        self.launcher = launcher
        self.effects = effects
        self.placeholders = placeholders
        self.clock = clock
        self.nodes: list[capacity.Node] | None = None  # None until listed (or when forbidden)
        self.other_pods: tuple[dict[str, Any], ...] = ()  # the namespaces' pods that are not ours, as listed
        self.placements: dict[str, capacity.Placement] = {}
        self.quota_paused: dict[str, float] = {}  # namespace -> no create before (monotonic)

    # -- launching ------------------------------------------------------------------------------
    def dispatch(self) -> None:
        now = self.clock()
        # N_max bounds the pods; the creation workers bound what is handed to the launcher at once, so a
        # task waits for the API server's pace QUEUED (no clock running) rather than LAUNCHING, where
        # pod_creation_timeout counts from the hand-over.
        launching = self.config.creation_workers() * LAUNCH_QUEUE_PER_WORKER - self.book.counts[State.LAUNCHING]
        room = min(self.config.worker_pods_max - self.book.active(), launching)
        if self.book.cleanups >= max(CLEANUP_BACKLOG_MIN, 2 * self.config.worker_pods_max):
            room = 0  # deletes lag far behind creates: let them catch up (memory stays bounded)
        deferred: list[Record] = []
        while room > 0:
            rec = self.book.next_queued()
            if rec is None or rec.task is None:
                break
            if self._paused(rec.namespace or self.config.namespace, now):
                deferred.append(rec)
                if self.config.multi_namespace_mode:
                    continue
                break  # one namespace, and it is full: nothing else may go either
            if rec.not_before > now:  # this task's own quota backoff
                deferred.append(rec)
                continue
            self._launch(rec, rec.task, now)
            room -= 1
        for rec in reversed(deferred):
            self.book.requeue(rec, front=True)

    def _launch(self, rec: Record, task: Task, now: float) -> None:
        tier = self._auto_tier() if task.overrides.tier == AUTO_TIER else task.overrides.tier
        rec.tier, rec.launched_at = tier, now
        rec.launch_pending = True
        self.book.set_state(rec, State.LAUNCHING)

        nodes = self.nodes

        def build(task: Task = task, tier: str | None = tier) -> dict[str, Any]:
            pod = build_pod(task, self.config, self.templates, tier_name=tier)
            preflight.check_pod(task, pod, nodes)  # a pod no node can ever hold fails now, not when pending times out
            return pod

        deadline = now + self.config.pod_creation_timeout
        job = LaunchJob(rec.pod_name, build, task.key, deadline, replace=rec.relaunch, ti_id=task.ti_id)
        self.launcher.submit(job)

    def _auto_tier(self) -> str:
        launching = (rec.tier for rec in self.book.launching())
        ours = list(self.book.active_pods())
        names = {(pod.get("metadata") or {}).get("name") for pod in ours}
        others = [pod for pod in self.other_pods if (pod.get("metadata") or {}).get("name") not in names]
        return capacity.auto_tier(self.config, self.nodes, self.placements, [*ours, *others], launching)

    def _paused(self, namespace: str, now: float) -> bool:
        until = self.quota_paused.get(namespace)
        if until is None:
            return False
        if until <= now:
            del self.quota_paused[namespace]
            return False
        return True

    def quota_refused(self, rec: Record, namespace: str | None, message: str) -> None:
        """A create refused by ResourceQuota: back off and retry, or fail once patience is spent."""
        now = self.clock()
        self.lifecycle.metrics.quota_refusals.inc()
        rec.namespace = namespace or rec.namespace
        if rec.refused_since is None:
            rec.refused_since = now
            log.warning(
                "task %s refused by ResourceQuota, will retry: %s",
                rec.key,
                message,
                extra={"event": "quota_refused", "pod": rec.pod_name},
            )
        rec.refusals += 1
        limit = self.config.task_publish_max_retries
        waited = now - rec.refused_since
        if (limit is not None and limit >= 0 and rec.refusals > limit) or waited >= self.config.quota_pushback_timeout:
            detail = f"after {rec.refusals} refusal(s) over {waited:.0f}s" if rec.refusals > 1 else "at once"
            self.lifecycle.fail(rec, "QuotaExceeded", f"{message} (gave up {detail})", delete=False)
            return
        backoff = min(QUOTA_BACKOFF_MAX, QUOTA_BACKOFF_BASE * 2 ** (rec.refusals - 1))
        backoff *= 0.75 + random.random() / 2  # noqa: S311 - jitter, not security
        rec.not_before = now + backoff
        ns = rec.namespace or self.config.namespace
        self.quota_paused[ns] = max(self.quota_paused.get(ns, 0.0), now + min(backoff, QUOTA_BACKOFF_BASE * 4))
        self.book.requeue(rec, front=True)

    # -- clocks ---------------------------------------------------------------------------------
    def check_timeouts(self, now: float) -> None:
        limit = self.config.max_pod_pending_timeout
        unschedulable = 0
        for rec in self.book.pending():
            unschedulable += bool(rec.unschedulable)
            if rec.start_by is not None and now > rec.start_by:
                self._start_deadline_passed(rec)
            elif rec.created_at is not None and now - rec.created_at > limit:
                detail = rec.unschedulable or (pod_status(rec.pod).waiting_reason if rec.pod else None) or "not started"
                self.lifecycle.fail(rec, "PendingTimeout", f"pod stayed Pending for more than {limit}s: {detail}")
        self.lifecycle.metrics.unschedulable.set(unschedulable)
        # Safety net for a launcher that never answered (it has its own deadline).
        grace = self.config.pod_creation_timeout + self.config.kube_request_timeout + 30
        for rec in self.book.launching():
            if rec.start_by is not None and now > rec.start_by:
                self._start_deadline_passed(rec)
            elif rec.launched_at is not None and now - rec.launched_at > grace:
                self.lifecycle.fail(rec, "CreationTimeout", f"pod creation did not finish within {grace}s")
        for rec in self.book.queued():
            if rec.start_by is not None and now > rec.start_by:
                self._start_deadline_passed(rec)

    def _start_deadline_passed(self, rec: Record) -> None:
        where = {State.QUEUED: "no pod slot or quota became free", State.LAUNCHING: "the pod was still being created"}
        detail = where.get(rec.state) or rec.unschedulable or (
            pod_status(rec.pod).waiting_reason if rec.pod else None) or "the pod was still Pending"  # fmt: skip
        self.lifecycle.fail(
            rec,
            "StartDeadlineExceeded",
            "the task did not start before its Execution API token expires "
            f"([scheduler] task_queued_timeout); {detail}. Its pod was deleted so it cannot start late.",
        )

    # -- placeholders ---------------------------------------------------------------------------
    def reconcile_placeholders(self, now: float) -> None:
        creations, deletions = self.placeholders.plan(now, self.book.wanted())
        for name in deletions:
            self.effects.delete_placeholder(self.config.namespace, name)
        for name, build in creations:
            deadline = now + self.config.pod_creation_timeout
            self.launcher.submit(LaunchJob(name, build, None, deadline), PLACEHOLDER_PRIORITY)
