"""Test controls and inspection of the simulation (mixed into :class:`~.kubelet.Kubelet`, sharing its state and
lock): pause/resume simulated time, step one pod, force an outcome, flush every queued action, and read stages,
logs and node usage.  All of them take the kubelet lock, so they never interleave with a simulation step.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import TYPE_CHECKING, Any

from .scheduler import NodeState, PodState
from .watchers import Watcher


class ControlsMixin:
    _lock: threading.RLock
    _inbox: Watcher
    _paused: bool
    _heap: list[Any]
    _pods: dict[str, PodState]
    _by_key: dict[tuple[str, str], str]
    _nodes: dict[str, NodeState]
    _logs: dict[str, list[str]]
    _processes: Any

    if TYPE_CHECKING:  # provided by Kubelet and its other mixins (declared here only for the type checker)

        def _act(self, action: str, state: PodState) -> None: ...
        def _finish(self, state: PodState) -> None: ...
        def _drain(self) -> None: ...
        def _run_due(self, now: float, *, force: bool = False) -> int:
            raise NotImplementedError

        def _kill_process(self, state: PodState) -> bool:
            raise NotImplementedError

        def _process_logs(self, uid: str) -> list[str] | None: ...

    def pause(self) -> None:
        """Freeze time for the simulation: nothing scheduled happens until :meth:`resume` (or step/flush)."""
        with self._lock:
            self._paused = True

    def resume(self) -> None:
        with self._lock:
            self._paused = False
        self._inbox.wake()

    @property
    def paused(self) -> bool:
        return self._paused

    def step(self, namespace: str, name: str) -> str:
        """Perform a pod's next transition now, ignoring delays and pause; returns the new stage."""
        with self._lock:
            state = self._state(namespace, name)
            action = {
                "pending": "schedule",
                "unschedulable": "schedule",
                "bound": "start",
                "running": None if self._processes else "finish",  # a real process ends by itself
                "terminating": "remove",
            }.get(state.stage)
            if action is not None:
                self._act(action, state)
            return state.stage

    def complete(self, namespace: str, name: str, outcome: str = "succeed", exit_code: int | None = None) -> None:
        """Force a pod to end now with ``outcome`` (scheduling/starting it first if needed)."""
        with self._lock:
            state = self._state(namespace, name)
            self._kill_process(state)
            state.behavior = dataclasses.replace(state.behavior, outcome=outcome, exit_code=exit_code)
            state.spec = {**state.spec, "restartPolicy": "Never"}
            for _ in range(3):
                if state.stage in ("pending", "unschedulable", "bound"):
                    self.step(namespace, name)
            if state.stage == "waiting":  # an image error "resolved" by hand
                state.stage = "running"
            self._finish(state)

    def flush(self, max_actions: int = 100_000) -> int:
        """Run every queued action now, in due order, including the ones they queue (bounded)."""
        done = 0
        with self._lock:
            self._drain()
            while self._heap and done < max_actions:
                done += self._run_due(0.0, force=True)
                self._drain()
        return done

    def _state(self, namespace: str, name: str) -> PodState:
        self._drain()
        uid = self._by_key.get((namespace, name))
        if uid is None:
            raise KeyError(f"no such pod {namespace}/{name}")
        return self._pods[uid]

    def stage(self, namespace: str, name: str) -> str | None:
        with self._lock:
            uid = self._by_key.get((namespace, name))
            return None if uid is None else self._pods[uid].stage

    def logs(self, namespace: str, name: str) -> list[str] | None:
        """Log lines so far (None: the container has not started)."""
        with self._lock:
            uid = self._by_key.get((namespace, name))
            if uid is not None and self._processes is not None:
                return self._process_logs(uid)
            return None if uid is None or uid not in self._logs else list(self._logs[uid])

    def running(self) -> list[PodState]:
        with self._lock:
            return [s for s in self._pods.values() if s.stage == "running"]

    def node_usage(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {name: dict(state.used) for name, state in self._nodes.items()}
