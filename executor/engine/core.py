"""The scheduler engine: tasks in, pods out, outcomes recorded exactly once.

Threads and ownership
    One *loop* thread owns all task state (the :class:`~airflow_k8s.executor.engine.records.TaskBook`
    inside :class:`~airflow_k8s.executor.engine.lifecycle.TaskLifecycle`); every other thread - the
    watchers (one per namespace), the launcher workers, the pool that reads logs and deletes pods,
    the intake poller, the node poller - only posts typed messages
    (:mod:`~airflow_k8s.executor.engine.messages`) to its inbox.  No locks guard task state
    because only one thread touches it.

Life of a task
    QUEUED -> LAUNCHING (a create is in flight) -> PENDING (the pod exists) -> RUNNING ->
    FINISHING (terminal pod seen; logs being read) -> SUCCEEDED | FAILED.
    At most ``worker_pods_max`` tasks are LAUNCHING/PENDING/RUNNING at once; a task refused by
    ResourceQuota goes back to QUEUED with backoff (:mod:`~airflow_k8s.executor.engine.scheduling`).

Exactly once
    * Pod names are derived from the task key and its launch, so a second create of the same
      launch is a 409 (see :mod:`~airflow_k8s.executor.kube.launcher`), while a resumed try (a
      new launch) gets a pod of its own.
    * A task's result is recorded in the sink *before* its pod is deleted or labelled done.
    * On start (and after every 410), the full list of this instance's pods is reconciled:
      running pods are adopted, terminal pods without a recorded result are finished, pods
      whose result exists are only cleaned up.  A scheduler killed at any point therefore
      neither loses a task nor launches it twice.
    * A pod we give up on while it is not terminal (pending timeout, fatal image error,
      creation timeout, start deadline, revocation) is always deleted, so it can never start
      behind our back.

Ownership (several schedulers in one namespace)
    The engine acts only on pods labelled ``airflow-worker=<scheduler_instance_id>``: it watches,
    adopts, cleans up and counts against ``worker_pods_max`` only those.  A pod that another
    scheduler relabelled to itself (Airflow's orphan adoption) is handed over, never failed or
    deleted (:mod:`~airflow_k8s.executor.engine.lifecycle`); N_min is kept once per namespace by the
    scheduler :meth:`Engine.share_warm_capacity` names the keeper
    (:mod:`~airflow_k8s.executor.engine.placeholders`).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from airflow_k8s.executor.contract.config import ExecutorConfig
from airflow_k8s.executor.contract.errors import Forbidden, KubeApiError, Unauthorized
from airflow_k8s.executor.engine import messages as m
from airflow_k8s.executor.engine.effects import PodEffects
from airflow_k8s.executor.engine.lifecycle import TaskLifecycle
from airflow_k8s.executor.engine.metrics import EngineMetrics
from airflow_k8s.executor.engine.placeholders import PlaceholderPool, WarmShare
from airflow_k8s.executor.engine.records import State
from airflow_k8s.executor.engine.scheduling import Dispatcher
from airflow_k8s.executor.kube.client import KubeClient
from airflow_k8s.executor.kube.flowcontrol import FlowControl, FlowSettings
from airflow_k8s.executor.kube.launcher import Launcher
from airflow_k8s.executor.kube.retry import RetryPolicy
from airflow_k8s.executor.kube.watcher import Watcher
from airflow_k8s.executor.pods import capacity
from airflow_k8s.executor.pods.templates import TemplateStore
from airflow_k8s.executor.tasks import identity
from airflow_k8s.executor.tasks.key import TaskKey
from airflow_k8s.executor.tasks.results import MemorySink, ResultSink
from airflow_k8s.executor.tasks.task import Task

log = logging.getLogger(__name__)
# the pods of the namespace the executor did not create (task pods and placeholders carry this label)
OTHER_PODS_SELECTOR = f"!{identity.LABEL_EXECUTOR}"
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


class _ListenerToInbox:
    """The launcher's :class:`~airflow_k8s.executor.kube.launcher.LaunchListener`, as inbox messages."""

    def __init__(self, post: Callable[[m.Message], None]) -> None:
        self.post = post

    def launched(self, name: str, pod: dict[str, Any]) -> None:
        self.post(m.Launched(name, pod))

    def launch_failed(
        self, name: str, reason: str, message: str, *, namespace: str | None = None, quota: bool = False
    ) -> None:
        self.post(m.LaunchFailed(name, reason, message, namespace, quota))


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
        on_running: Callable[[TaskKey, str], None] | None = None,
        on_released: Callable[[TaskKey, str], None] | None = None,
    ) -> None:
        self.config = config
        self.templates = templates
        self.kube = kube.scoped()  # its calls are cut at stop(): no shutdown waits on the API server
        kube = self.kube
        self.metrics = metrics or EngineMetrics()
        self.intake = intake
        self.options = options or EngineOptions()
        self.clock = clock
        self.inbox: queue.SimpleQueue[m.Message] = queue.SimpleQueue()
        self.synced = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._heartbeat = clock()
        self._last_timeouts = self._last_placeholders = 0.0
        self._intake_busy, self._intake_scans = False, 0
        self.intake_stalled = False  # the last intake read raised (e.g. its directory is unreadable)
        # One gate for every write: the API server's pushback paces them (kube/flowcontrol.py).
        self.flow = FlowControl(
            FlowSettings(cap_qps=config.worker_pods_creation_qps, cap_burst=config.worker_pods_creation_burst)
        )
        self.effects = PodEffects(
            kube,
            post=self.post,
            metrics=self.metrics,
            retry=self.options.retry,
            stop=self._stop,
            workers=self.options.aux_workers,
            flow=self.flow,
            delete_options=config.delete_options(),
        )
        self.placeholders = PlaceholderPool(config, templates, backoff=self.options.placeholder_backoff)
        self.lifecycle = TaskLifecycle(
            config,
            sink=sink if sink is not None else MemorySink(),
            metrics=self.metrics,
            effects=self.effects,
            placeholders=self.placeholders,
            clock=clock,
            on_running=on_running,
            on_released=on_released,
            log_tail_lines=self.options.log_tail_lines,
        )
        self.launcher = Launcher(
            kube,
            workers=config.creation_workers(),
            flow=self.flow,
            seen=self.lifecycle.launch_seen.__contains__,
            listener=_ListenerToInbox(self.post),
            on_api_error=self.metrics.api_error,
            policy=self.options.retry,
        )
        self.dispatcher = Dispatcher(
            config, templates, self.lifecycle, self.launcher, self.effects, self.placeholders, clock
        )
        scopes = config.namespaces()
        self.watchers = [self._watcher(scope) for scope in (scopes if scopes is not None else (None,))]
        self._unsynced = {watcher.namespace for watcher in self.watchers}

    def _watcher(self, scope: str | None) -> Watcher:
        return Watcher(
            self.kube,
            scope,
            identity.instance_selector(self.config.scheduler_instance_id),
            on_event=lambda kind, pod: self.post(m.PodEvent(kind, pod)),
            on_relist=lambda items, rv: self.post(m.Relisted(scope, items, rv)),
            on_restart=lambda cause: self.metrics.watch_restarts.labels(cause=cause).inc(),
            timeout_seconds=self.config.watch_timeout_seconds,
            read_timeout=float(self.config.watch_timeout_seconds + self.config.kube_request_timeout),
            max_backoff=self.options.watch_max_backoff,
        )

    # -- public, thread-safe ----------------------------------------------------------------
    @property
    def sink(self) -> ResultSink:
        return self.lifecycle.sink

    @property
    def book(self) -> Any:
        return self.lifecycle.book

    @property
    def nodes(self) -> list[capacity.Node] | None:
        return self.dispatcher.nodes

    def post(self, message: m.Message) -> None:
        self.inbox.put(message)

    def submit(self, task: Task, *, relaunch: bool = False) -> None:
        """Queue a task (idempotent: a key already known or recorded is ignored).

        ``relaunch`` replaces a finished pod of the same task try (Airflow's
        ``pod_launch_failure_retries``) instead of adopting it.
        """
        self.post(m.Submit(task, relaunch))

    def revoke(self, key: TaskKey, pod_name: str | None = None) -> None:
        """Forget a task (its launch with pod ``pod_name``) and delete its pod, recording nothing (``revoke_task``)."""
        self.post(m.Revoke(key, pod_name))

    def share_warm_capacity(self, share: WarmShare) -> None:
        """Set this scheduler's part in keeping N_min warm (:class:`~.placeholders.WarmShare`)."""
        self.post(m.ShareWarmCapacity(share))

    def start(self) -> None:
        self.dispatcher.placements = capacity.tier_placements(
            self.config, lambda ref: self.templates.load(ref).get("spec") or {}
        )
        for watcher in self.watchers:
            watcher.start()
        self.launcher.start()
        self._spawn(self._loop, "engine-loop")
        if self.intake is not None:
            self._spawn(self._intake_loop, "task-intake")
        if any(t.auto for t in self.config.tiers):
            self._spawn(self._node_loop, "node-capacity")

    def stop(self, timeout: float = 5.0) -> None:
        """Stop every thread; returns within ``timeout`` seconds however the API server behaves.

        The threads are told to stop first, then every API call of the engine still in flight is
        cut and new ones are refused (``Cancelled``: never retried, never recorded as a task's
        failure), so a thread blocked on a silent or dripping server returns at once; all joins
        share the one deadline.  Tasks in flight stay as they are: queued tasks stay queued, pods
        keep running, and the next scheduler adopts them.
        """
        deadline = time.monotonic() + timeout
        self._stop.set()
        self.post(m.Stop())
        for watcher in self.watchers:
            watcher.stop(0)
        self.launcher.stop(0)
        self.kube.cancel()
        for watcher in self.watchers:
            watcher.stop(max(0.0, deadline - time.monotonic()))
        self.launcher.stop(max(0.0, deadline - time.monotonic()))
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self.effects.shutdown()

    def healthy(self, max_silence: float = 30.0) -> bool:
        return not self._stop.is_set() and self.clock() - self._heartbeat < max_silence

    def ready(self) -> bool:
        """Synced, watching, and the intake readable (a stalled intake would silently run nothing)."""
        return (
            self.synced.is_set()
            and all(watcher.connected.is_set() for watcher in self.watchers)
            and not self.intake_stalled
        )

    def idle(self) -> bool:
        """Nothing queued, active, finishing or being cleaned up, and the intake has been read."""
        book = self.lifecycle.book
        intake_done = self.intake is None or (self._intake_scans > 0 and not self._intake_busy)
        return self.synced.is_set() and intake_done and book.busy() == 0 and self.inbox.empty() and book.cleanups == 0

    def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.idle():
                return True
            time.sleep(0.02)
        return self.idle()

    def snapshot(self) -> dict[str, int]:
        """Task counts by state (read from another thread: approximate, for tests and health)."""
        counts = self.lifecycle.book.counts
        return {**{state.value: counts[state] for state in State}, "placeholders": len(self.placeholders)}

    def free_slots(self) -> int:
        """How many more tasks could start now under N_max (approximate, read from another thread)."""
        book = self.lifecycle.book
        return self.config.worker_pods_max - book.active() - book.counts[State.QUEUED]

    # -- threads ------------------------------------------------------------------------------
    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                item: m.Message | None = self.inbox.get(timeout=self.options.tick)
            except queue.Empty:
                item = None
            handled = 0
            while item is not None:
                try:
                    self._handle(item)
                except Exception:
                    log.exception("engine failed handling %s", type(item).__name__)
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
                self.dispatcher.dispatch()
                if now - self._last_timeouts >= self.options.timeout_check_interval:
                    self._last_timeouts = now
                    self.dispatcher.check_timeouts(now)
                if now - self._last_placeholders >= self.options.placeholder_interval:
                    self._last_placeholders = now
                    self.dispatcher.reconcile_placeholders(now)
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
                nodes = capacity.nodes_from_api(self.kube.list_nodes())
            except (Unauthorized, Forbidden) as exc:
                log.warning("cannot list nodes (%s): tier 'auto' falls back to default_tier", exc)
                return
            except KubeApiError as exc:
                log.info("node list failed: %s", exc)
            else:
                self.post(m.NodesListed(nodes, self._other_pods()))
            self._stop.wait(self.options.node_refresh_interval)

    def _other_pods(self) -> tuple[dict[str, Any], ...]:
        """Bound, running pods of the executor's namespaces that it did not create (:class:`m.NodesListed`).

        The scheduler's Role may list pods there; pods of other namespaces stay unseen (the estimate is then
        optimistic on nodes shared with them).  A failed list counts nothing rather than stopping ``auto``.
        """
        found: list[dict[str, Any]] = []
        for namespace in self.config.namespaces() or (None,):
            try:  # only pods the executor did not create (its own it knows from the watch): a small list
                listed = self.kube.list_pods(namespace, label_selector=OTHER_PODS_SELECTOR)
            except KubeApiError as exc:
                log.info("pod list for node capacity failed: %s", exc)
                continue
            found += capacity.occupying(listed.items)
        return tuple(found)

    # -- messages -------------------------------------------------------------------------------
    def _handle(self, message: m.Message) -> None:
        life = self.lifecycle
        match message:
            case m.PodEvent(kind, pod):
                life.observe(pod, deleted=kind == "DELETED")
            case m.Launched(name, pod):
                life.launched(name, pod)
            case m.LaunchFailed():
                self._launch_failed(message)
            case m.Finished(name, result):
                life.finished(name, result)
            case m.Cleaned(name):
                life.cleaned(name)
            case m.Submit(task, relaunch):
                life.submit(task, relaunch=relaunch)
            case m.Revoke(key, pod_name):
                life.revoke(key, pod_name)
            case m.Relisted(scope, items, rv):
                self._relisted(scope, items, rv)
            case m.NodesListed(nodes, others):
                self.dispatcher.nodes = nodes
                self.dispatcher.other_pods = others
            case m.PlaceholderGone(name):
                self.placeholders.delete_done(name)
            case m.ShareWarmCapacity(share):
                self.placeholders.share = share
                self.metrics.placeholder_keeper.set(1 if share.keeper else 0)
            case m.OwnerChecked(name, found):
                life.owner_checked(name, found)
            case m.Stop():
                pass

    def _relisted(self, scope: str | None, items: list[dict[str, Any]], resource_version: str) -> None:
        self.lifecycle.relisted(scope, items, resource_version)
        self._unsynced.discard(scope)
        if not self._unsynced and not self.synced.is_set():
            log.info("initial sync: %d pods of this executor found", len(items), extra={"event": "synced"})
            self.synced.set()

    def _launch_failed(self, failure: m.LaunchFailed) -> None:
        if failure.name in self.placeholders:
            log.warning("placeholder %s not created: %s %s", failure.name, failure.reason, failure.message)
            self.placeholders.create_failed(failure.name, self.clock())
            return
        rec = self.lifecycle.book.get(failure.name)
        if rec is None:
            return
        if rec.state is not State.LAUNCHING:
            self.lifecycle.launch_abandoned(failure.name, failure.reason)
            return
        rec.launch_pending = False
        self.lifecycle.launch_seen.discard(failure.name)
        if failure.quota:
            self.dispatcher.quota_refused(rec, failure.namespace, failure.message)
            return
        # A timed-out create may still have landed: delete by name, harmless if absent.
        rec.namespace = failure.namespace or rec.namespace
        self.lifecycle.fail(rec, failure.reason, failure.message, delete=failure.reason == "CreationTimeout")

    def _update_gauges(self) -> None:
        counts = self.lifecycle.book.counts
        self.metrics.queued.set(counts[State.QUEUED])
        self.metrics.pending.set(counts[State.PENDING] + counts[State.LAUNCHING])
        self.metrics.running.set(counts[State.RUNNING])
        self.metrics.placeholders.set(len(self.placeholders))
        flow = self.flow
        self.metrics.api_pace.set(flow.rate or 0.0)
        self.metrics.api_window.set(flow.window)
        self.metrics.api_writes.set(flow.answered)
        self.metrics.api_writes_throttled.set(flow.throttled)
        self.metrics.api_write_signals.set(flow.signals)
