"""The scheduler engine: tasks in, pods out, outcomes recorded exactly once.

Threads and ownership
    One *loop* thread owns all task state (:class:`~airflow_k8s.executor.engine.records.TaskBook`); every other
    thread - the watcher, the launcher workers, the auxiliary pool that reads logs and deletes
    pods, the intake poller, the node poller - only posts messages to its inbox.  No locks guard
    task state because only one thread touches it.

Life of a task
    QUEUED -> LAUNCHING (a create is in flight) -> PENDING (the pod exists) -> RUNNING ->
    FINISHING (terminal pod seen; logs being read) -> SUCCEEDED | FAILED.
    At most ``worker_pods_max`` tasks are LAUNCHING/PENDING/RUNNING at once.

Exactly once
    * Pod names are derived from the task key, so a second create of the same try is a 409
      (see :mod:`airflow_k8s.executor.kube.launcher`).
    * A task's result is recorded in the sink *before* its pod is deleted or labelled done.
    * On start (and after every 410), the full list of this instance's pods is reconciled:
      running pods are adopted, terminal pods without a recorded result are finished, pods
      whose result exists are only cleaned up.  A scheduler killed at any point therefore
      neither loses a task nor launches it twice.
    * A pod we give up on while it is not terminal (pending timeout, fatal image error,
      creation timeout) is always deleted, so it can never start behind our back.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from airflow_k8s.executor.contract.config import ExecutorConfig
from airflow_k8s.executor.contract.errors import KubeApiError
from airflow_k8s.executor.engine.metrics import EngineMetrics
from airflow_k8s.executor.engine.placeholders import PlaceholderPool
from airflow_k8s.executor.engine.records import FINAL, Record, State, TaskBook
from airflow_k8s.executor.kube.client import KubeClient
from airflow_k8s.executor.kube.launcher import PLACEHOLDER_PRIORITY, Launcher, LaunchJob
from airflow_k8s.executor.kube.retry import RetryPolicy, TokenBucket, call_with_retry
from airflow_k8s.executor.kube.watcher import Watcher
from airflow_k8s.executor.pods import capacity
from airflow_k8s.executor.pods.podfactory import build_pod
from airflow_k8s.executor.pods.podstate import PodStatus, parse_time, pod_status
from airflow_k8s.executor.pods.templates import TemplateStore
from airflow_k8s.executor.tasks import identity
from airflow_k8s.executor.tasks.results import FAILED, SUCCESS, MemorySink, ResultSink, TaskResult
from airflow_k8s.executor.tasks.task import AUTO_TIER, Task

log = logging.getLogger(__name__)
_BATCH = 2000  # messages handled between two dispatch/timeout passes


@dataclass
class EngineOptions:
    """Knobs that are not part of airflow.cfg (tests and benchmarks shorten them)."""

    tick: float = 0.25
    timeout_check_interval: float = 1.0
    placeholder_interval: float = 1.0
    placeholder_backoff: float = 30.0
    node_refresh_interval: float = 30.0
    intake_interval: float = 0.5
    aux_workers: int = 4
    log_tail_lines: int = 20
    watch_max_backoff: float = 30.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)


def _rv(pod: dict[str, Any]) -> int:
    try:
        return int((pod.get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


class Engine:
    def __init__(
        self,
        config: ExecutorConfig,
        templates: TemplateStore,
        kube: KubeClient,
        *,
        sink: ResultSink | None = None,
        metrics: EngineMetrics | None = None,
        intake: Callable[[], list[Task]] | None = None,
        options: EngineOptions | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.templates = templates
        self.kube = kube
        self.sink: ResultSink = sink if sink is not None else MemorySink()
        self.metrics = metrics or EngineMetrics()
        self.intake = intake
        self.options = options or EngineOptions()
        self.clock = clock
        self.namespace = config.namespace
        self.inbox: queue.SimpleQueue[tuple[str, tuple[Any, ...]]] = queue.SimpleQueue()
        self.book = TaskBook()
        self.placeholders = PlaceholderPool(config, templates, backoff=self.options.placeholder_backoff)
        self.nodes: list[capacity.Node] | None = None  # None until listed (or when forbidden)
        self._placements: dict[str, capacity.Placement] = {}
        self.synced = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._heartbeat = clock()
        self._last_timeouts = self._last_placeholders = 0.0
        self._intake_busy, self._intake_scans = False, 0
        self.intake_stalled = False  # the last intake read raised (e.g. its directory is unreadable)
        self.watcher = Watcher(
            kube,
            self.namespace,
            identity.instance_selector(config.scheduler_instance_id),
            on_event=lambda kind, pod: self.post("event", kind, pod),
            on_relist=lambda items, rv: self.post("relist", items, rv),
            on_restart=lambda cause: self.metrics.watch_restarts.labels(cause=cause).inc(),
            timeout_seconds=config.watch_timeout_seconds,
            read_timeout=float(config.watch_timeout_seconds + config.kube_request_timeout),
            max_backoff=self.options.watch_max_backoff,
        )
        self.launcher = Launcher(
            kube,
            self.namespace,
            workers=config.worker_pods_creation_workers,
            bucket=TokenBucket(config.worker_pods_creation_qps, config.worker_pods_creation_burst),
            post=self.post,
            on_api_error=self.metrics.api_error,
            policy=self.options.retry,
        )
        self.aux = ThreadPoolExecutor(max_workers=self.options.aux_workers, thread_name_prefix="pod-aux")
        self._handlers: dict[str, Callable[..., None]] = {
            "event": self._on_event,
            "launched": self._on_launched,
            "submit": self._on_submit,
            "finished": self._on_finished,
            "cleaned": self._on_cleaned,
            "launch_failed": self._on_launch_failed,
            "relist": self._on_relist,
            "nodes": self._on_nodes,
            "placeholder_gone": self.placeholders.delete_done,
        }

    # -- public, thread-safe ----------------------------------------------------------------
    def post(self, kind: str, *args: Any) -> None:
        self.inbox.put((kind, args))

    def submit(self, task: Task) -> None:
        """Queue a task (idempotent: a key already known or finished is ignored)."""
        self.post("submit", task)

    def start(self) -> None:
        self._placements = capacity.tier_placements(self.config, lambda ref: self.templates.load(ref).get("spec") or {})
        self.watcher.start()
        self.launcher.start()
        self._spawn(self._loop, "engine-loop")
        if self.intake is not None:
            self._spawn(self._intake_loop, "task-intake")
        if any(t.auto for t in self.config.tiers):
            self._spawn(self._node_loop, "node-capacity")

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self.post("stop")
        self.watcher.stop(timeout)
        self.launcher.stop(timeout)
        for thread in self._threads:
            thread.join(timeout)
        self.aux.shutdown(wait=True, cancel_futures=True)

    def healthy(self, max_silence: float = 30.0) -> bool:
        return not self._stop.is_set() and self.clock() - self._heartbeat < max_silence

    def ready(self) -> bool:
        """Synced, watching, and the intake readable (a stalled intake would silently run nothing)."""
        return self.synced.is_set() and self.watcher.connected.is_set() and not self.intake_stalled

    def idle(self) -> bool:
        """Nothing queued, active, finishing or being cleaned up, and the intake has been read."""
        intake_done = self.intake is None or (self._intake_scans > 0 and not self._intake_busy)
        return (
            self.synced.is_set()
            and intake_done
            and self.book.busy() == 0
            and self.inbox.empty()
            and self.book.cleanups == 0
        )

    def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.idle():
                return True
            time.sleep(0.02)
        return self.idle()

    def snapshot(self) -> dict[str, int]:
        """Task counts by state (read from another thread: approximate, for tests and health)."""
        return {**self.book.snapshot(), "placeholders": len(self.placeholders)}

    # -- threads ------------------------------------------------------------------------------
    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                item: tuple[str, tuple[Any, ...]] | None = self.inbox.get(timeout=self.options.tick)
            except queue.Empty:
                item = None
            handled = 0
            while item is not None:
                try:
                    self._handle(item[0], *item[1])
                except Exception:
                    log.exception("engine failed handling %s", item[0])
                handled += 1
                if handled >= _BATCH:  # let dispatch and timeouts run; the rest waits in the inbox
                    break
                try:
                    item = self.inbox.get_nowait()
                except queue.Empty:
                    item = None
            now = self.clock()
            self._heartbeat = now
            if self.synced.is_set():
                self._dispatch()
                if now - self._last_timeouts >= self.options.timeout_check_interval:
                    self._last_timeouts = now
                    self._check_timeouts(now)
                if now - self._last_placeholders >= self.options.placeholder_interval:
                    self._last_placeholders = now
                    self._reconcile_placeholders(now)
            self._update_gauges()

    def _intake_loop(self) -> None:
        assert self.intake is not None
        while not self._stop.is_set():
            self._intake_busy = True
            try:
                for task in self.intake():
                    self.submit(task)
                self.intake_stalled = False
            except Exception:
                self.intake_stalled = True
                log.exception("task intake failed")
            finally:
                self._intake_busy = False
                self._intake_scans += 1
            self._stop.wait(self.options.intake_interval)

    def _node_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.post("nodes", capacity.nodes_from_api(self.kube.list_nodes()))
            except KubeApiError as exc:
                if exc.status in (401, 403):
                    log.warning("cannot list nodes (%s): tier 'auto' falls back to default_tier", exc)
                    return
                log.info("node list failed: %s", exc)
            self._stop.wait(self.options.node_refresh_interval)

    # -- messages -------------------------------------------------------------------------------
    def _handle(self, kind: str, *args: Any) -> None:
        handler = self._handlers.get(kind)
        if handler is not None:
            handler(*args)

    def _on_event(self, kind: str, pod: dict[str, Any]) -> None:
        self._observe(pod, deleted=kind == "DELETED")

    def _on_nodes(self, nodes: list[capacity.Node]) -> None:
        self.nodes = nodes

    def _on_submit(self, task: Task) -> None:
        if self.book.knows(task.key):
            return
        if self.sink.has_result(task.key):
            log.info("task %s already has a result; not relaunching", task.key)
            return
        self.book.add(Record(task.key, identity.pod_name(task.key), task, State.QUEUED, self.clock()))

    def _on_relist(self, items: list[dict[str, Any]], resource_version: str) -> None:
        try:
            listed_rv = int(resource_version)
        except ValueError:
            listed_rv = -1
        seen = set()
        for pod in items:
            seen.add((pod.get("metadata") or {}).get("name", ""))
            self._observe(pod)
        for rec in list(self.book.records.values()):
            gone = rec.pod_name not in seen and 0 <= rec.created_rv <= listed_rv
            if rec.state in (State.PENDING, State.RUNNING) and gone:
                self._fail(rec, "PodDeleted", "the pod disappeared while the watch was down")
        self.placeholders.relisted(seen)
        if not self.synced.is_set():
            log.info("initial sync: %d pods of this executor found", len(items), extra={"event": "synced"})
        self.synced.set()

    def _observe(self, pod: dict[str, Any], *, deleted: bool = False) -> None:
        metadata = pod.get("metadata") or {}
        name = metadata.get("name", "")
        labels = metadata.get("labels") or {}
        if labels.get(identity.LABEL_PLACEHOLDER) == "True":
            self.placeholders.observe(name, pod, deleted)
            return
        rec = self.book.get(name)
        if rec is None:
            if deleted or labels.get(identity.LABEL_DONE) == "True" or metadata.get("deletionTimestamp"):
                return
            rec = self._adopt(pod)
            if rec is None:
                return
        status = pod_status(pod)
        if rec.state in FINAL:
            if not deleted and not status.terminal and not status.deleting and not rec.cleaning:
                log.warning("deleting stray pod %s of finished task %s", name, rec.key)
                self._cleanup(rec, delete=True)
            return
        if rec.state is State.FINISHING:
            return
        if rec.state in (State.QUEUED, State.LAUNCHING):
            self._mark_created(rec, pod)
        rec.pod = None if deleted else pod
        if status.terminal:
            self._finish(rec, pod, status)
        elif deleted:
            self._fail(rec, "PodDeleted", "the pod was deleted before it finished (evicted, preempted or by hand)")
        elif status.phase == "Running" and rec.state is State.PENDING:
            self.book.set_state(rec, State.RUNNING)
            if rec.task is not None:
                self.metrics.start_latency.observe(max(0.0, self.clock() - rec.queued_at))
        elif status.phase == "Pending":
            if status.fatal_reason:
                self._fail(rec, status.fatal_reason, status.message or status.fatal_reason)
            else:
                if status.unschedulable and not rec.unschedulable:
                    log.warning(
                        "pod %s of task %s cannot be scheduled: %s",
                        rec.pod_name,
                        rec.key,
                        status.unschedulable,
                        extra={"event": "unschedulable", "pod": rec.pod_name},
                    )
                rec.unschedulable = status.unschedulable

    def _mark_created(self, rec: Record, pod: dict[str, Any]) -> None:
        rec.created_at = self._created_at(pod)
        rec.created_rv = _rv(pod)
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
        """A pod of this instance we did not know (a restart): track it, or just clean it up."""
        metadata = pod.get("metadata") or {}
        key = identity.key_from_annotations(metadata.get("annotations"))
        if key is None:
            log.warning("pod %s carries executor labels but no task annotations; ignoring", metadata.get("name"))
            return None
        tier = (metadata.get("labels") or {}).get(identity.LABEL_TIER)
        rec = Record(key, metadata["name"], None, State.PENDING, self.clock(), tier=tier)
        rec.created_at, rec.created_rv = self._created_at(pod), _rv(pod)
        if self.sink.has_result(key):
            # Finished before a restart; only its cleanup may be missing.
            status = pod_status(pod)
            rec.state = State.SUCCEEDED if status.phase == "Succeeded" else State.FAILED
            self.book.add(rec)
            self._cleanup(rec, delete=self._should_delete(rec.state is State.SUCCEEDED) or not status.terminal)
            return None
        self.book.add(rec)
        log.info("adopted pod %s of task %s", rec.pod_name, key, extra={"event": "adopted"})
        return rec

    def _on_launched(self, name: str, pod: dict[str, Any]) -> None:
        rec = self.book.get(name)
        if rec is None:
            return
        if rec.task is not None and rec.launched_at is not None:
            self.metrics.launched()
        if rec.state is State.LAUNCHING:
            self._mark_created(rec, pod)
            self._observe(pod)
        elif rec.state in FINAL and not rec.cleaning:
            self._cleanup(rec, delete=True)  # the create outlived our patience: remove the stray pod

    def _on_launch_failed(self, name: str, reason: str, message: str) -> None:
        if name in self.placeholders:
            log.warning("placeholder %s not created: %s %s", name, reason, message)
            self.placeholders.create_failed(name, self.clock())
            return
        rec = self.book.get(name)
        if rec is not None and rec.state is State.LAUNCHING:
            # A timed-out create may still have landed: delete by name, harmless if absent.
            self._fail(rec, reason, message, delete=reason == "CreationTimeout")

    # -- outcomes -------------------------------------------------------------------------------
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
        if success:
            self._on_finished(rec.pod_name, result)
        else:
            self.aux.submit(self._read_log_then_post, result)

    def _read_log_then_post(self, result: TaskResult) -> None:
        tail = self.options.log_tail_lines
        try:
            lines = tuple(self.kube.read_pod_log(self.namespace, result.pod_name, tail_lines=tail).splitlines()[-tail:])
        except KubeApiError as exc:
            self.metrics.api_error(exc.status, "log")
            lines = (f"(logs unavailable: {exc})",)
        self.post("finished", result.pod_name, replace(result, log_tail=lines))

    def _on_finished(self, name: str, result: TaskResult) -> None:
        rec = self.book.get(name)
        if rec is None or rec.state is not State.FINISHING or not self._record(rec, result):
            return
        success = result.state == SUCCESS
        self.book.set_state(rec, State.SUCCEEDED if success else State.FAILED)
        self._cleanup(rec, delete=self._should_delete(success))

    def _record(self, rec: Record, result: TaskResult) -> bool:
        try:
            self.sink.record(result)
        except Exception:
            log.exception("cannot record the result of %s; will retry", rec.key)
            threading.Timer(1.0, self.post, args=("finished", rec.pod_name, result)).start()
            return False
        extra = {"pod": rec.pod_name, "reason": result.reason, "exit_code": result.exit_code}
        if result.state == SUCCESS:
            self.metrics.succeeded.inc()
            log.info("task %s succeeded", rec.key, extra={"event": "task_succeeded", **extra})
        else:
            self.metrics.failed.labels(reason=result.reason).inc()
            log.warning("task %s failed: %s", rec.key, result.message, extra={"event": "task_failed", **extra})
        return True

    def _fail(self, rec: Record, reason: str, message: str, *, delete: bool = True) -> None:
        """Fail a task whose pod is not terminal (or was never created)."""
        result = TaskResult(rec.key, FAILED, reason, message, pod_name=rec.pod_name, tier=rec.tier or "")
        if not self._record(rec, result):
            return
        had_pod = rec.created_at is not None or rec.state is State.LAUNCHING
        self.book.set_state(rec, State.FAILED)
        if delete and had_pod:
            self._cleanup(rec, delete=True)
        else:
            self.book.forget(rec)

    def _should_delete(self, success: bool) -> bool:
        return self.config.delete_worker_pods if success else self.config.delete_worker_pods_on_failure

    def _cleanup(self, rec: Record, *, delete: bool) -> None:
        """Delete the pod, or label it done so no scheduler processes it again."""
        if not rec.cleaning:
            self.book.cleanups += 1
        rec.cleaning = True
        self.aux.submit(self._cleanup_job, rec.pod_name, delete)

    def _cleanup_job(self, name: str, delete: bool) -> None:
        def call() -> None:
            if delete:
                self.kube.delete_pod(self.namespace, name)
            else:
                self.kube.patch_pod_metadata(self.namespace, name, labels={identity.LABEL_DONE: "True"})

        try:
            call_with_retry(call, policy=self.options.retry, sleep=self._stop.wait, what=f"cleanup {name}")
        except KubeApiError as exc:
            if exc.status != 404 and not self._stop.is_set():
                self.metrics.api_error(exc.status, "delete" if delete else "patch")
                log.error("cleanup of pod %s failed: %s", name, exc)
        self.post("cleaned", name)

    def _on_cleaned(self, name: str) -> None:
        rec = self.book.get(name)
        if rec is not None and rec.cleaning:
            self.book.cleanups -= 1
            rec.cleaning = False
            if rec.state in FINAL:
                self.book.forget(rec)

    # -- dispatch, timeouts, placeholders ---------------------------------------------------------
    def _dispatch(self) -> None:
        room = self.config.worker_pods_max - self.book.active()
        while room > 0:
            rec = self.book.next_queued()
            if rec is None or rec.task is None:
                return
            task = rec.task
            tier = self._auto_tier() if task.overrides.tier == AUTO_TIER else task.overrides.tier
            rec.tier, rec.launched_at = tier, self.clock()
            self.book.set_state(rec, State.LAUNCHING)

            def build(task: Task = task, tier: str | None = tier) -> dict[str, Any]:
                return build_pod(task, self.config, self.templates, tier_name=tier)

            self.launcher.submit(
                LaunchJob(rec.pod_name, build, task, rec.launched_at + self.config.pod_creation_timeout)
            )
            room -= 1

    def _auto_tier(self) -> str:
        launching = (rec.tier for rec in self.book.launching())
        return capacity.auto_tier(self.config, self.nodes, self._placements, self.book.active_pods(), launching)

    def _check_timeouts(self, now: float) -> None:
        limit = self.config.max_pod_pending_timeout
        unschedulable = 0
        for rec in self.book.pending():
            unschedulable += bool(rec.unschedulable)
            if rec.created_at is not None and now - rec.created_at > limit:
                detail = rec.unschedulable or (pod_status(rec.pod).waiting_reason if rec.pod else None) or "not started"
                self._fail(rec, "PendingTimeout", f"pod stayed Pending for more than {limit}s: {detail}")
        self.metrics.unschedulable.set(unschedulable)
        # Safety net for a launcher that never answered (it has its own deadline).
        grace = self.config.pod_creation_timeout + self.config.kube_request_timeout + 30
        for rec in self.book.launching():
            if rec.launched_at is not None and now - rec.launched_at > grace:
                self._fail(rec, "CreationTimeout", f"pod creation did not finish within {grace}s")

    def _reconcile_placeholders(self, now: float) -> None:
        creations, deletions = self.placeholders.plan(now, self.book.wanted())
        for name in deletions:
            self.aux.submit(self._delete_placeholder, name)
        for name, build in creations:
            deadline = now + self.config.pod_creation_timeout
            self.launcher.submit(LaunchJob(name, build, None, deadline), PLACEHOLDER_PRIORITY)

    def _delete_placeholder(self, name: str) -> None:
        try:
            self.kube.delete_pod(self.namespace, name, grace_period=0)
        except KubeApiError as exc:
            if exc.status != 404:
                log.warning("cannot delete placeholder %s: %s", name, exc)
        self.post("placeholder_gone", name)

    def _update_gauges(self) -> None:
        counts = self.book.counts
        self.metrics.queued.set(counts[State.QUEUED])
        self.metrics.pending.set(counts[State.PENDING] + counts[State.LAUNCHING])
        self.metrics.running.set(counts[State.RUNNING])
        self.metrics.placeholders.set(len(self.placeholders))
