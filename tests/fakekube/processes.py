"""The process kubelet mode's process handling: run a pod's container command as a local process group.

Enabled with ``FakeKubeServer(process_mode=ProcessMode(allowed=[sys.executable], base_env={...}))`` or
``python -m tests.fakekube --process-mode --allow-exec /path/to/python --env K=V``; off by default.

* **Safety**: only executables on the explicit allow-list run.  ``argv[0]`` is resolved like ``execvp`` (a bare
  name through the process's ``PATH``) and compared with the allow-list after resolving symlinks (so an
  allow-listed venv ``python`` also admits the interpreter it links to); anything else is refused before a
  process exists.  Each process leads its own session and process group.  When it exits, everything left in its
  session is killed, process groups of their own included (a Task SDK supervisor's task process moves to one):
  a container's processes die with its init process, as when its PID namespace ends.  Only a process that
  starts a session of its own escapes.  :meth:`ProcessRunner.stop_all` -- called when the server stops, and at
  interpreter exit as a last resort -- kills every session the same way.
* **Files**: every pod gets a fresh temporary directory holding ``log`` (stdout and stderr, interleaved as written)
  and ``work/``, the working directory unless the container's ``workingDir`` exists locally.  It is removed when the
  pod object is deleted or the server stops.
* **Exit codes**: a process killed by signal N reports ``128 + N`` (SIGTERM: 143, SIGKILL: 137), like a container.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

_RUNNERS: weakref.WeakSet[ProcessRunner] = weakref.WeakSet()
FOLLOW_POLL_SECONDS = 0.05  # how often a followed log looks for new output


class StartError(Exception):
    """The container cannot be created (``CreateContainerError``); the message says why."""


@dataclass(frozen=True)
class ProcessMode:
    """``allowed``: absolute paths of the executables pods may run.  ``base_env``: the environment every process
    starts from (the image's ``ENV``: PATH, HOME, AIRFLOW_HOME...).  ``root``: where per-pod directories go."""

    allowed: Iterable[str]
    base_env: Mapping[str, str] = field(default_factory=dict)
    root: str | None = None

    def __post_init__(self) -> None:
        allowed = tuple(str(path) for path in self.allowed)
        relative = [path for path in allowed if not os.path.isabs(path)]
        if relative:
            raise ValueError(f"process mode allow-list entries must be absolute paths: {relative}")
        object.__setattr__(self, "allowed", allowed)
        object.__setattr__(self, "base_env", {str(k): str(v) for k, v in self.base_env.items()})

    def resolve(self, program: str, env: Mapping[str, str], cwd: str) -> str:
        """The path ``program`` runs as, if the allow-list admits it; else :class:`StartError`."""
        if "/" in program:
            path: str | None = os.path.join(cwd, program)
        else:
            path = shutil.which(program, path=env.get("PATH", ""))
            if path is None:
                raise StartError(f'exec: "{program}": executable file not found in $PATH')
        assert path is not None
        admitted = {os.path.realpath(a) for a in self.allowed}
        if os.path.realpath(path) not in admitted:
            raise StartError(
                f'fakekube process mode: executable "{path}" is not in the allow-list {list(self.allowed)}'
            )
        return path


@dataclass
class PodProcess:
    uid: str
    proc: subprocess.Popen[bytes]
    directory: str
    started_at: float  # wall clock
    exit_code: int | None = None

    @property
    def log_path(self) -> str:
        return os.path.join(self.directory, "log")


def exit_code(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)  # the child leads its own group: pgid == pid


def session_members(sid: int) -> list[int]:
    """The processes of session ``sid`` other than its leader (from ``/proc``; none where there is no ``/proc``)."""
    members = []
    with contextlib.suppress(OSError):
        entries = os.listdir("/proc")
        for entry in entries:
            if not entry.isdigit() or int(entry) == sid:
                continue
            try:
                with open(f"/proc/{entry}/stat", "rb") as stat:
                    data = stat.read()
            except OSError:
                continue  # gone meanwhile
            fields = data[data.rindex(b")") + 2 :].split()  # state ppid pgrp session ...
            if len(fields) > 3 and int(fields[3]) == sid:
                members.append(int(entry))
    return members


def _kill_container(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process's group and everything else in its session (the leader must not be reaped yet, or be
    ours still: a zombie leader keeps its pid, and so the session id, from being reused)."""
    _signal_group(proc, signal.SIGKILL)
    for pid in session_members(proc.pid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


class ProcessRunner:
    """Runs and tracks one process per pod uid; ``on_exit(uid, exit_code)`` is called from a waiter thread."""

    def __init__(self, mode: ProcessMode, on_exit: Callable[[str, int], None]) -> None:
        self.mode = mode
        self._on_exit = on_exit
        self._lock = threading.Lock()
        self._procs: dict[str, PodProcess] = {}
        _RUNNERS.add(self)

    def start(self, uid: str, argv: list[str], env: Mapping[str, str], working_dir: str | None) -> PodProcess:
        directory = tempfile.mkdtemp(prefix="fakekube-pod-", dir=self.mode.root)
        work = os.path.join(directory, "work")
        os.mkdir(work)
        cwd = working_dir if working_dir and os.path.isdir(working_dir) else work
        try:
            program = self.mode.resolve(argv[0], env, cwd)
            with open(os.path.join(directory, "log"), "wb") as log:
                proc = subprocess.Popen(
                    [program, *argv[1:]],
                    cwd=cwd,
                    env=dict(env),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        except (StartError, OSError) as exc:
            shutil.rmtree(directory, ignore_errors=True)
            raise StartError(str(exc)) from exc
        running = PodProcess(uid, proc, directory, time.time())
        with self._lock:
            old = self._procs.pop(uid, None)
            self._procs[uid] = running
        if old is not None:
            self._dispose(old)
        threading.Thread(target=self._wait, args=(running,), name=f"fakekube-proc-{proc.pid}", daemon=True).start()
        return running

    def _wait(self, running: PodProcess) -> None:
        with contextlib.suppress(ChildProcessError):  # exited but not reaped: its pid is still the session's id
            os.waitid(os.P_PID, running.proc.pid, os.WEXITED | os.WNOWAIT)
        _kill_container(running.proc)  # whatever the container's init process left behind
        running.exit_code = code = exit_code(running.proc.wait())
        self._on_exit(running.uid, code)

    def get(self, uid: str) -> PodProcess | None:
        with self._lock:
            return self._procs.get(uid)

    def alive(self, uid: str) -> bool:
        """True until the process has been reaped (its exit is being reported)."""
        running = self.get(uid)
        return running is not None and running.exit_code is None

    def send_signal(self, uid: str, sig: int) -> None:
        running = self.get(uid)
        if running is not None and running.exit_code is None:
            _signal_group(running.proc, sig)

    def logs(self, uid: str) -> str | None:
        running = self.get(uid)
        if running is None:
            return None
        try:
            with open(running.log_path, "rb") as log:
                return log.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def follow(self, uid: str, tail: int | None, stopping: threading.Event) -> Iterator[bytes]:
        """The log so far (its last ``tail`` lines), then whatever the process writes until it has exited (or the
        server stops): ``kubectl logs -f``."""
        running = self.get(uid)
        if running is None:
            return
        with open(running.log_path, "rb") as log:
            data = log.read()
            if tail is not None:
                data = b"".join(data.splitlines(keepends=True)[-tail:]) if tail > 0 else b""
            yield data
            while True:
                data = log.read()
                if data:
                    yield data
                elif running.exit_code is not None or stopping.is_set():
                    yield log.read()
                    return
                else:
                    stopping.wait(FOLLOW_POLL_SECONDS)

    def discard(self, uid: str) -> None:
        """Kill the pod's processes (if still running) and delete its directory."""
        with self._lock:
            running = self._procs.pop(uid, None)
        if running is not None:
            self._dispose(running)

    @staticmethod
    def _dispose(running: PodProcess) -> None:
        if running.proc.poll() is None:  # once reaped, its pid (and group id) may belong to someone else
            _kill_container(running.proc)
        with contextlib.suppress(subprocess.TimeoutExpired):
            running.proc.wait(timeout=10)
        shutil.rmtree(running.directory, ignore_errors=True)

    def stop_all(self) -> None:
        with self._lock:
            procs, self._procs = list(self._procs.values()), {}
        for running in procs:
            self._dispose(running)


@atexit.register
def _kill_leftovers() -> None:  # pragma: no cover - only matters when a server was never stopped
    for runner in list(_RUNNERS):
        runner.stop_all()
