"""Task outcomes and where they are recorded.

A result is recorded *before* the executor deletes or labels the task's pod.  That order is
what makes restarts safe: after a crash, a task with a recorded result is never relaunched, and
a terminal pod without a recorded result is still there to be read again.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Protocol

from airflow_k8s.executor.tasks.key import TaskKey

SUCCESS = "success"
FAILED = "failed"


@dataclass(frozen=True)
class TaskResult:
    """The outcome of one task try, with what an operator needs to understand a failure."""

    key: TaskKey
    state: str  # SUCCESS or FAILED
    reason: str  # Completed, Error, OOMKilled, ErrImagePull, PendingTimeout, CreationTimeout, Forbidden, ...
    message: str = ""
    exit_code: int | None = None
    log_tail: tuple[str, ...] = ()
    pod_name: str = ""
    tier: str = ""
    node: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["key"] = asdict(self.key)
        data["log_tail"] = list(self.log_tail)
        for name in ("started_at", "finished_at"):
            value = getattr(self, name)
            data[name] = value.isoformat() if value else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskResult:
        values = dict(data)
        values["key"] = TaskKey(**values["key"])
        values["log_tail"] = tuple(values.get("log_tail") or ())
        for name in ("started_at", "finished_at"):
            raw = values.get(name)
            values[name] = datetime.fromisoformat(raw) if raw else None
        return cls(**values)


class ResultSink(Protocol):
    """Durable record of task outcomes (the Airflow integration would write the metadata DB)."""

    def has_result(self, key: TaskKey) -> bool: ...

    def record(self, result: TaskResult) -> None: ...


class MemorySink:
    """Results kept in memory: for tests, benchmarks and embedding."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.results: dict[TaskKey, TaskResult] = {}
        self.recorded: list[TaskResult] = []

    def has_result(self, key: TaskKey) -> bool:
        with self._lock:
            return key in self.results

    def record(self, result: TaskResult) -> None:
        with self._lock:
            self.results[result.key] = result
            self.recorded.append(result)
