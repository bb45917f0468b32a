"""Reading task JSON that anyone with write access to the intake could have put there.

A task file is read only if it is a *regular file* under :data:`MAX_TASK_BYTES`, opened without
following symlinks and without blocking, so a FIFO (whose ``open`` would block the intake
forever), a device (``/dev/zero``: endless), a symlink (to anything outside) or a huge file is a
refusal with a reason, never a hang or a crash.  JSON is refused when nested deeper than
:data:`MAX_JSON_DEPTH` (the standard parser recurses; deep input raised ``RecursionError`` out of
the intake), or when it is not UTF-8.  Every refusal is a :class:`TaskFileError` whose message
starts with the source.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path
from typing import Any

from airflow_k8s.executor.contract import jsonfast
from airflow_k8s.executor.contract.errors import TaskSpecError
from airflow_k8s.executor.tasks.task import Task

MAX_TASK_BYTES = 1024 * 1024
"""A task with its pod_override is a few KiB; 1 MiB is a ConfigMap's limit."""
MAX_JSON_DEPTH = 32
"""The task envelope plus a Pod's deepest fields is about 12 levels."""
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


class TaskFileError(TaskSpecError):
    """A task file cannot be read as a task: not a regular file, too large, too deep, not JSON."""


def kind_of(mode: int) -> str:
    """What a file mode is, in words (for refusals)."""
    for test, name in (
        (stat.S_ISLNK, "a symlink"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a directory"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def read_task_file(path: str | os.PathLike[str]) -> Task:
    """The task in the file at ``path`` (see the module docstring for what is refused)."""
    source = str(path)
    return parse_task_json(_read_bytes(Path(path)), source=source)


def _read_bytes(path: Path) -> bytes:
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise TaskFileError(f"{path}: a symlink; task files must be regular files") from exc
        raise TaskFileError(f"{path}: cannot read task file: {exc.strerror or exc}") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise TaskFileError(f"{path}: {kind_of(info.st_mode)}; task files must be regular files")
        if info.st_size > MAX_TASK_BYTES:
            raise TaskFileError(f"{path}: {info.st_size} bytes; a task file may have at most {MAX_TASK_BYTES}")
        data = os.read(fd, MAX_TASK_BYTES + 1)
        if len(data) > MAX_TASK_BYTES:  # grew since fstat
            raise TaskFileError(f"{path}: larger than {MAX_TASK_BYTES} bytes")
        return data
    except OSError as exc:
        raise TaskFileError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)


def parse_task_json(data: bytes | str, *, source: str) -> Task:
    """A task from JSON text, with the size, encoding and depth limits of a task file."""
    if len(data) > MAX_TASK_BYTES:
        raise TaskFileError(f"{source}: larger than {MAX_TASK_BYTES} bytes")
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError as exc:
        raise TaskFileError(f"{source}: not UTF-8 ({exc.reason} at byte {exc.start})") from exc
    return Task.from_dict(load_json(text, source=source), source=source)


def load_json(text: str, *, source: str) -> Any:
    """JSON of at most :data:`MAX_JSON_DEPTH` levels; ``NaN``/``Infinity`` are not JSON and refused."""
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise TaskFileError(f"{source}: invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    except RecursionError as exc:
        raise TaskFileError(f"{source}: JSON nested more than {MAX_JSON_DEPTH} levels deep") from exc
    except ValueError as exc:
        raise TaskFileError(f"{source}: invalid JSON: {exc}") from exc
    if jsonfast.depth(value) > MAX_JSON_DEPTH:
        raise TaskFileError(f"{source}: JSON nested more than {MAX_JSON_DEPTH} levels deep")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")
