"""Why the executor failed a task, where the DAG author looks: the try's log in Airflow's UI.

When the executor - not the task - decides a try's fate (the task pod policy, a request no node can
hold, a quota that stayed full, an unschedulable or stuck pod, an image that cannot be pulled, a pod
deleted or preempted, a pod killed under its task), Airflow records only a "state mismatch" audit
event; the task's log shows nothing, or Airflow's "Hostname not available" for a try that never
started.  So the executor also writes the reason as a log file of that try::

    <[logging] base_log_folder>/<the workload's log_path>.executor.log

one JSON line in the Task SDK's own log format (``timestamp``, ``level``, ``event``, ``logger``).
Airflow's log reader takes every file whose name starts with the try's log path (that is how it
finds the triggerer's ``.trigger.<id>.log`` files too), locally and in remote logging, so the
reason appears in the try's log view beside whatever the task itself wrote.  With remote logging
configured (``[logging] remote_logging``), the file is uploaded through Airflow's own remote log
handler, exactly as a task's log is; without it, the file is read where ``base_log_folder`` is
shared with the api-server (the e2e stack shares it; a deployment without remote logging keeps
no task logs after the pod is gone either).  Writing is best effort: a failure is logged, never
raised into the scheduler loop.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger(__name__)
SUFFIX = ".executor.log"
LOGGER = "airflow_k8s.executor"


def reason_path(base_log_folder: str | os.PathLike[str], log_path: str) -> Path | None:
    """Where the reason for the try whose log is ``log_path`` goes; None for a path that escapes the folder."""
    base = Path(base_log_folder).resolve()
    target = (base / f"{log_path}{SUFFIX}").resolve()
    return target if target.is_relative_to(base) and target != base else None


def reason_line(message: str, *, when: datetime | None = None) -> str:
    """One structured log line, as the Task SDK writes them (so the UI shows it with level and time)."""
    stamp = (when or datetime.now(UTC)).isoformat().replace("+00:00", "Z")
    return json.dumps({"timestamp": stamp, "level": "error", "event": message, "logger": LOGGER}) + "\n"


def write_reason(base_log_folder: str | os.PathLike[str], log_path: str | None, message: str) -> Path | None:
    """Append ``message`` to the try's executor log and upload it when remote logging is on; the file, or None."""
    if not log_path:
        return None
    path = reason_path(base_log_folder, log_path)
    if path is None:
        log.warning("not writing the failure reason to %r: outside the log folder", log_path)
        return None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(reason_line(message))
    except OSError as exc:
        log.warning("cannot write the failure reason to %s: %s", path, exc)
        return None
    _upload(path, base_log_folder)
    return path


def _upload(path: Path, base_log_folder: str | os.PathLike[str]) -> None:
    """Through Airflow's remote task log handler (S3, GCS, ...), when one is configured."""
    try:
        from airflow.logging_config import get_remote_task_log

        handler = get_remote_task_log()
        if handler is not None:
            handler.upload(path.relative_to(Path(base_log_folder).resolve()).as_posix(), None)
    except Exception:  # remote storage down, credentials missing: the local file stays
        log.warning("cannot upload the failure reason %s to remote logging", path, exc_info=True)
