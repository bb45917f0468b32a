"""What each observation means for a task: the record state machine, outcomes and cleanup.

Owned by the engine's loop thread (:mod:`~airflow_k8s.executor.engine.core`); nothing here blocks
on the API - slow work goes to :class:`~airflow_k8s.executor.engine.effects.PodEffects`, whose
jobs answer with messages.

Exactly once:

* A task's result is recorded in the sink *before* its pod is deleted or labelled done, so a
  restart finds either the result or the terminal pod, never neither.
* Pods seen without a record (a restart, or pods an Airflow scheduler adopted from a dead one)
  are adopted: running ones tracked, terminal ones finished, ones with a recorded result only
  cleaned up.
* A pod given up on while not terminal (pending timeout, fatal image error, creation timeout,
  start deadline, revocation) is always deleted, so it can never start behind our back.
* A relaunch (Airflow's ``pod_launch_failure_retries``) asked for while the failed pod is still
  being cleaned up waits for that cleanup, then replaces the pod; it is never dropped.
* Another *launch* of the same task try (a deferred task resumed, a rescheduled sensor's next
  poke: :mod:`~airflow_k8s.executor.tasks.identity`) is a record and a pod of its own, whatever
  state the earlier launch's record or pod is in; its outcome carries its own pod name.
* A pod deleted before it finished (gone, once a GET confirms it: see below) fails its task
  with the cluster's reason: the pod's ``DisruptionTarget`` condition, then its events (a
  preempted pod names its preemptor).

Ownership (several schedulers in one namespace):

* A pod that leaves this scheduler's watch (a DELETED event, or missing from a relist) is not
  assumed deleted: a label-selector watch reports a pod whose ``airflow-worker`` label now names
  another scheduler - one that adopted it, believing this one dead - exactly like a deletion.
  One GET decides: gone, and the task fails with ``PodDeleted`` as before; still there and
  labelled for another scheduler, and the task is *handed over*: forgotten without a result,
  its pod neither deleted nor labelled, ``on_released`` told.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from airflow_k8s.executor.contract.config import ExecutorConfig
from airflow_k8s.executor.engine.effects import PodEffects
from airflow_k8s.executor.engine.metrics import EngineMetrics
from airflow_k8s.executor.engine.placeholders import PlaceholderPool
from airflow_k8s.executor.engine.records import FINAL, Record, State, TaskBook
from airflow_k8s.executor.pods.podstate import PodStatus, disruption, parse_time, pod_status
from airflow_k8s.executor.tasks import identity
from airflow_k8s.executor.tasks.key import TaskKey
from airflow_k8s.executor.tasks.results import FAILED, SUCCESS, ResultSink, TaskResult
from airflow_k8s.executor.tasks.task import Task

log = logging.getLogger(__name__)
START_DEADLINE_MARGIN = 30.0  # seconds before the workload token expires by which a pod must run


def resource_version(pod: dict[str, Any]) -> int:
    try:
        return int((pod.get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


class TaskLifecycle:
    def __init__(
        self,
        config: ExecutorConfig,
        *,
        sink: ResultSink,
        metrics: EngineMetrics,
        effects: PodEffects,
        placeholders: PlaceholderPool,
        clock: Callable[[], float],
        on_running: Callable[[TaskKey, str], None] | None = None,
        on_released: Callable[[TaskKey, str], None] | None = None,
        log_tail_lines: int = 20,
    ) -> None:
        self.config = config
        self.sink = sink
        self.metrics = metrics
        self.effects = effects
        self.placeholders = placeholders
        self.clock = clock
        self.on_running = on_running
        self.on_released = on_released
        self.log_tail_lines = log_tail_lines
        self.book = TaskBook()
        self.relaunch_after_cleanup: dict[TaskKey, Task] = {}  # relaunches waiting for the old record to go
        self.fatal_reasons = frozenset(config.worker_pod_pending_fatal_container_state_reasons)
        # Pods seen on the watch while their create was still in flight; read by the launcher's threads
        # (a set membership test), so a retry never creates again what already exists or existed.
        self.launch_seen: set[str] = set()

    # -- intake ---------------------------------------------------------------------------
    def submit(self, task: Task, *, relaunch: bool = False) -> None:
        known = self.book.by_key.get(task.key)
        if known is not None and known.launch == task.launch:
            if relaunch and known.state in FINAL:  # its failed pod is still being cleaned up: relaunch after
                self.relaunch_after_cleanup[task.key] = task
            return
        if self.book.get(task.pod_name) is not None:  # this launch is tracked already (adopted, or earlier)
            return
        if not relaunch and self.sink.has_result(task.key):
            log.info("task %s already has a result; not relaunching", task.key)
            return
        now = self.clock()
        rec = Record(task.key, task.pod_name, task, State.QUEUED, now, relaunch=relaunch, launch=task.launch)
        if task.start_deadline is not None:
            remaining = (task.start_deadline - datetime.now(UTC)).total_seconds() - START_DEADLINE_MARGIN
            rec.start_by = now + remaining
        self.book.add(rec)

    def revoke(self, key: TaskKey, pod_name: str | None = None) -> None:
        """Forget ``key`` (its launch with pod ``pod_name`` when given) without a result; delete its pod if
        one may exist (also one still being created)."""
        self.relaunch_after_cleanup.pop(key, None)
        rec = self.book.get(pod_name) if pod_name else self.book.by_key.get(key)
        if rec is None:  # e.g. adopted but not yet seen: delete by name, harmless if absent
            self.effects.cleanup(self.config.namespace, pod_name or identity.pod_name(key), delete=True)
            return
        if rec.state in FINAL:
            return
        log.info("revoking task %s", key, extra={"event": "revoked", "pod": rec.pod_name})
        had_pod = rec.state is not State.QUEUED
        self.book.set_state(rec, State.FAILED)  # final without a recorded result: never reported
        if had_pod:
            self.cleanup(rec, delete=True)
        else:
            self._forget(rec)

    # -- observations -----------------------------------------------------------------------
    def observe(self, pod: dict[str, Any], *, deleted: bool = False) -> None:
        metadata = pod.get("metadata") or {}
        name = metadata.get("name", "")
        labels = metadata.get("labels") or {}
        if labels.get(identity.LABEL_PLACEHOLDER) == "True":
            self.placeholders.observe(name, pod, deleted)
            return
        uid = metadata.get("uid")
        if uid is not None and uid in self.book.gone:
            # A late event of a pod whose task is finished and forgotten.  Once the pod is deleted or
            # labelled done, the watch is past every event that could bring it back: forget it too.
            if deleted or labels.get(identity.LABEL_DONE) == "True":
                del self.book.gone[uid]
            return
        rec = self.book.get(name)
        if rec is None:
            if deleted or labels.get(identity.LABEL_DONE) == "True" or metadata.get("deletionTimestamp"):
                return
            rec = self._adopt(pod)
            if rec is None:
                return
        if rec.uid is not None and uid is not None and uid != rec.uid:
            return  # another incarnation of the same name (a relaunch's predecessor)
        if uid is not None and uid == rec.uid and (deleted or labels.get(identity.LABEL_DONE) == "True"):
            rec.pod_final = True  # no event of this pod can follow: its UID need not be remembered
        if rec.relaunch and rec.state is State.LAUNCHING:
            rec.early = (pod, deleted)  # old or new incarnation: decided when the create answers
            return
        status = pod_status(pod)
        if rec.state in FINAL:
            if not deleted and not status.terminal and not status.deleting and not rec.cleaning:
                log.warning("deleting stray pod %s of finished task %s", name, rec.key)
                self.cleanup(rec, delete=True)
            return
        if rec.state is State.FINISHING:
            return
        if rec.state in (State.QUEUED, State.LAUNCHING):
            self._mark_created(rec, pod)
        if deleted:
            rec.pod = pod  # its last state, for the verdict
            self._vanished(rec, "the pod was deleted before it finished (evicted, preempted or by hand)")
            return
        rec.pod = pod
        if status.terminal:
            self._finish(rec, pod, status)
        elif status.phase == "Running" and rec.state is State.PENDING:
            self.book.set_state(rec, State.RUNNING)
            if rec.task is not None:
                self.metrics.start_latency.observe(max(0.0, self.clock() - rec.queued_at))
            if self.on_running is not None:
                self.on_running(rec.key, rec.pod_name)
        elif status.phase == "Pending":
            self._pending(rec, status)

    def _pending(self, rec: Record, status: PodStatus) -> None:
        fatal = status.fatal_reason(self.fatal_reasons)
        if fatal is not None:
            self.fail(rec, fatal[0], fatal[1] or fatal[0])
            return
        if status.unschedulable and not rec.unschedulable:
            log.warning(
                "pod %s of task %s cannot be scheduled: %s",
                rec.pod_name,
                rec.key,
                status.unschedulable,
                extra={"event": "unschedulable", "pod": rec.pod_name},
            )
        rec.unschedulable = status.unschedulable

    def relisted(self, scope: str | None, items: list[dict[str, Any]], listed_version: str) -> None:
        """Reconcile with a full list of ``scope`` (a namespace, or None for all namespaces)."""
        try:
            listed_rv = int(listed_version)
        except ValueError:
            listed_rv = -1
        seen = set()
        for pod in items:
            seen.add((pod.get("metadata") or {}).get("name", ""))
            self.observe(pod)
        for rec in list(self.book.records.values()):
            in_scope = scope is None or rec.namespace == scope
            gone = rec.pod_name not in seen and 0 <= rec.created_rv <= listed_rv
            if in_scope and gone and rec.state in (State.PENDING, State.RUNNING):
                self._vanished(rec, "the pod disappeared while the watch was down")
        if scope in (None, self.config.namespace):
            self.placeholders.relisted(seen)

    # -- ownership ----------------------------------------------------------------------------
    def _vanished(self, rec: Record, message: str) -> None:
        """The pod left this scheduler's watch: ask the API whether it is gone or handed over."""
        if rec.vanished is None:
            rec.vanished = message
            self.effects.check_owner(self._namespace(rec), rec.pod_name)

    def owner_checked(self, name: str, found: dict[str, Any] | None) -> None:
        """The verdict on a pod that left the watch: ``found`` is what a GET returned (None: 404)."""
        rec = self.book.get(name)
        if rec is None or rec.vanished is None:
            return
        message, rec.vanished = rec.vanished, None
        if rec.state in FINAL or rec.state is State.FINISHING:
            return
        metadata = (found or {}).get("metadata") or {}
        same_pod = found is not None and (rec.uid is None or metadata.get("uid") == rec.uid)
        if same_pod and found is not None:
            labels = metadata.get("labels") or {}
            owner = labels.get(identity.LABEL_INSTANCE, "")
            if labels.get(identity.LABEL_EXECUTOR) != "True" or owner != self.config.scheduler_instance_id:
                self._release(rec, owner)
            else:  # still ours (it came back into the watch meanwhile)
                self.observe(found)
            return
        last = rec.pod or {}
        status = pod_status(last)
        rec.pod = None
        if status.terminal:
            self._finish(rec, last, status)
        elif found is None:  # gone: fail with the cluster's reason (fail_deleted)
            self.fail_deleted(rec, last, message)
        else:  # another incarnation of the name, which is not this record's to delete
            self.fail(rec, "PodDeleted", message, delete=False)

    def _release(self, rec: Record, owner: str) -> None:
        """Hand a task over to the scheduler that now owns its pod: no result, no cleanup, no event."""
        log.warning(
            "pod %s of task %s now belongs to scheduler %r (it adopted the pod); handing the task over",
            rec.pod_name,
            rec.key,
            owner,
            extra={"event": "handed_over", "pod": rec.pod_name},
        )
        self.metrics.handed_over.inc()
        self.book.forget(rec, gone=False)
        if self.on_released is not None:
            self.on_released(rec.key, owner)

    def _mark_created(self, rec: Record, pod: dict[str, Any]) -> None:
        if rec.launch_pending:
            self.launch_seen.add(rec.pod_name)
        rec.created_at = self._created_at(pod)
        rec.created_rv = resource_version(pod)
        metadata = pod.get("metadata") or {}
        rec.namespace = metadata.get("namespace") or rec.namespace
        rec.uid = metadata.get("uid") or rec.uid
        self.book.set_state(rec, State.PENDING)

    def _created_at(self, pod: dict[str, Any]) -> float:
        """The pod's creation time on our monotonic clock, from its creationTimestamp.

        A pod adopted after a restart keeps the pending time it already spent, so a restart
        never grants a stuck pod a fresh ``max_pod_pending_timeout``.
        """
        created = parse_time((pod.get("metadata") or {}).get("creationTimestamp"))
        age = (datetime.now(UTC) - created).total_seconds() if created else 0.0
        return self.clock() - max(0.0, age)

    def _adopt(self, pod: dict[str, Any]) -> Record | None:
        """A pod of this instance we did not know (a restart, an adoption): track it, or clean it up."""
        metadata = pod.get("metadata") or {}
        key = identity.key_from_annotations(metadata.get("annotations"))
        if key is None:
            log.warning("pod %s carries executor labels but no task annotations; ignoring", metadata.get("name"))
            return None
        tier = (metadata.get("labels") or {}).get(identity.LABEL_TIER)
        rec = Record(key, metadata["name"], None, State.PENDING, self.clock(), namespace=metadata.get("namespace"))
        rec.tier, rec.launch = tier, identity.launch_from_annotations(metadata.get("annotations"))
        rec.created_at, rec.created_rv = self._created_at(pod), resource_version(pod)
        if self.sink.has_result(key):
            # Finished before a restart; only its cleanup may be missing.
            status = pod_status(pod)
            rec.state = State.SUCCEEDED if status.phase == "Succeeded" else State.FAILED
            self.book.add(rec)
            self.cleanup(rec, delete=self._should_delete(rec.state is State.SUCCEEDED) or not status.terminal)
            return None
        self.book.add(rec)
        log.info("adopted pod %s of task %s", rec.pod_name, key, extra={"event": "adopted"})
        return rec

    def launched(self, name: str, pod: dict[str, Any]) -> None:
        self.launch_seen.discard(name)
        rec = self.book.get(name)
        if rec is None:
            return
        rec.launch_pending = False
        if rec.launched_at is not None:  # a task's launch (adopted pods were never launched here)
            self.metrics.launched()
        if rec.state is State.LAUNCHING:
            self._mark_created(rec, pod)
            early, rec.early = rec.early, None
            self.observe(pod)
            if early is not None and (early[0].get("metadata") or {}).get("uid") == rec.uid:
                self.observe(early[0], deleted=early[1])
        elif rec.state in FINAL:
            # Given up on (or revoked) while the create was in flight: the pod exists now, remove it.
            metadata = pod.get("metadata") or {}
            rec.namespace = metadata.get("namespace") or rec.namespace
            rec.uid = metadata.get("uid") or rec.uid
            if rec.cleaning:  # a delete already ran, maybe before the pod existed: delete again
                self.effects.cleanup(self._namespace(rec), rec.pod_name, delete=True)
            else:
                self.cleanup(rec, delete=True)

    def launch_abandoned(self, name: str, reason: str) -> None:
        """A create answered with a failure for a record already given up on (or revoked)."""
        self.launch_seen.discard(name)
        rec = self.book.get(name)
        if rec is None or rec.state not in FINAL or not rec.launch_pending:
            return
        rec.launch_pending = False
        if reason == "CreationTimeout":  # it may have landed anyway: delete by name
            self.cleanup(rec, delete=True)
        elif not rec.cleaning:
            self._forget(rec)

    # -- outcomes ---------------------------------------------------------------------------
    def _finish(self, rec: Record, pod: dict[str, Any], status: PodStatus) -> None:
        self.book.set_state(rec, State.FINISHING)
        success = status.phase == "Succeeded"
        result = TaskResult(
            key=rec.key,
            state=SUCCESS if success else FAILED,
            reason="Completed" if success else (status.reason or "Error"),
            message=status.message or "",
            exit_code=status.exit_code,
            pod_name=rec.pod_name,
            tier=rec.tier or (pod.get("metadata", {}).get("labels") or {}).get(identity.LABEL_TIER, ""),
            node=status.node_name,
            started_at=status.started_at,
            finished_at=status.finished_at or datetime.now(UTC),
        )
        if success and not (rec.task is not None and rec.task.log_tail_on_success):
            self.finished(rec.pod_name, result)
        else:
            self.effects.read_log_then_finish(self._namespace(rec), result, self.log_tail_lines)

    def finished(self, name: str, result: TaskResult) -> None:
        rec = self.book.get(name)
        if rec is None or rec.state is not State.FINISHING or not self.record(rec, result):
            return
        success = result.state == SUCCESS
        self.book.set_state(rec, State.SUCCEEDED if success else State.FAILED)
        if rec.give_up == "forget" and not rec.launch_pending:
            self._forget(rec)
        else:
            self.cleanup(rec, delete=rec.give_up == "delete" or self._should_delete(success))

    def record(self, rec: Record, result: TaskResult) -> bool:
        """Record ``result`` in the sink (True), or log and let a timer retry it (False)."""
        try:
            self.sink.record(result)
        except Exception:
            log.exception("cannot record the result of %s; will retry", rec.key)
            self.effects.retry_later(rec.pod_name, result)
            return False
        extra = {"pod": rec.pod_name, "reason": result.reason, "exit_code": result.exit_code}
        if self.config.logs_task_metadata:
            extra.update(identity.task_annotations(rec.key))
        if result.state == SUCCESS:
            self.metrics.succeeded.inc()
            log.info("task %s succeeded", rec.key, extra={"event": "task_succeeded", **extra})
        else:
            self.metrics.failed.labels(reason=result.reason).inc()
            log.warning("task %s failed: %s", rec.key, result.message, extra={"event": "task_failed", **extra})
        return True

    def fail(self, rec: Record, reason: str, message: str, *, delete: bool = True) -> None:
        """Fail a task whose pod is not terminal (or was never created): record, then delete or forget.

        ``delete=False`` says no pod can exist (the API refused the create).
        """
        has_pod = delete and (rec.created_at is not None or rec.state is State.LAUNCHING)
        rec.give_up = "delete" if has_pod else ("forget" if not rec.launch_pending else "delete")
        self.book.set_state(rec, State.FINISHING)
        result = TaskResult(rec.key, FAILED, reason, message, pod_name=rec.pod_name, tier=rec.tier or "")
        self.finished(rec.pod_name, result)

    def fail_deleted(self, rec: Record, pod: dict[str, Any], fallback: str) -> None:
        """Fail a task whose pod was deleted before it finished, with the cluster's reason for it.

        The pod's ``DisruptionTarget`` condition names the cause at once (``Preempted``,
        ``Evicted``...); the pod's events, read off the loop thread, then say more - the
        scheduler's "Preempted by ..." names the preemptor.  The pod is gone: nothing to delete.
        """
        reason, message = disruption(pod) or ("PodDeleted", fallback)
        rec.give_up = "forget" if not rec.launch_pending else "delete"
        self.book.set_state(rec, State.FINISHING)
        result = TaskResult(rec.key, FAILED, reason, message, pod_name=rec.pod_name, tier=rec.tier or "")
        self.effects.explain_deletion_then_finish(self._namespace(rec), result, rec.uid)

    def _should_delete(self, success: bool) -> bool:
        return self.config.delete_worker_pods if success else self.config.delete_failed_pods()

    def _namespace(self, rec: Record) -> str:
        return rec.namespace or self.config.namespace

    def cleanup(self, rec: Record, *, delete: bool) -> None:
        """Delete the pod, or label it done so no scheduler processes it again."""
        if not rec.cleaning:
            self.book.cleanups += 1
        rec.cleaning = True
        self.effects.cleanup(self._namespace(rec), rec.pod_name, delete=delete)

    def _forget(self, rec: Record) -> None:
        self.launch_seen.discard(rec.pod_name)
        self.book.forget(rec)
        waiting = self.relaunch_after_cleanup.pop(rec.key, None)
        if waiting is not None:
            self.submit(waiting, relaunch=True)

    def cleaned(self, name: str) -> None:
        rec = self.book.get(name)
        if rec is not None and rec.cleaning:
            self.book.cleanups -= 1
            rec.cleaning = False
            # A record whose create is still in flight stays until it answers (launched /
            # launch_abandoned), so the pod it may yet create is deleted, not adopted.
            if rec.state in FINAL and not rec.launch_pending:
                self._forget(rec)
