"""Stands in for the tasks' own state reports, and audits which pods were created for which task.

In Airflow 3 a task reports its state itself, through the Execution API, before its pod exits;
the provider's executor then reads that state from the database when the pod has succeeded (it
reports what the database says).  The fake API server's pods run nothing, so this stand-in plays
the task's part, outside the measured process: it watches the namespace and marks a task
instance ``success`` as soon as it sees the task's first pod - well before the pod can succeed
(pods run for ``--run-seconds``) and after the executor's pre-create check has read ``queued``.

The same watch records every pod created per task try (from the pods' ``dag_id``/``task_id``/
``run_id``/``map_index``/``try_number`` annotations, which both executors write).  The provider names
pods randomly, so a second pod for one task has another name and the fake's same-name duplicate
count would miss it; :meth:`TaskStandIn.duplicated` does not.
"""

from __future__ import annotations

import json
import queue
import re
import sqlite3
import threading
import time
import urllib.request
from collections import defaultdict
from pathlib import Path
from typing import Any

TaskTry = tuple[str, str, str, int, int]  # dag_id, task_id, run_id, map_index, try_number
# Every pod is ADDED exactly once on a watch that resumes from the last version seen, so only those
# lines are parsed (cheaply: this process shares the machine with the executor and the fake).
_ADDED = b'{"type":"ADDED"'
_ERROR = b'{"type":"ERROR"'
_VERSION = re.compile(rb'"resourceVersion":"(\d+)"')


class TaskStandIn:
    def __init__(self, api_url: str, namespace: str, database: Path) -> None:
        self.api_url = api_url
        self.namespace = namespace
        self.database = database
        self.pods: dict[TaskTry, set[str]] = defaultdict(set)  # task try -> uids of its pods
        self.written = 0
        self.errors: list[str] = []
        self._seen = threading.Condition()
        self._updates: queue.SimpleQueue[TaskTry | None] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._watch, name="standin-watch", daemon=True),
            threading.Thread(target=self._write, name="standin-write", daemon=True),
        ]

    def start(self) -> TaskStandIn:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._updates.put(None)
        for thread in self._threads:
            thread.join(10)

    def wait_for_pods(self, count: int, timeout: float) -> bool:
        """Until the watch has seen ``count`` pods (the fake's create count) or ``timeout``."""
        with self._seen:
            return self._seen.wait_for(lambda: self.pod_count() >= count, timeout)

    def pod_count(self) -> int:
        return sum(len(uids) for uids in self.pods.values())

    def duplicated(self) -> int:
        """Task tries for which more than one pod was created."""
        return sum(1 for uids in self.pods.values() if len(uids) > 1)

    # -- the watch ------------------------------------------------------------------------------
    def _watch(self) -> None:
        version = ""
        while not self._stop.is_set():
            url = (
                f"{self.api_url}/api/v1/namespaces/{self.namespace}/pods?watch=true"
                f"&allowWatchBookmarks=true&timeoutSeconds=60&resourceVersion={version}"
            )
            try:
                with urllib.request.urlopen(url, timeout=5) as stream:  # noqa: S310 - loopback only
                    for line in stream:
                        if self._stop.is_set():
                            return
                        if line.startswith(_ADDED):  # a pod's creation: the only event read in full
                            self._added(json.loads(line)["object"])
                        elif line.startswith(_ERROR):  # 410: history expired; the creations missed show as lost
                            self.errors.append(f"watch: {line[:200]!r}")
                            version = ""
                            break
                        found = _VERSION.search(line)
                        version = found.group(1).decode() if found else version
            except TimeoutError:
                continue  # a quiet namespace: watch again from the last version seen
            except (OSError, ValueError) as exc:
                if not self._stop.is_set():
                    self.errors.append(f"watch: {exc!r}")
                    time.sleep(0.05)

    def _added(self, pod: dict[str, Any]) -> None:
        meta = pod.get("metadata") or {}
        notes = meta.get("annotations") or {}
        if "dag_id" not in notes:
            return
        key = (
            notes["dag_id"], notes["task_id"], notes.get("run_id", ""),
            int(notes.get("map_index", -1)), int(notes.get("try_number", 0)),
        )  # fmt: skip
        with self._seen:
            first = not self.pods.get(key)
            self.pods[key].add(meta["uid"])
            self._seen.notify_all()
        if first:
            self._updates.put(key)

    # -- the task's report ----------------------------------------------------------------------
    def _write(self) -> None:
        db = sqlite3.connect(self.database, timeout=30)
        try:
            while True:
                batch = [self._updates.get()]
                time.sleep(0.01)  # gather what arrives meanwhile: one transaction per burst
                while True:
                    try:
                        batch.append(self._updates.get_nowait())
                    except queue.Empty:
                        break
                rows = [item[:4] for item in batch if item is not None]
                if rows:
                    with db:
                        db.executemany(
                            "UPDATE task_instance SET state = 'success' "
                            "WHERE dag_id = ? AND task_id = ? AND run_id = ? AND map_index = ?",
                            rows,
                        )
                    self.written += len(rows)
                if None in batch:
                    return
        except sqlite3.Error as exc:
            self.errors.append(f"database: {exc!r}")
        finally:
            db.close()
