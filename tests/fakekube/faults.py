"""Fault injection: rules that make matching requests fail, stall or lose their connection.

A :class:`FaultRule` matches on HTTP method, a regex searched in the path and optionally one searched in the raw
query string.  ``mode`` decides what happens to a matching request:

* ``"respond"`` -- answer ``status`` with a Status body instead of serving the request (429 adds ``Retry-After``).
* ``"after"`` -- serve the request (e.g. store the pod) and *then* answer ``status``: the "request timed out but the
  object exists" case that idempotent retries must survive.
* ``"close"`` -- cut the connection without answering and without serving.
* ``"close_after"`` -- serve, then cut the connection before the answer.

``latency`` (seconds) is slept first; a rule with ``status=None`` and mode ``"respond"`` only adds latency.  Each
rule fires for the next ``times`` matches (None: forever), with ``probability`` drawn from a seeded RNG so runs are
reproducible.  The first matching rule with a firing left applies.  Watch-level faults live on :class:`Faults` too:
:meth:`Faults.drop_watches`, :meth:`Faults.expire_watches`, :meth:`Faults.compact`.
"""

from __future__ import annotations

import itertools
import random
import re
import threading
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import DEFAULT_REASONS, ApiError
from .store import Store

MODES = ("respond", "after", "close", "close_after")
_MESSAGES = {
    429: "Too many requests, please try again later.",
    500: "Internal error occurred: fakekube injected fault",
    503: "the server is currently unable to handle the request",
    504: "the server was unable to return a response in the time allotted, but may still be processing the request",
}


@dataclass(frozen=True)
class FaultRule:
    method: str | None = None  # None: any method ("GET", "POST"...)
    path: str = ""  # regex, re.search against the URL path
    query: str | None = None  # regex, re.search against the raw query string
    status: int | None = 500
    mode: str = "respond"
    times: int | None = 1  # None: unlimited
    probability: float = 1.0
    latency: float = 0.0
    retry_after: int | None = None  # seconds; 429 defaults to 1
    message: str | None = None
    _path_re: re.Pattern[str] = field(init=False, repr=False, compare=False)
    _query_re: re.Pattern[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        if self.mode in ("respond", "after") and self.status is None and not self.latency:
            raise ValueError("a rule needs a status, a latency, or a close mode")
        object.__setattr__(self, "_path_re", re.compile(self.path))
        object.__setattr__(self, "_query_re", None if self.query is None else re.compile(self.query))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaultRule:
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if not k.startswith("_")}

    def matches(self, method: str, path: str, query: str) -> bool:
        if self.method is not None and self.method.upper() != method:
            return False
        if not self._path_re.search(path):
            return False
        return self._query_re is None or bool(self._query_re.search(query))

    def error(self) -> ApiError:
        status = self.status or 500
        retry_after = self.retry_after if self.retry_after is not None else (1 if status == 429 else None)
        details: dict[str, Any] | None = {"retryAfterSeconds": retry_after} if retry_after else None
        headers = (("Retry-After", str(retry_after)),) if retry_after else ()
        message = self.message or _MESSAGES.get(status, f"fakekube injected HTTP {status}")
        return ApiError(status, message, DEFAULT_REASONS.get(status, "InternalError"), details=details, headers=headers)


class Faults:
    """The server's live fault rules (thread-safe)."""

    def __init__(self, store: Store, seed: int = 0) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._rules: dict[int, list[Any]] = {}  # id -> [rule, remaining]
        self._ids = itertools.count(1)
        self._rng = random.Random(seed)
        self.fired: Counter[int] = Counter()  # rule id -> times it applied

    def seed(self, seed: int) -> None:
        with self._lock:
            self._rng = random.Random(seed)

    def add(self, rule: FaultRule | None = None, **fields: Any) -> int:
        """Install ``rule`` (or ``FaultRule(**fields)``); returns its id."""
        rule = rule if rule is not None else FaultRule(**fields)
        with self._lock:
            rule_id = next(self._ids)
            self._rules[rule_id] = [rule, rule.times]
            return rule_id

    def remove(self, rule_id: int) -> None:
        with self._lock:
            self._rules.pop(rule_id, None)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def rules(self) -> dict[int, FaultRule]:
        with self._lock:
            return {rule_id: entry[0] for rule_id, entry in self._rules.items()}

    def match(self, method: str, path: str, query: str) -> FaultRule | None:
        """The rule that applies to this request (consuming one firing), if any."""
        if not self._rules:
            return None
        with self._lock:
            for rule_id, entry in list(self._rules.items()):
                rule, remaining = entry
                if not rule.matches(method, path, query):
                    continue
                if rule.probability < 1.0 and self._rng.random() >= rule.probability:
                    continue
                if remaining is not None:
                    entry[1] = remaining - 1
                    if entry[1] <= 0:
                        del self._rules[rule_id]
                self.fired[rule_id] += 1
                return rule
        return None

    # ---------------------------------------------------------- shorthands
    def fail_next(self, method: str | None = None, path: str = "", status: int = 500, times: int = 1, **kw: Any) -> int:
        return self.add(method=method, path=path, status=status, times=times, **kw)

    def throttle(self, method: str | None = None, path: str = "", times: int = 1, retry_after: int = 1) -> int:
        """429 TooManyRequests with ``Retry-After`` (as API Priority and Fairness sends)."""
        return self.add(method=method, path=path, status=429, times=times, retry_after=retry_after)

    def fail_after_store(self, path: str = r"/pods$", status: int | None = 500, times: int = 1) -> int:
        """Next create(s) are stored, then answered with ``status`` (None: the connection is cut instead)."""
        mode = "after" if status is not None else "close_after"
        return self.add(method="POST", path=path, status=status, mode=mode, times=times)

    def add_latency(self, seconds: float, method: str | None = None, path: str = "", times: int | None = None) -> int:
        return self.add(method=method, path=path, status=None, latency=seconds, times=times)

    # --------------------------------------------------------- watch faults
    def drop_watches(self) -> int:
        """Abruptly cut every open watch connection (no terminating chunk); returns how many."""
        watchers = self._store.external_watchers()
        for watcher in watchers:
            watcher.drop()
        return len(watchers)

    def expire_watches(self) -> int:
        """Make every open watch send a 410 Expired ERROR event and end."""
        watchers = self._store.external_watchers()
        for watcher in watchers:
            watcher.expire()
        return len(watchers)

    def compact(self) -> int:
        """Forget the event history (older resourceVersions get 410); returns the compaction rv."""
        return self._store.compact()
