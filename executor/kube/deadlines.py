"""Deadlines for whole exchanges, and cancelling every exchange in flight at shutdown.

A socket timeout bounds each read, not an answer: a server that sends one byte every half second
keeps a call alive for ever.  Each exchange therefore holds a :class:`Ticket` with a deadline for
the whole of it - connect, headers and body.  One daemon thread (the *reaper*) sleeps until the
nearest deadline and shuts down the socket of every exchange past it; the blocked read returns at
once and the exchange fails with :class:`~airflow_k8s.executor.contract.errors.DeadlineExceeded`.
The same mechanism ends every exchange of a :class:`Scope` when it is cancelled (the engine's
stop, :meth:`KubeClient.close`): in-flight calls fail with
:class:`~airflow_k8s.executor.contract.errors.Cancelled` and new ones are refused, so a shutdown
never waits on a server that does not answer.

Why a thread and not per-read timeouts: the standard library (``http.client``) and urllib3 both
read headers and bodies in loops of their own, each read with the full socket timeout, so only
something outside the reading thread can bound the whole.  The socket is *shut down*, never
closed, from the reaper: its descriptor stays valid (no reuse race) and the owning thread closes
it as it unwinds.  ``socket.socket.shutdown`` is called directly so a TLS socket's state is not
torn from under the thread reading it.

Cost per exchange: one small object and two short critical sections; the reaper wakes only for
the nearest deadline (or a new, nearer one), never on a fixed tick.
"""

from __future__ import annotations

import contextlib
import math
import socket
import threading
import time
from typing import Any


class Scope:
    """Exchanges that are cancelled together; a child scope is cancelled with its parent."""

    def __init__(self, parent: Scope | None = None) -> None:
        self.parent = parent
        self._cancelled = False

    @property
    def cancelled(self) -> bool:
        scope: Scope | None = self
        while scope is not None:
            if scope._cancelled:
                return True
            scope = scope.parent
        return False

    def within(self, other: Scope) -> bool:
        scope: Scope | None = self
        while scope is not None:
            if scope is other:
                return True
            scope = scope.parent
        return False


class Ticket:
    """One exchange in flight: its deadline and the connection whose socket to shut down.

    ``holder`` is any object with a ``sock`` attribute (an ``http.client`` or urllib3 connection);
    it may be attached before the socket exists, and :meth:`connected` re-checks once it does.
    """

    __slots__ = ("_reaper", "cancelled", "deadline", "expired", "holder", "scope")

    def __init__(self, reaper: Reaper, deadline: float, scope: Scope) -> None:
        self._reaper = reaper
        self.deadline = deadline
        self.scope = scope
        self.holder: Any = None
        self.expired = False  # the deadline passed
        self.cancelled = False  # the scope was cancelled

    @property
    def cut(self) -> bool:
        """The exchange was cut short (deadline or cancel): its connection must not be reused."""
        return self.expired or self.cancelled

    def attach(self, holder: Any) -> None:
        with self._reaper.lock:
            self.holder = holder
            if self.cut:
                _shutdown(holder)

    def connected(self) -> None:
        """Called once the socket exists: cut it at once if the deadline passed while connecting."""
        with self._reaper.lock:
            if self.cut:
                _shutdown(self.holder)

    def cancel(self) -> None:
        """Cut this exchange now (a watch closed from another thread)."""
        with self._reaper.lock:
            self.cancelled = True
            _shutdown(self.holder)

    def extend(self, seconds: float) -> None:
        """A new deadline ``seconds`` from now (a watch, once its headers came in time)."""
        self._reaper.reschedule(self, time.monotonic() + seconds)

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def end(self) -> None:
        self._reaper.end(self)


class Reaper:
    """The deadline thread (started on first use) and the registry of exchanges in flight."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._wakeup = threading.Condition(self.lock)
        self._active: set[Ticket] = set()
        self._next = math.inf  # when the thread wakes next
        self._thread: threading.Thread | None = None

    def begin(self, seconds: float, scope: Scope) -> Ticket | None:
        """A ticket for an exchange that must end within ``seconds``; None when ``scope`` is cancelled."""
        ticket = Ticket(self, time.monotonic() + seconds, scope)
        with self.lock:
            if scope.cancelled:
                return None
            self._active.add(ticket)
            if ticket.deadline < self._next:
                self._start_or_wake()
        return ticket

    def reschedule(self, ticket: Ticket, deadline: float) -> None:
        with self.lock:
            ticket.deadline = deadline
            if ticket in self._active and deadline < self._next:
                self._start_or_wake()

    def end(self, ticket: Ticket) -> None:
        with self.lock:
            self._active.discard(ticket)
            ticket.holder = None

    def cancel(self, scope: Scope) -> int:
        """Cut every exchange of ``scope`` (and its children); returns how many were in flight."""
        with self.lock:
            scope._cancelled = True
            victims = [t for t in self._active if t.scope.within(scope)]
            for ticket in victims:
                ticket.cancelled = True
                _shutdown(ticket.holder)
        return len(victims)

    def in_flight(self) -> int:
        with self.lock:
            return len(self._active)

    def _start_or_wake(self) -> None:  # lock held
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="kube-deadlines", daemon=True)
            self._thread.start()
        else:
            self._wakeup.notify()

    def _run(self) -> None:
        with self.lock:
            while True:
                now = time.monotonic()
                nearest = math.inf
                for ticket in list(self._active):
                    if ticket.deadline <= now:
                        ticket.expired = True
                        _shutdown(ticket.holder)
                        self._active.discard(ticket)
                    else:
                        nearest = min(nearest, ticket.deadline)
                self._next = nearest
                self._wakeup.wait(None if nearest == math.inf else nearest - now)


def _shutdown(holder: Any) -> None:
    sock = getattr(holder, "sock", None)
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
