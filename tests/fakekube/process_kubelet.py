"""The kubelet side of the process mode (mixed into :class:`~.kubelet.Kubelet`, sharing its state and lock).

With a :class:`~.processes.ProcessMode` a bound pod is not simulated: its main container (``base``, or the only
one) really runs (see :mod:`.podenv` for argv and environment, :mod:`.processes` for safety).  Per pod::

    bound --start_delay--> process started: Running (containerStatuses...running.startedAt)
        --exit 0--> Succeeded (terminated: Completed)     --exit N--> Failed (terminated: exitCode N, Error)
        (restartPolicy Always/OnFailure: CrashLoopBackOff, started again after 10 s, 20 s, ... 300 s)
    bound --config error--> Pending, waiting CreateContainerConfigError (tried again whenever a Secret or
        ConfigMap of its namespace is written: the kubelet retries until the missing one appears)
    bound --no command, executable not allowed or not found--> Pending, waiting CreateContainerError

The container's Behavior and other containers are ignored (the others are reported like the main one); its image
only as the simulation treats it: one that cannot be pulled there (tag ``bad``, a name with ``does-not-exist``)
leaves the pod Pending with ``ErrImagePull``, as a real kubelet would, and nothing runs.
Deleting the pod gracefully sends SIGTERM to the process group and SIGKILL after the grace period; the pod object
is removed (DELETED) only once the process has exited, and whatever it left in its session is killed then.  A
forced delete (grace 0) removes the object at once and kills the processes.  Process exits are applied on the
simulation's clock: a paused kubelet applies them on resume, step or flush.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from . import lifecycle
from .behavior import ERR_IMAGE_PULL, Behavior, image_is_bad
from .podenv import ConfigError, argv, environment, main_container
from .processes import ProcessMode, ProcessRunner, StartError
from .scheduler import PodState
from .store import Store

_TAIL_LINES, _TAIL_BYTES = 80, 2048  # FallbackToLogsOnError keeps this much of the log


class ProcessMixin:
    store: Store
    _pods: dict[str, PodState]
    _processes: ProcessRunner | None
    _config_waiting: set[str]  # uids of bound pods waiting for a Secret/ConfigMap

    if TYPE_CHECKING:  # provided by Kubelet and SchedulingMixin (declared here only for the type checker)

        def _push(self, delay: float, action: str, state: PodState | None = None) -> None: ...
        def _write(self, state: PodState, mutate: lifecycle.Mutation) -> dict[str, Any] | None: ...
        def _emit(
            self, state: PodState, reason: str, message: str, *, warning: bool = False, component: str = ""
        ) -> None: ...
        def _release(self, state: PodState) -> None: ...
        def call_later(self, delay: float, fn: Callable[[], None]) -> None: ...

    def enable_processes(self, mode: ProcessMode) -> None:
        self._processes = ProcessRunner(mode, lambda uid, code: self.call_later(0, lambda: self._exited(uid, code)))

    @property
    def runs_processes(self) -> bool:
        return self._processes is not None

    def _lookup(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        stored = self.store.get(kind, namespace, name)
        return None if stored is None else stored.obj

    def _cannot_start(self, state: PodState, reason: str, message: str, *, retry: bool = False) -> None:
        """Leave the pod Pending with the container waiting; ``retry``: stay "bound" until a Secret/ConfigMap of the
        namespace changes (event-driven rather than the kubelet's periodic retry, so ``flush`` cannot spin on it)."""
        if state.message != message:
            state.message = message
            self._write(state, lifecycle.waiting_mutation(reason, message))
            self._emit(state, "Failed", f"Error: {message}", warning=True)
        if retry:
            self._config_waiting.add(state.uid)
        else:
            state.stage = "waiting"

    def _config_changed(self, namespace: str) -> None:
        for uid in list(self._config_waiting):
            state = self._pods.get(uid)
            if state is None or state.stage != "bound":
                self._config_waiting.discard(uid)
            elif state.namespace == namespace:
                self._config_waiting.discard(uid)
                self._push(0, "start", state)

    def _start_process(self, state: PodState) -> None:
        assert self._processes is not None
        stored = self.store.get("pods", state.namespace, state.name)
        if stored is None or stored.uid != state.uid:
            return
        pod = stored.obj
        container = main_container(pod)
        if container is None:
            message = 'fakekube process mode runs the container named "base" or a pod\'s only container'
            self._cannot_start(state, "CreateContainerError", message)
            return
        image = str(container.get("image", ""))
        if image_is_bad(image):
            self._cannot_start(state, *Behavior(outcome=ERR_IMAGE_PULL).waiting(image))
            return
        try:
            env = environment(pod, container, self._lookup, self._processes.mode.base_env)
        except ConfigError as exc:
            self._cannot_start(state, "CreateContainerConfigError", str(exc), retry=True)
            return
        words = argv(container, env)
        if not words:
            message = "fakekube process mode needs the container's command or args (it cannot run an image)"
            self._cannot_start(state, "CreateContainerError", message)
            return
        try:
            running = self._processes.start(state.uid, words, env, container.get("workingDir"))
        except StartError as exc:
            self._cannot_start(state, "CreateContainerError", str(exc))
            return
        state.stage, state.started_at, state.message = "running", running.started_at, None
        if state.restarts:
            self._write(state, lifecycle.restarted_mutation(running.started_at))
        else:
            self._write(state, lifecycle.running_mutation(running.started_at))
        self._emit(state, "Started", f"Started container {container.get('name', '')}")

    def _exited(self, uid: str, code: int) -> None:
        state = self._pods.get(uid)
        if state is None:
            return
        if state.stage == "terminating":
            self._push(0, "remove", state)
            return
        if state.stage != "running":
            return
        reason = "Completed" if code == 0 else "Error"
        policy = state.spec.get("restartPolicy", "Always")
        if policy == "Always" or (policy == "OnFailure" and code != 0):
            state.restarts += 1
            seconds = min(10 * 2 ** (state.restarts - 1), 300)
            self._write(state, lifecycle.back_off_mutation(code, reason, state.restarts, seconds, state.name))
            self._emit(state, "BackOff", "Back-off restarting failed container", warning=True)
            state.stage = "bound"
            self._push(seconds, "start", state)
            return
        state.stage = "terminated"
        self._write(state, lifecycle.terminated_mutation(code, reason, self._termination_message(state, code)))
        self._release(state)

    def _termination_message(self, state: PodState, code: int) -> str | None:
        container = main_container({"spec": state.spec}) or {}
        if code == 0 or container.get("terminationMessagePolicy") != "FallbackToLogsOnError":
            return None
        text = (self._processes.logs(state.uid) if self._processes else None) or ""
        return "".join(text.splitlines(keepends=True)[-_TAIL_LINES:])[-_TAIL_BYTES:] or None

    def _stop_process(self, state: PodState, grace: float, *, first: bool) -> bool:
        """Graceful termination: SIGTERM (``first`` time only), SIGKILL ``grace`` seconds from now (a shorter grace
        period from a second DELETE brings it forward).  False if no process is running."""
        if self._processes is None or not self._processes.alive(state.uid):
            return False
        if first:
            self._processes.send_signal(state.uid, signal.SIGTERM)
        self._push(grace, "kill", state)
        return True

    def _kill_process(self, state: PodState) -> bool:
        """SIGKILL the pod's process group; False if no process is running."""
        if self._processes is None or not self._processes.alive(state.uid):
            return False
        self._processes.send_signal(state.uid, signal.SIGKILL)
        return True

    def _process_logs(self, uid: str) -> list[str] | None:
        text = self._processes.logs(uid) if self._processes else None
        return None if text is None else text.splitlines()

    def follow_log(self, uid: str, tail: int | None) -> Callable[[threading.Event], Iterator[bytes]] | None:
        """A followed log of the pod's process (None: no process was started)."""
        runner = self._processes
        if runner is None or runner.get(uid) is None:
            return None
        return lambda stopping: runner.follow(uid, tail, stopping)

    def process_pid(self, uid: str) -> int | None:
        running = self._processes.get(uid) if self._processes else None
        return None if running is None else running.proc.pid
