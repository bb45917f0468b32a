"""Introspection for assertions: request counts and the history of every pod ever created.

* :attr:`Stats.requests` counts ``(method, resource, code)``; watch requests are recorded with method ``"WATCH"``
  (their code is the HTTP status, 200 even when the stream carried a 410 ERROR event).  ``resource`` is the
  API path's resource: ``pods``, ``pods/log``, ``pods/status``, ``nodes``, ``events``, ``namespaces``,
  ``metrics/pods``, ``metrics/nodes``, ``discovery``, ``_fake``, ``other``.
* :meth:`Stats.pods` lists every pod ever created (kept after deletion) with creation time, the time it was first
  Running, and its last/final phase.
* :meth:`Stats.creates` counts successful creates per (namespace, name): duplicates show up as counts > 1.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, replace
from typing import Any

from .watchers import ADDED, DELETED, WatchEvent


@dataclass(frozen=True)
class PodRecord:
    namespace: str
    name: str
    uid: str
    created_at: float  # wall clock (time.time())
    phase: str  # last phase seen; after deletion, the final phase
    node: str | None = None
    exit_code: int | None = None
    deleted_at: float | None = None
    running_at: float | None = None  # wall clock when first seen Running


class Stats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: Counter[tuple[str, str, int]] = Counter()
        self._pods: dict[str, PodRecord] = {}  # uid -> record, insertion (creation) order
        self._creates: Counter[tuple[str, str]] = Counter()

    def record_request(self, method: str, resource: str, code: int) -> None:
        with self._lock:
            self.requests[(method, resource, code)] += 1

    def count(self, method: str | None = None, resource: str | None = None, code: int | None = None) -> int:
        """Requests matching every given criterion."""
        with self._lock:
            return sum(
                n
                for (m, r, c), n in self.requests.items()
                if (method is None or m == method)
                and (resource is None or r == resource)
                and (code is None or c == code)
            )

    def observe(self, event: WatchEvent) -> None:
        """Store observer (runs under the store lock: keep it cheap)."""
        if event.kind != "pods":
            return
        obj = event.new.obj
        meta, status = obj["metadata"], obj.get("status") or {}
        uid = meta["uid"]
        with self._lock:
            if event.type == ADDED:
                self._creates[(meta["namespace"], meta["name"])] += 1
                self._pods[uid] = PodRecord(meta["namespace"], meta["name"], uid, time.time(), status.get("phase", ""))
                return
            record = self._pods.get(uid)
            if record is None:
                return
            phase = status.get("phase", record.phase)
            node = (obj.get("spec") or {}).get("nodeName") or record.node
            exit_code = record.exit_code
            if phase in ("Succeeded", "Failed"):
                for cs in status.get("containerStatuses") or ():
                    if "terminated" in cs.get("state", {}):
                        exit_code = cs["state"]["terminated"].get("exitCode")
                        break
            deleted_at = time.time() if event.type == DELETED else None
            running_at = record.running_at
            if running_at is None and phase == "Running":
                running_at = time.time()
            if (phase, node, exit_code, deleted_at, running_at) != (
                record.phase, record.node, record.exit_code, None, record.running_at
            ):  # fmt: skip
                self._pods[uid] = replace(
                    record, phase=phase, node=node, exit_code=exit_code, deleted_at=deleted_at, running_at=running_at
                )

    def pods(self) -> list[PodRecord]:
        with self._lock:
            return list(self._pods.values())

    def pod(self, namespace: str, name: str) -> PodRecord | None:
        """The most recent pod with that name."""
        with self._lock:
            for record in reversed(self._pods.values()):
                if (record.namespace, record.name) == (namespace, name):
                    return record
        return None

    def creates(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self._creates)

    def duplicate_creates(self) -> dict[tuple[str, str], int]:
        """Names that were successfully created more than once."""
        return {key: n for key, n in self.creates().items() if n > 1}

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._pods.clear()
            self._creates.clear()

    def to_dict(self) -> dict[str, Any]:
        with self._lock:
            requests = [{"method": m, "resource": r, "code": c, "count": n} for (m, r, c), n in self.requests.items()]
            pods = [asdict(p) for p in self._pods.values()]
            creates: list[dict[str, Any]] = [
                {"namespace": ns, "name": n, "count": c} for (ns, n), c in self._creates.items()
            ]
        phases = Counter(p["phase"] for p in pods)
        return {
            "requests": requests,
            "pods": pods,
            "creates": creates,
            "duplicate_creates": [c for c in creates if c["count"] > 1],
            "phases": dict(phases),
        }
