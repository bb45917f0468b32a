"""The scheduler + kubelet simulation: one background thread, a time-ordered heap, store events as input.

Like the real control plane it learns about pods and nodes from the store's event stream (an in-process watcher),
so API writes never block on it.  Per pod (see :mod:`.lifecycle` for the exact status written)::

    created --schedule_delay--> bound to a node (or Unschedulable, retried whenever capacity frees or nodes change;
    higher-priority pods may preempt) --start_delay--> Running (or stuck Pending on an image/config error)
    --run_seconds--> Succeeded / Failed (restartPolicy Always/OnFailure restart the container instead)

Deleting a bound, running pod with a deletion delay configured shows deletionTimestamp first and disappears after
min(deletion_delay, grace period) -- the time its containers take to stop; terminal and unbound pods vanish at once
(that part is decided by the API handler).  A second DELETE with a shorter grace period brings removal forward.
Terminal pods free their node resources, as with the real scheduler.  With a process mode (:mod:`.process_kubelet`)
pods run real processes instead of scripted behaviours.

Other control loops that live on the simulation's clock use :meth:`Kubelet.call_later` (e.g. the quota controller)
and ``pod_hooks`` (called with every pod event, under the kubelet lock).

Thread safety: every state change happens under ``self._lock``; lock order is kubelet -> store -> watcher queue.
Store events are drained only while holding that lock, so they are handled strictly in resourceVersion order.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from . import lifecycle
from .behavior import HANG, Behavior, BehaviorPolicy, default_behavior
from .config import ClusterConfig
from .errors import ApiError
from .kubelet_controls import ControlsMixin
from .nodes import NodeView
from .pods import DEFAULT_SCHEDULER, pod_requests, rfc3339
from .process_kubelet import ProcessMixin
from .processes import ProcessMode, ProcessRunner
from .recorder import EventRecorder
from .scheduler import NodeState, PodState
from .scheduling import SchedulingMixin
from .store import Store
from .watchers import ADDED, DELETED, WatchEvent

_MAX_BATCH = 2000


class Kubelet(SchedulingMixin, ProcessMixin, ControlsMixin):
    def __init__(
        self, store: Store, config: Callable[[], ClusterConfig], process_mode: ProcessMode | None = None
    ) -> None:
        self.store = store
        self._config = config
        self.behavior: BehaviorPolicy = default_behavior
        self.errors: list[str] = []  # behaviour callables that raised, unexpected failures
        self._lock = threading.RLock()
        self._inbox = store.subscribe(["pods", "nodes", "secrets", "configmaps"])
        self._heap: list[tuple[float, int, str, str, int]] = []  # (due, seq, action, uid, epoch)
        self._seq = itertools.count()
        self._calls: dict[int, Callable[[], None]] = {}  # seq -> call_later callable
        self.pod_hooks: list[Callable[[WatchEvent], None]] = []
        self._pods: dict[str, PodState] = {}
        self._by_key: dict[tuple[str, str], str] = {}
        self._nodes: dict[str, NodeState] = {}
        self._unschedulable: dict[str, PodState] = {}
        self._logs: dict[str, list[str]] = {}
        self._recorder = EventRecorder(store, config)
        self._retry_pending = False
        self._paused = False
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="fakekube-kubelet", daemon=True)
        self._processes: ProcessRunner | None = None
        self._config_waiting: set[str] = set()
        if process_mode is not None:
            self.enable_processes(process_mode)

    # ------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping = True
        self._inbox.wake()
        self._thread.join(timeout=5)
        self.store.unsubscribe(self._inbox)
        if self._processes is not None:
            self._processes.stop_all()

    def _loop(self) -> None:
        while not self._stopping:
            self._inbox.wait(self._next_timeout())
            try:
                with self._lock:
                    self._drain()
                    if not self._paused:
                        self._run_due(time.monotonic())
            except Exception:  # pragma: no cover - keep the simulation alive, report the bug
                self.errors.append(traceback.format_exc())

    def _next_timeout(self) -> float:
        with self._lock:
            if self._paused or not self._heap:
                return 0.5
            return min(0.5, max(0.0, self._heap[0][0] - time.monotonic()))

    def _drain(self) -> None:
        for event in self._inbox.take(0):
            self._on_event(event)

    def _run_due(self, now: float, *, force: bool = False) -> int:
        done = 0
        while self._heap and (force or self._heap[0][0] <= now) and done < _MAX_BATCH:
            _, seq, action, uid, epoch = heapq.heappop(self._heap)
            done += 1
            if action == "call":
                self._calls.pop(seq)()
                continue
            if action == "retry":
                self._retry_pending = False
                self._retry_unschedulable()
                continue
            state = self._pods.get(uid)
            if state is not None and state.epoch == epoch:
                self._act(action, state)
        return done

    def call_later(self, delay: float, fn: Callable[[], None]) -> None:
        """Run ``fn`` (under the kubelet lock) ``delay`` seconds from now on the simulation's clock: paused with it,
        run early by :meth:`flush`."""
        with self._lock:
            seq = next(self._seq)
            self._calls[seq] = fn
            heapq.heappush(self._heap, (time.monotonic() + delay, seq, "call", "", 0))
        self._inbox.wake()

    def _push(self, delay: float, action: str, state: PodState | None = None) -> None:
        if state is not None:
            state.epoch += 1
        uid, epoch = (state.uid, state.epoch) if state is not None else ("", 0)
        heapq.heappush(self._heap, (time.monotonic() + delay, next(self._seq), action, uid, epoch))

    def _act(self, action: str, state: PodState) -> None:
        if action == "schedule":
            self._try_schedule(state)
        elif action == "start":
            self._start(state)
        elif action == "finish":
            self._finish(state)
        elif action == "remove":
            if not self._kill_process(state):  # a live process: removed when it has exited
                self._delete(state, graceful=False)
        elif action == "kill":
            self._kill_process(state)

    # --------------------------------------------------------- store events
    def _on_event(self, event: WatchEvent) -> None:
        obj = event.new.obj
        if event.kind in ("secrets", "configmaps"):
            self._config_changed(obj["metadata"].get("namespace", ""))
            return
        if event.kind == "nodes":
            name = obj["metadata"]["name"]
            if event.type == DELETED:
                self._nodes.pop(name, None)
            else:
                view = NodeView.from_object(obj)
                if name in self._nodes:
                    self._nodes[name].view = view
                else:
                    self._nodes[name] = NodeState(view)
                self._request_retry()
            return
        uid = obj["metadata"]["uid"]
        if event.type == ADDED:
            self._admit(obj)
        elif event.type == DELETED:
            self._forget(uid)
        elif obj["metadata"].get("deletionTimestamp") and uid in self._pods:
            grace = obj["metadata"].get("deletionGracePeriodSeconds")
            before = event.prev.obj["metadata"].get("deletionGracePeriodSeconds") if event.prev else None
            if self._pods[uid].stage != "terminating" or grace != before:
                self._begin_termination(self._pods[uid], obj)
        for hook in self.pod_hooks:
            hook(event)

    def _admit(self, pod: dict[str, Any]) -> None:
        meta, spec = pod["metadata"], pod["spec"]
        try:
            behavior = self.behavior(pod)
        except Exception:
            self.errors.append(f"behavior failed for {meta['namespace']}/{meta['name']}:\n{traceback.format_exc()}")
            behavior = Behavior()
        state = PodState(
            meta["namespace"],
            meta["name"],
            meta["uid"],
            time.monotonic(),
            int(spec.get("priority") or 0),
            pod_requests(pod),
            spec,
            behavior,
        )
        self._pods[state.uid] = state
        self._by_key[state.key] = state.uid
        if spec.get("nodeName") or spec.get("schedulerName", DEFAULT_SCHEDULER) == DEFAULT_SCHEDULER:
            self._push(self._config().schedule_delay, "schedule", state)

    def _forget(self, uid: str) -> None:
        state = self._pods.pop(uid, None)
        if state is None:
            return
        if self._by_key.get(state.key) == uid:
            del self._by_key[state.key]
        self._unschedulable.pop(uid, None)
        self._logs.pop(uid, None)
        if self._processes is not None:
            self._processes.discard(uid)
        self._release(state)
        for waiting in self._unschedulable.values():
            waiting.victims.discard(state.key)

    # ------------------------------------------------------------- kubelet
    def _start(self, state: PodState) -> None:
        if state.stage != "bound":
            return
        if self._processes is not None:
            self._start_process(state)
            return
        behavior = state.behavior
        image = str((state.spec.get("containers") or [{}])[0].get("image", ""))
        if behavior.stuck_waiting:
            state.stage = "waiting"
            reason, message = behavior.waiting(image)
            self._write(state, lifecycle.waiting_mutation(reason, message))
            if reason in ("ErrImagePull", "InvalidImageName"):
                self._emit(state, "Pulling", f'Pulling image "{image}"')
                self._emit(state, "Failed", message, warning=True)
            self._emit(
                state, "Failed", f"Error: {reason}" if reason != "CreateContainerConfigError" else message, warning=True
            )
            return
        state.stage, state.started_at = "running", time.time()
        self._write(state, lifecycle.running_mutation(state.started_at))
        self._logs[state.uid] = list(behavior.log)
        for container in state.spec.get("containers") or []:
            self._emit(state, "Started", f"Started container {container['name']}")
        if behavior.outcome != HANG:
            self._push(self._run_seconds(state), "finish", state)

    def _run_seconds(self, state: PodState) -> float:
        run = state.behavior.run_seconds
        return self._config().run_seconds if run is None else run

    def _finish(self, state: PodState) -> None:
        if state.stage != "running":
            return
        code, reason = state.behavior.final_exit_code, state.behavior.terminated_reason
        policy = state.spec.get("restartPolicy", "Always")
        if policy == "Always" or (policy == "OnFailure" and code != 0):
            state.restarts += 1
            self._write(state, lifecycle.restart_mutation(code, reason, state.restarts))
            if code != 0:
                self._emit(state, "BackOff", "Back-off restarting failed container", warning=True)
            self._push(self._run_seconds(state), "finish", state)
            return
        state.stage = "terminated"
        if code != 0:
            self._logs.setdefault(state.uid, []).append(f"exit code {code}")
        self._write(state, lifecycle.terminated_mutation(code, reason))
        self._release(state)

    def _begin_termination(self, state: PodState, pod: dict[str, Any]) -> None:
        previous, state.stage = state.stage, "terminating"
        if previous in ("bound", "waiting", "running"):
            for container in state.spec.get("containers") or []:
                self._emit(state, "Killing", f"Stopping container {container['name']}")
        raw_grace = pod["metadata"].get("deletionGracePeriodSeconds")
        grace = 30.0 if raw_grace is None else float(raw_grace)
        if self._stop_process(state, grace, first=previous != "terminating"):
            return  # the pod is removed once its process has exited
        delay = self._config().deletion_delay
        self._push(min(delay, grace), "remove", state)

    def _delete(self, state: PodState, *, graceful: bool) -> None:
        """Remove the pod object; ``graceful`` with a deletion delay sets deletionTimestamp instead."""
        delay = self._config().deletion_delay
        try:
            if graceful and delay > 0:
                grace = int(state.spec.get("terminationGracePeriodSeconds", 30))

                def mark(pod: dict[str, Any]) -> dict[str, Any]:
                    pod["metadata"].update(
                        deletionTimestamp=rfc3339(time.time() + grace), deletionGracePeriodSeconds=grace
                    )
                    return pod

                self.store.update("pods", state.namespace, state.name, mark, uid=state.uid)
            else:
                self.store.delete("pods", state.namespace, state.name, uid=state.uid)
        except ApiError:
            pass  # already gone or replaced by a namesake

    # ------------------------------------------------------------- helpers
    def _emit(
        self, state: PodState, reason: str, message: str, *, warning: bool = False, component: str = "kubelet"
    ) -> None:
        self._recorder.emit(state, reason, message, warning=warning, component=component)

    def _write(self, state: PodState, mutate: lifecycle.Mutation) -> dict[str, Any] | None:
        try:
            return self.store.update("pods", state.namespace, state.name, mutate, uid=state.uid).obj
        except ApiError:
            return None  # deleted meanwhile; its DELETED event will clean up
