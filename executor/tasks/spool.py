"""The task intake: a spool directory of task JSON files, and the results next to it.

Layout under ``task_intake_dir``::

    incoming/<id>.json   tasks waiting to run or running (written by submitters)
    results/<id>.json    outcomes (written by the executor)
    rejected/<id>.json   files that are not valid tasks, with <id>.error saying why

``<id>`` is derived from the task key, so submitting the same task try twice is harmless.
Submitters must write atomically (``submit`` does: a temporary file, then ``os.replace``).
The executor removes an incoming file only *after* writing the task's result, so a crash at
any point leaves either the task (to be re-read and reconciled against its pod) or its result.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path

from airflow_k8s.executor.contract.errors import ExecutorError, TaskSpecError
from airflow_k8s.executor.tasks.key import TaskKey
from airflow_k8s.executor.tasks.results import TaskResult
from airflow_k8s.executor.tasks.task import Task

log = logging.getLogger(__name__)


def task_file_id(key: TaskKey) -> str:
    return key.digest()[:32]


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Spool:
    """A spool directory; also a :class:`~airflow_k8s.executor.tasks.results.ResultSink`."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.incoming = self.root / "incoming"
        self.results = self.root / "results"
        self.rejected = self.root / "rejected"
        try:
            for directory in (self.incoming, self.results, self.rejected):
                directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ExecutorError(f"task intake directory {self.root} is not usable: {exc}") from exc
        self._seen: set[str] = set()

    # -- submitters -----------------------------------------------------------------------
    def submit(self, task: Task) -> Path:
        path = self.incoming / f"{task_file_id(task.key)}.json"
        _atomic_write(path, json.dumps(task.to_dict(), indent=1))
        return path

    # -- the executor ---------------------------------------------------------------------
    def scan(self) -> list[Task]:
        """Tasks in incoming/ not returned by an earlier scan; invalid files go to rejected/."""
        found: list[Task] = []
        try:
            entries = sorted(os.scandir(self.incoming), key=lambda e: e.name)
        except OSError as exc:
            log.error("cannot scan %s: %s", self.incoming, exc)
            return found
        for entry in entries:
            if not entry.name.endswith(".json") or entry.name.startswith(".") or entry.name in self._seen:
                continue
            path = Path(entry.path)
            if (self.results / entry.name).exists():
                # The result was written but the crash came before the task file was removed.
                path.unlink(missing_ok=True)
                continue
            try:
                task = Task.from_dict(json.loads(path.read_text(encoding="utf-8")), source=str(path))
            except (OSError, ValueError, TaskSpecError) as exc:
                self._reject(path, exc)
                continue
            self._seen.add(entry.name)
            found.append(task)
        return found

    def _reject(self, path: Path, error: Exception) -> None:
        log.error("rejected task file %s: %s", path, error, extra={"event": "task_rejected"})
        target = self.rejected / path.name
        try:
            os.replace(path, target)
            _atomic_write(target.with_suffix(".error"), f"{error}\n")
        except OSError as exc:
            log.error("cannot move %s to %s: %s", path, target, exc)

    def has_result(self, key: TaskKey) -> bool:
        return (self.results / f"{task_file_id(key)}.json").exists()

    def record(self, result: TaskResult) -> None:
        name = f"{task_file_id(result.key)}.json"
        _atomic_write(self.results / name, json.dumps(result.to_dict(), indent=1))
        (self.incoming / name).unlink(missing_ok=True)
        self._seen.discard(name)

    def read_results(self) -> list[TaskResult]:
        out = []
        for path in sorted(self.results.glob("*.json")):
            try:
                out.append(TaskResult.from_dict(json.loads(path.read_text(encoding="utf-8"))))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("unreadable result file %s: %s", path, exc)
        return out
