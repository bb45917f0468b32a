"""The task intake: a spool directory of task JSON files, and the results next to it.

Layout under ``task_intake_dir``::

    incoming/<id>.json   tasks waiting to run or running (written by submitters)
    results/<id>.json    outcomes (written by the executor)
    rejected/<name>      entries that are not valid tasks, with <name>.error saying why

``<id>`` is derived from the task key, so submitting the same task try twice is harmless; a file
under another name holding a task try already read from another file is rejected (naming that
file), and when a task's result is written every file it was read from is removed.
Submitters must write atomically (``submit`` does: a temporary file, then ``os.replace``).
The executor removes an incoming file only *after* writing the task's result, so a crash at
any point leaves either the task (to be re-read and reconciled against its pod) or its result.

The intake cannot be jammed: every entry of ``incoming/`` is judged on its own
(:mod:`~airflow_k8s.executor.tasks.taskfile`: regular files only, size and depth caps, no
blocking opens), and anything that is not a valid task - a FIFO, a device, a symlink, a
directory, an oversized, deeply nested or malformed file, a name without ``.json`` - is moved to
``rejected/`` with a ``.error`` file saying why, while every valid task around it still runs.
Hidden names (``.tmp-*``: a submitter's file being written) are left alone.  When ``incoming/``
itself cannot be listed, :meth:`Spool.scan` raises, so the engine reports the intake stalled on
``/readyz`` instead of quietly reading nothing.  An entry that cannot even be moved is logged
once and skipped until it changes.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import tempfile
from pathlib import Path

from airflow_k8s.executor.contract.errors import ExecutorError
from airflow_k8s.executor.tasks.key import TaskKey
from airflow_k8s.executor.tasks.results import TaskResult
from airflow_k8s.executor.tasks.task import Task
from airflow_k8s.executor.tasks.taskfile import kind_of, read_task_file

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
        self._files: dict[TaskKey, str] = {}  # key -> the incoming/ entry it was read from
        self._stuck: dict[str, tuple[int, int, int]] = {}  # name -> (inode, size, mtime) of an unmovable entry

    # -- submitters -----------------------------------------------------------------------
    def submit(self, task: Task) -> Path:
        path = self.incoming / f"{task_file_id(task.key)}.json"
        _atomic_write(path, json.dumps(task.to_dict(), indent=1))
        return path

    # -- the executor ---------------------------------------------------------------------
    def scan(self) -> list[Task]:
        """Tasks in incoming/ not returned by an earlier scan; everything else goes to rejected/.

        Raises :class:`ExecutorError` when incoming/ cannot be listed (the intake is stalled).
        """
        try:
            with os.scandir(self.incoming) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError as exc:
            raise ExecutorError(f"task intake {self.incoming} cannot be listed: {exc.strerror or exc}") from exc
        found: list[Task] = []
        for entry in entries:
            if entry.name.startswith(".") or entry.name in self._seen or self._still_stuck(entry):
                continue
            try:
                task = self._read(entry)
            except Exception as exc:  # one bad entry never stops the scan
                self._reject(entry, exc)
                continue
            if task is None:
                continue
            first = self._files.get(task.key)
            if first is not None and first != entry.name and (self.incoming / first).exists():
                self._reject(entry, ExecutorError(f"{entry.path}: the same task try as incoming/{first}, which runs"))
                continue
            self._files[task.key] = entry.name
            self._seen.add(entry.name)
            found.append(task)
        return found

    def _read(self, entry: os.DirEntry[str]) -> Task | None:
        """The task of one entry; None for an entry already done; raises with the reason to reject it."""
        mode = entry.stat(follow_symlinks=False).st_mode
        if not stat.S_ISREG(mode):
            raise ExecutorError(f"{entry.path}: {kind_of(mode)}; task files must be regular files")
        if not entry.name.endswith(".json"):
            raise ExecutorError(f"{entry.path}: task files are named <id>.json")
        if (self.results / entry.name).exists():
            # The result was written but the crash came before the task file was removed.
            Path(entry.path).unlink(missing_ok=True)
            return None
        task = read_task_file(entry.path)
        if entry.name != f"{task_file_id(task.key)}.json" and self.has_result(task.key):
            Path(entry.path).unlink(missing_ok=True)  # a file under another name whose task is done
            return None
        return task

    def _still_stuck(self, entry: os.DirEntry[str]) -> bool:
        if entry.name not in self._stuck:
            return False
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            return True
        if self._stuck[entry.name] == (info.st_ino, info.st_size, info.st_mtime_ns):
            return True
        del self._stuck[entry.name]
        return False

    def _reject(self, entry: os.DirEntry[str], error: Exception) -> None:
        log.error("rejected task file %s: %s", entry.path, error, extra={"event": "task_rejected"})
        target = self.rejected / entry.name
        try:
            if target.is_dir() and not target.is_symlink():
                target = self.rejected / f"{entry.name}.{os.urandom(4).hex()}"
            os.replace(entry.path, target)
            _atomic_write(target.with_name(f"{target.name}.error"), f"{error}\n")
        except OSError as exc:
            log.error("cannot move %s to %s: %s", entry.path, target, exc, extra={"event": "task_reject_failed"})
            try:
                info = entry.stat(follow_symlinks=False)
                self._stuck[entry.name] = (info.st_ino, info.st_size, info.st_mtime_ns)
            except OSError:
                self._stuck[entry.name] = (0, 0, 0)

    def has_result(self, key: TaskKey) -> bool:
        return (self.results / f"{task_file_id(key)}.json").exists()

    def record(self, result: TaskResult) -> None:
        name = f"{task_file_id(result.key)}.json"
        _atomic_write(self.results / name, json.dumps(result.to_dict(), indent=1))
        for done in {name, self._files.pop(result.key, name)}:  # the file it was read from may be named otherwise
            (self.incoming / done).unlink(missing_ok=True)
            self._seen.discard(done)

    def read_results(self) -> list[TaskResult]:
        out = []
        for path in sorted(self.results.glob("*.json")):
            try:
                out.append(TaskResult.from_dict(json.loads(path.read_text(encoding="utf-8"))))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("unreadable result file %s: %s", path, exc)
        return out
