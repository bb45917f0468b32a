"""The values that flow from the store to watchers: stored objects, watch events, and per-watcher queues."""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .errors import too_old_resource_version

ADDED, MODIFIED, DELETED = "ADDED", "MODIFIED", "DELETED"


def encode(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class Stored:
    """One version of an object: the dict (treat as read-only) and its JSON encoding."""

    obj: dict[str, Any]
    raw: bytes

    @property
    def rv(self) -> int:
        return int(self.obj["metadata"]["resourceVersion"])

    @property
    def uid(self) -> str:
        return self.obj["metadata"].get("uid", "")

    def copy(self) -> dict[str, Any]:
        """A private deep copy to mutate (decoding the cached JSON is faster than ``copy.deepcopy``)."""
        return json.loads(self.raw)


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """A committed change: ``new`` is the object after the change (for DELETED: its final state, new rv)."""

    type: str
    kind: str
    rv: int
    new: Stored
    prev: Stored | None
    line: bytes  # b'{"type":...,"object":...}\n', ready to stream
    at: float = 0.0  # the store's clock when it was committed (for the time-bounded history)


def event_line(type_: str, raw_object: bytes) -> bytes:
    return b'{"type":"' + type_.encode() + b'","object":' + raw_object + b"}\n"


class ResourceExpired(Exception):
    def __init__(self, requested: int, oldest: int) -> None:
        super().__init__(f"too old resource version: {requested} ({oldest})")
        self.error = too_old_resource_version(requested, oldest)


class Watcher:
    """A subscriber's private queue of events for some kinds (and optionally one namespace).

    ``take`` blocks until events arrive or the watcher is woken/closed.  Flags: ``closed`` (server stopping or
    client gone), ``expired`` (send 410 and end), ``dropped`` (connection was cut).
    """

    def __init__(self, kinds: Iterable[str], namespace: str | None = None, *, external: bool = True) -> None:
        self.kinds = frozenset(kinds)
        self.namespace = namespace
        self.external = external  # an HTTP watch (counted in open_watches) rather than the in-process kubelet
        self.cond = threading.Condition(threading.Lock())
        self._items: deque[WatchEvent] = deque()
        self._woken = False
        self.closed = self.expired = self.dropped = False
        self.last_rv = 0
        self.on_drop: Callable[[], None] | None = None  # set by the HTTP layer: cut the socket

    def push(self, event: WatchEvent) -> None:
        with self.cond:
            self._items.append(event)
            self.last_rv = event.rv
            self.cond.notify()

    def push_many(self, events: list[WatchEvent]) -> None:
        with self.cond:
            self._items.extend(events)
            self.cond.notify()

    def wake(self) -> None:
        with self.cond:
            self._woken = True
            self.cond.notify()

    def wait(self, timeout: float | None) -> None:
        """Block until something is queued or the watcher is woken/closed (does not consume)."""
        with self.cond:
            if not self._items and not self._woken and not self.closed and not self.expired:
                self.cond.wait(timeout)
            self._woken = False

    def take(self, timeout: float | None) -> list[WatchEvent]:
        """Everything queued, waiting up to ``timeout`` seconds if nothing is (empty list on timeout/wake/close)."""
        with self.cond:
            if not self._items and not self._woken and not self.closed and not self.expired:
                self.cond.wait(timeout)
            self._woken = False
            items = list(self._items)
            self._items.clear()
            return items

    @property
    def pending(self) -> bool:
        return bool(self._items)

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify()

    def expire(self) -> None:
        with self.cond:
            self.expired = True
            self.cond.notify()

    def drop(self) -> None:
        self.dropped = True
        if self.on_drop is not None:
            self.on_drop()
        self.close()
