"""The object store: resourceVersions, bounded watch history and watch fan-out.

Semantics (modelled on kube-apiserver's watch cache):

* One global, strictly increasing integer ``resourceVersion`` across every kind; each write gets the next one.
* Stored objects are immutable snapshots (:class:`Stored`) whose JSON is encoded once at write time; readers reuse
  the bytes.  Writers get a fresh copy to mutate.
* Each kind keeps the last ``history_size`` events, and with ``history_seconds`` > 0 only those younger than that
  (the apiserver's watch cache keeps a time window).  A watch from resourceVersion ``R`` replays every retained
  event with rv > R, then streams live.  If events after ``R`` have been evicted (or :meth:`Store.compact` was
  called), the watch is *expired*: :class:`ResourceExpired` (the HTTP layer turns it into a 410 ERROR event).
  Ages come from ``clock`` (monotonic seconds) plus the offset :meth:`Store.age_history` adds, so tests expire
  history without waiting.
* Watchers have private unbounded queues filled under the store lock, so every watcher sees events in rv order with
  no gaps, and a bookmark taken with :meth:`Store.bookmark_rv` never claims an event not yet handed to the watcher.
* Observers are called synchronously under the store lock for every event (used for statistics; must be quick and
  must not call back into the store).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from .errors import ApiError, already_exists, not_found, stale_conflict
from .watchers import ADDED, DELETED, MODIFIED, ResourceExpired, Stored, Watcher, WatchEvent, encode, event_line


class Store:
    def __init__(
        self,
        history_size: int = 10_000,
        *,
        start_rv: int = 1000,
        history_seconds: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.lock = threading.RLock()
        self.history_seconds = history_seconds
        self.clock = clock
        self._age_offset = 0.0
        self._rv = start_rv
        self._objects: dict[str, dict[str, dict[str, Stored]]] = {}  # kind -> namespace -> name -> Stored
        self._history: dict[str, deque[WatchEvent]] = {}
        self._floor: dict[str, int] = {}  # kind -> newest rv whose event is no longer retained
        self._history_size = history_size
        self.compacted_rv = 0  # continue tokens older than this are expired
        self._watchers: list[Watcher] = []
        self.observers: list[Callable[[WatchEvent], None]] = []

    # ----------------------------------------------------------------- reads
    @property
    def rv(self) -> int:
        return self._rv

    @property
    def history_size(self) -> int:
        return self._history_size

    def get(self, kind: str, namespace: str, name: str) -> Stored | None:
        return self._objects.get(kind, {}).get(namespace, {}).get(name)

    def items(self, kind: str, namespace: str | None = None) -> list[Stored]:
        """Current objects of ``kind`` (in ``namespace`` or everywhere), ordered by (namespace, name)."""
        with self.lock:
            by_ns = self._objects.get(kind, {})
            spaces = [namespace] if namespace is not None else sorted(by_ns)
            return [by_ns[ns][name] for ns in spaces if ns in by_ns for name in sorted(by_ns[ns])]

    def snapshot(self, kind: str, namespace: str | None = None) -> tuple[list[Stored], int]:
        with self.lock:
            return self.items(kind, namespace), self._rv

    def namespaces(self) -> list[str]:
        with self.lock:
            return sorted({ns for by_ns in self._objects.values() for ns, objs in by_ns.items() if ns and objs})

    # ---------------------------------------------------------------- writes
    def create(self, kind: str, obj: dict[str, Any], *, admit: Callable[[Store], None] | None = None) -> Stored:
        """Store a new object (metadata.name/namespace already set); ``admit`` runs under the lock and may raise."""
        meta = obj["metadata"]
        ns, name = meta.get("namespace", ""), meta["name"]
        with self.lock:
            if name in self._objects.get(kind, {}).get(ns, {}):
                raise already_exists(kind, name)
            if admit is not None:
                admit(self)
            self._rv += 1
            meta["resourceVersion"] = str(self._rv)
            stored = Stored(obj, encode(obj))
            self._objects.setdefault(kind, {}).setdefault(ns, {})[name] = stored
            self._commit(ADDED, kind, stored, None)
            return stored

    def update(
        self,
        kind: str,
        namespace: str,
        name: str,
        mutate: Callable[[dict[str, Any]], dict[str, Any] | None],
        *,
        uid: str | None = None,
    ) -> Stored:
        """Read-modify-write under the lock.  ``mutate`` gets a private copy and returns the new object, or None
        for "no change" (no event, no new rv).  ``uid`` guards against acting on a re-created namesake."""
        with self.lock:
            current = self.get(kind, namespace, name)
            if current is None:
                raise not_found(kind, name)
            if uid is not None and current.uid != uid:
                raise stale_conflict(kind, name)
            new = mutate(current.copy())
            if new is None:
                return current
            self._rv += 1
            new["metadata"]["resourceVersion"] = str(self._rv)
            stored = Stored(new, encode(new))
            self._objects[kind][namespace][name] = stored
            self._commit(MODIFIED, kind, stored, current)
            return stored

    def delete(self, kind: str, namespace: str, name: str, *, uid: str | None = None) -> Stored:
        """Remove the object; the DELETED event (and the return value) carry its last state at a new rv."""
        with self.lock:
            current = self.get(kind, namespace, name)
            if current is None:
                raise not_found(kind, name)
            if uid is not None and current.uid != uid:
                raise ApiError(
                    409,
                    f"Precondition failed: UID in precondition: {uid}, UID in object meta: {current.uid}",
                    "Conflict",
                    details={"name": name, "kind": kind},
                )
            del self._objects[kind][namespace][name]
            if not self._objects[kind][namespace]:
                del self._objects[kind][namespace]
            self._rv += 1
            final = current.copy()
            final["metadata"]["resourceVersion"] = str(self._rv)
            stored = Stored(final, encode(final))
            self._commit(DELETED, kind, stored, current)
            return stored

    def _commit(self, type_: str, kind: str, stored: Stored, prev: Stored | None) -> None:
        now = self.now()
        event = WatchEvent(type_, kind, self._rv, stored, prev, event_line(type_, stored.raw), now)
        history = self._history.get(kind)
        if history is None:
            history = self._history[kind] = deque(maxlen=self._history_size)
        if len(history) == history.maxlen:
            self._floor[kind] = history[0].rv
        history.append(event)
        self._expire(kind, now)
        for watcher in self._watchers:
            if kind in watcher.kinds:
                watcher.push(event)
        for observer in self.observers:
            observer(event)

    # --------------------------------------------------------------- watches
    def watch(
        self, kind: str, namespace: str | None, resource_version: str | None, *, external: bool = True
    ) -> Watcher:
        """Register a watcher primed with the events it must see first.

        ``resource_version`` "" / "0" / None: synthetic ADDED events for every current object, then live events.
        Otherwise: retained events with rv > resource_version, then live; :class:`ResourceExpired` if some of those
        events are no longer retained.
        """
        watcher = Watcher([kind], namespace, external=external)
        with self.lock:
            if resource_version in (None, "", "0"):
                initial = [
                    WatchEvent(ADDED, kind, s.rv, s, None, event_line(ADDED, s.raw))
                    for s in self.items(kind, namespace)
                ]
            else:
                since = int(resource_version)
                self._expire(kind, self.now())
                floor = self.floor(kind)
                if since < floor:
                    raise ResourceExpired(since, floor + 1)
                initial = []
                for event in reversed(self._history.get(kind, ())):
                    if event.rv <= since:
                        break
                    initial.append(event)
                initial.reverse()
            watcher.last_rv = self._rv
            watcher.push_many(initial)
            self._watchers.append(watcher)
        return watcher

    def subscribe(self, kinds: Iterable[str]) -> Watcher:
        """An in-process watcher of live events for ``kinds`` (no replay)."""
        watcher = Watcher(kinds, external=False)
        with self.lock:
            watcher.last_rv = self._rv
            self._watchers.append(watcher)
        return watcher

    def unsubscribe(self, watcher: Watcher) -> None:
        with self.lock:
            if watcher in self._watchers:
                self._watchers.remove(watcher)

    def bookmark_rv(self, watcher: Watcher) -> int | None:
        """The rv a BOOKMARK may carry now: the global rv if the watcher has consumed everything, else None."""
        with self.lock, watcher.cond:
            return None if watcher.pending else self._rv

    @property
    def open_watches(self) -> int:
        with self.lock:
            return sum(1 for w in self._watchers if w.external)

    def external_watchers(self) -> list[Watcher]:
        with self.lock:
            return [w for w in self._watchers if w.external]

    # ------------------------------------------------------------ compaction
    def compact(self) -> int:
        """Forget all history: watches from any rv older than now get 410, as do older continue tokens."""
        with self.lock:
            for kind in set(self._history) | set(self._objects):
                self._floor[kind] = self._rv
                self._history.pop(kind, None)
            self._floor["*"] = self._rv
            self.compacted_rv = self._rv
            return self._rv

    def now(self) -> float:
        return self.clock() + self._age_offset

    def _expire(self, kind: str, now: float) -> None:
        """Drop events older than ``history_seconds`` (under the lock)."""
        if self.history_seconds <= 0:
            return
        history = self._history.get(kind)
        oldest = now - self.history_seconds
        while history and history[0].at < oldest:
            self._floor[kind] = history.popleft().rv

    def age_history(self, seconds: float) -> None:
        """Make every retained event ``seconds`` older (a time jump for the history window only)."""
        with self.lock:
            self._age_offset += seconds
            for kind in list(self._history):
                self._expire(kind, self.now())

    def floor(self, kind: str) -> int:
        return max(self._floor.get(kind, 0), self._floor.get("*", 0))

    def set_history_size(self, size: int) -> None:
        if size < 1:
            raise ValueError("history_size must be >= 1")
        with self.lock:
            self._history_size = size
            for kind, history in list(self._history.items()):
                if len(history) > size:
                    self._floor[kind] = history[len(history) - size - 1].rv
                self._history[kind] = deque(history, maxlen=size)
