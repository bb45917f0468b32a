"""The task intake spool cannot be jammed: every bad entry goes to rejected/, every good task still runs.

Each poison entry sits between two valid tasks; a scan must return both tasks, move the poison to
``rejected/`` with a ``.error`` reason, and return (a FIFO used to block ``open`` forever, deep JSON
raised ``RecursionError`` out of the scan).  Scans run in a thread with a generous deadline, so a
regression fails the test instead of hanging the suite.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from airflow_k8s.executor.contract.errors import ExecutorError
from airflow_k8s.executor.tasks.spool import Spool
from airflow_k8s.executor.tasks.task import Task
from airflow_k8s.executor.tasks.taskfile import MAX_TASK_BYTES, TaskFileError, read_task_file

FIRST = {"dag_id": "d", "task_id": "first", "run_id": "r", "command": ["true"]}
LAST = {"dag_id": "d", "task_id": "last", "run_id": "r", "command": ["true"]}


def scan_within(spool: Spool, seconds: float = 30.0) -> list[Task]:
    """``spool.scan()`` on a thread; fails (instead of hanging) if it does not return in time."""
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["tasks"] = spool.scan()
        except BaseException as exc:  # reported below
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "the intake scan blocked"
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["tasks"]  # type: ignore[return-value]


@pytest.fixture
def spool(tmp_path: Path) -> Spool:
    """A spool with two valid tasks, ``0-first.json`` and ``z-last.json``, around the poison."""
    spool = Spool(tmp_path / "intake")
    (spool.incoming / "0-first.json").write_text(json.dumps(FIRST))
    (spool.incoming / "z-last.json").write_text(json.dumps(LAST))
    return spool


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _device_link(path: Path) -> None:
    path.symlink_to("/dev/zero")


def _link_out(path: Path) -> None:
    outside = path.parent.parent.parent / "outside.json"
    outside.write_text(json.dumps({**FIRST, "task_id": "outside"}))
    path.symlink_to(outside)


def _oversize(path: Path) -> None:
    path.write_text(" " * (MAX_TASK_BYTES + 1))


def _deep(path: Path) -> None:
    path.write_text("[" * 100_000 + "]" * 100_000)


def _directory(path: Path) -> None:
    path.mkdir()


def _not_utf8(path: Path) -> None:
    path.write_bytes(b'{"dag_id": "\xff"}')


def _nan(path: Path) -> None:
    path.write_text('{"dag_id": "d", "task_id": "t", "run_id": "r", "map_index": NaN}')


POISON: dict[str, tuple[Callable[[Path], None], str]] = {
    "fifo": (_fifo, "a FIFO; task files must be regular files"),
    "symlink to a device": (_device_link, "a symlink; task files must be regular files"),
    "symlink out of the intake": (_link_out, "a symlink; task files must be regular files"),
    "oversize": (_oversize, f"a task file may have at most {MAX_TASK_BYTES}"),
    "too deep": (_deep, "JSON nested more than 32 levels deep"),
    "directory": (_directory, "a directory; task files must be regular files"),
    "not UTF-8": (_not_utf8, "not UTF-8"),
    "NaN": (_nan, "NaN is not a JSON value"),
}


@pytest.mark.parametrize("kind", sorted(POISON))
def test_a_poison_entry_is_rejected_with_its_reason_and_the_tasks_around_it_still_run(spool, kind):
    make, reason = POISON[kind]
    make(spool.incoming / "m-poison.json")
    tasks = scan_within(spool)
    assert sorted(t.key.task_id for t in tasks) == ["first", "last"]
    assert not os.path.lexists(spool.incoming / "m-poison.json")
    assert os.path.lexists(spool.rejected / "m-poison.json")
    assert reason in (spool.rejected / "m-poison.json.error").read_text()


def test_a_file_not_named_json_is_rejected_and_hidden_files_being_written_are_left_alone(spool):
    (spool.incoming / "task.txt").write_text(json.dumps(FIRST))
    (spool.incoming / ".tmp-123.json").write_text("{")
    assert len(scan_within(spool)) == 2
    assert "named <id>.json" in (spool.rejected / "task.txt.error").read_text()
    assert (spool.incoming / ".tmp-123.json").exists()


def test_an_unreadable_intake_directory_raises_instead_of_reading_nothing(spool):
    for entry in spool.incoming.iterdir():
        entry.unlink()
    spool.incoming.rmdir()
    spool.incoming.write_text("not a directory")
    with pytest.raises(ExecutorError, match="cannot be listed"):
        scan_within(spool)


def test_an_entry_that_cannot_be_moved_is_reported_once_and_skipped(spool, caplog):
    (spool.incoming / "m-bad.json").write_text("{")
    spool.rejected.rmdir()
    spool.rejected.write_text("the rejected/ directory is gone")
    with caplog.at_level(logging.ERROR):
        assert len(scan_within(spool)) == 2
        assert scan_within(spool) == []  # the valid tasks were returned once; the bad entry is skipped
    assert sum("cannot move" in r.getMessage() for r in caplog.records) == 1
    (spool.incoming / "m-bad.json").write_text(
        '{"dag_id": "d", "task_id": "fixed", "run_id": "r", "command": ["true"]}'
    )
    os.utime(spool.incoming / "m-bad.json", ns=(0, 1))
    assert [t.key.task_id for t in scan_within(spool)] == ["fixed"]


def test_read_task_file_refuses_a_fifo_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "t.json")
    with pytest.raises(TaskFileError, match="a FIFO"):
        read_task_file(tmp_path / "t.json")


# -- files sharing a task key -------------------------------------------------------------------------
def result_of(task: Task):
    from airflow_k8s.executor.tasks.results import SUCCESS, TaskResult

    return TaskResult(key=task.key, state=SUCCESS, reason="Completed", pod_name="p")


def test_a_second_file_holding_the_same_task_try_is_rejected_naming_the_first(spool):
    (spool.incoming / "m-copy-of-first.json").write_text(json.dumps(FIRST))
    tasks = scan_within(spool)
    assert sorted(t.key.task_id for t in tasks) == ["first", "last"]
    assert sorted(p.name for p in spool.incoming.iterdir()) == ["0-first.json", "z-last.json"]
    reason = (spool.rejected / "m-copy-of-first.json.error").read_text()
    assert "the same task try as incoming/0-first.json" in reason


def test_the_file_a_task_was_read_from_is_removed_with_its_result_whatever_its_name(spool):
    tasks = {t.key.task_id: t for t in scan_within(spool)}
    spool.record(result_of(tasks["first"]))
    assert sorted(p.name for p in spool.incoming.iterdir()) == ["z-last.json"]


def test_a_file_whose_task_has_a_result_is_removed_by_the_next_scheduler(spool, tmp_path):
    tasks = {t.key.task_id: t for t in scan_within(spool)}
    spool.record(result_of(tasks["first"]))
    (spool.incoming / "again-first.json").write_text(json.dumps(FIRST))  # e.g. restored from a backup
    later = Spool(spool.root)  # a restarted scheduler
    assert [t.key.task_id for t in scan_within(later)] == ["last"]
    assert sorted(p.name for p in spool.incoming.iterdir()) == ["z-last.json"]
