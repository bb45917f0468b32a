"""Child processes of the end-to-end test: started in their own process groups, logged to files, always stopped.

Every service (PostgreSQL, the fake API server, Airflow's api-server, dag-processor and scheduler) is a
:class:`Service`: its stdout and stderr go to ``<log dir>/<name>.log``, it leads its own process group (so
whatever it forks - uvicorn workers, task supervisors - is signalled with it), and :class:`Services` stops them
all, newest first, in fixture teardown whatever happened.  Waiting is always on a condition
(:func:`wait_until`), and a wait that times out names what it waited for and attaches the tail of every log.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
LOG_TAIL_LINES = 60


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the services bind loopback only)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def kill_processes_with_env(entry: str) -> list[int]:
    """SIGKILL every process whose environment holds ``entry`` ("KEY=value"); the pids signalled."""
    wanted = entry.encode()
    killed = []
    for pid in (int(name) for name in os.listdir("/proc") if name.isdigit()):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue  # gone, or not ours to read
        if wanted in environ and pid != os.getpid():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
    return killed


@dataclass
class Service:
    """One child process and its log file."""

    name: str
    argv: Sequence[str]
    log_path: Path
    env: Mapping[str, str] | None = None
    cwd: Path | None = None
    user: str | None = None  # run as this user (root only): PostgreSQL refuses to run as root
    stop_signal: int = signal.SIGTERM
    stop_timeout: float = 20.0
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)
    expect_exit: bool = field(default=False, init=False)  # a one-shot command, or stopped on purpose

    def start(self) -> Service:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(f"$ {' '.join(self.argv)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                list(self.argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=None if self.env is None else dict(self.env),
                cwd=self.cwd,
                start_new_session=True,  # its own process group: stopped with everything it forks
                user=self.user,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"{self.name} was never started"
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal_group(self, sig: int) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, sig)

    def kill(self) -> int:
        """SIGKILL the whole group now (a crash, as far as the process can tell) and reap it."""
        assert self.proc is not None
        self.expect_exit = True
        self.signal_group(signal.SIGKILL)
        return self.proc.wait(timeout=30)

    def stop(self) -> None:
        """``stop_signal`` to the group, SIGKILL after ``stop_timeout``; then SIGKILL whatever is left in it."""
        if self.proc is None:
            return
        self.expect_exit = True
        if self.proc.poll() is None:
            self.signal_group(self.stop_signal)
            try:
                self.proc.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                self.signal_group(signal.SIGKILL)
                self.proc.wait(timeout=30)
        self.signal_group(signal.SIGKILL)  # children that outlived their leader

    def tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return tail(self.log_path, lines)

    def died(self) -> bool:
        """Exited although it should still run."""
        return not self.expect_exit and self.proc is not None and self.proc.poll() is not None


class Services:
    """The services of one test stack; :meth:`stop_all` stops them newest first and never raises."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[Service] = []
        self.log_globs: list[Path] = []  # more logs, found when reporting (e.g. task pods' "<dir>/*/log")
        self.cleanup_paths: list[Path] = []  # directories outside the log dir, removed after the services stop
        self.stray_marker: str | None = None  # an environment entry only this stack's processes have

    def start(self, name: str, argv: Sequence[str], **options: object) -> Service:
        service = Service(name, argv, self.log_dir / f"{name}.log", **options)  # type: ignore[arg-type]
        self.started.append(service)
        return service.start()

    def run(self, name: str, argv: Sequence[str], *, timeout: float, **options: object) -> None:
        """Run a command to completion (its output in ``<name>.log``); fail with the log's tail if it fails."""
        service = self.start(name, argv, **options)
        service.expect_exit = True
        assert service.proc is not None
        try:
            code = service.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            service.stop()
            raise AssertionError(f"{name} did not finish in {timeout:.0f} s\n{self.report()}") from None
        if code != 0:
            raise AssertionError(f"{name} exited with {code}\n--- {name} ---\n{service.tail()}")

    def stop_all(self) -> None:
        for service in reversed(self.started):
            try:
                service.stop()
            except Exception as exc:  # keep stopping the others
                with open(service.log_path, "a") as log:
                    log.write(f"\n[e2e] stopping failed: {exc!r}\n")
        if self.stray_marker is not None:  # e.g. task processes whose pod outlived a SIGKILLed fake
            kill_processes_with_env(self.stray_marker)
        for path in self.cleanup_paths:
            shutil.rmtree(path, ignore_errors=True)

    def logs(self) -> Iterator[tuple[str, Path]]:
        seen = set()
        for service in self.started:
            if service.log_path not in seen:
                seen.add(service.log_path)
                yield service.name, service.log_path
        for pattern in self.log_globs:
            for path in sorted(Path(pattern.anchor).glob(str(pattern.relative_to(pattern.anchor)))):
                yield path.parent.name, path

    def report(self, lines: int = LOG_TAIL_LINES) -> str:
        """The tail of every log, for an assertion message."""
        parts = [f"logs in {self.log_dir}"]
        for name, path in self.logs():
            parts.append(f"--- {name} ({path}) ---\n{tail(path, lines)}")
        return "\n".join(parts)


def wait_until(
    condition: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    services: Services | None = None,
    interval: float = 0.5,
    state: Callable[[], object] | None = None,
) -> T:
    """Poll ``condition`` until it returns a truthy value (returned); fail after ``timeout`` seconds.

    ``OSError`` (a refused or timed-out connection) counts as "not yet".  The failure names ``what`` was
    awaited, the last ``state()`` seen and - with ``services`` - the tail of every log.  A service that died
    while waiting fails the wait at once.
    """
    deadline = time.monotonic() + timeout
    error: OSError | None = None
    while True:
        try:
            value = condition()
        except OSError as exc:  # a service not answering (yet): keep waiting, say so if it never does
            value, error = None, exc
        if value:
            return value
        dead = [s.name for s in (services.started if services else []) if s.died()]
        if time.monotonic() > deadline or dead:
            why = f"services died: {dead}" if dead else f"not within {timeout:.0f} s"
            why += f" (last error: {error!r})" if error is not None else ""
            seen = f"\nlast state: {state()}" if state is not None else ""
            logs = f"\n{services.report()}" if services is not None else ""
            raise AssertionError(f"waiting for {what}: {why}{seen}{logs}")
        time.sleep(interval)
