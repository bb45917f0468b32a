"""Log retention for a logs volume: what the platform's ``log-groomer`` sidecars run.

Airflow's scheduler, dag-processor, triggerer and api-server write their own logs under
``/opt/airflow/logs``, an ``emptyDir`` with a ``sizeLimit``: when the files outgrow it, the kubelet
*evicts the pod*.  :func:`groom` keeps the directory within bounds, oldest first:

1. every regular file older than ``max_age_seconds`` (by modification time) is deleted - the
   retention the official Helm chart's log-groomer applies (``retentionDays``);
2. then, while the files still take more than ``max_bytes`` of disk (allocated blocks, what the
   kubelet measures), the least recently modified files are deleted until they fit - so a burst of
   logging shrinks the history instead of getting the pod evicted;
3. directories left empty are removed (the top directory is kept).

Only regular files are touched: symlinks are neither followed nor deleted, so a link planted in
the volume cannot make the groomer delete anything outside it.  A file that vanishes or cannot be
deleted meanwhile (another process removed it) is skipped and reported, never fatal.
:func:`run` repeats it every ``every_seconds`` until ``stop`` is set (SIGTERM in the sidecar), and
touches :data:`HEARTBEAT` in the directory after each pass: :func:`alive` says whether a pass
finished recently, so a wedged groomer is restarted.  The sidecar's probes run the same test as
:func:`probe_command`, a few lines of isolated Python that import nothing of this package: they run
beside the groomer in its small memory limit, where a probe importing the executor's CLI (~55 MB
each, liveness and readiness at once) pushed the container past 128Mi and had it OOM-killed every
five minutes on a real cluster - and the role's pod out of its Service.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("airflow_k8s.executor.logfiles")
BLOCK = 512  # st_blocks unit
HEARTBEAT = ".log-groomer-heartbeat"  # never groomed


@dataclass
class GroomReport:
    expired: list[str] = field(default_factory=list)  # deleted for their age
    evicted: list[str] = field(default_factory=list)  # deleted to fit max_bytes
    errors: list[str] = field(default_factory=list)
    bytes_before: int = 0
    bytes_after: int = 0


@dataclass(frozen=True)
class _File:
    path: str
    mtime: float
    size: int


def _files(root: Path) -> list[_File]:
    out = []
    for directory, _dirs, names in os.walk(root, followlinks=False):
        for name in names:
            path = os.path.join(directory, name)
            try:
                info = os.lstat(path)
            except FileNotFoundError:
                continue
            if stat.S_ISREG(info.st_mode) and not (name == HEARTBEAT and Path(directory) == root):
                out.append(_File(path, info.st_mtime, info.st_blocks * BLOCK))
    return out


def _delete(item: _File, report: GroomReport, into: list[str]) -> bool:
    try:
        os.unlink(item.path)
    except FileNotFoundError:
        return True  # gone already: its space is free
    except OSError as exc:
        report.errors.append(f"{item.path}: {exc}")
        return False
    into.append(item.path)
    return True


def _prune_empty_directories(root: Path) -> None:
    for directory, _dirs, _names in os.walk(root, topdown=False, followlinks=False):  # children first
        if Path(directory) == root:
            continue
        try:
            if not os.listdir(directory):
                os.rmdir(directory)
        except OSError:
            pass  # written to meanwhile, or already gone


def groom(root: Path, *, max_age_seconds: float, max_bytes: int, now: float | None = None) -> GroomReport:
    """One pass over ``root`` (module docstring); returns what was deleted and what it freed."""
    now = time.time() if now is None else now
    report = GroomReport()
    files = _files(root)
    report.bytes_before = sum(f.size for f in files)
    kept = []
    for item in files:
        if now - item.mtime > max_age_seconds and _delete(item, report, report.expired):
            continue
        kept.append(item)
    total = sum(f.size for f in kept)
    for item in sorted(kept, key=lambda f: (f.mtime, f.path)):
        if total <= max_bytes:
            break
        if _delete(item, report, report.evicted):
            total -= item.size
    report.bytes_after = total
    _prune_empty_directories(root)
    return report


def run(root: Path, *, max_age_seconds: float, max_bytes: int, every_seconds: float, stop: threading.Event) -> None:
    """Groom ``root`` now and then every ``every_seconds`` until ``stop`` is set."""
    while True:
        report = groom(root, max_age_seconds=max_age_seconds, max_bytes=max_bytes)
        log.info(
            "groomed %s: %d expired, %d evicted for size, %d errors, %d -> %d bytes",
            root, len(report.expired), len(report.evicted), len(report.errors),
            report.bytes_before, report.bytes_after,
        )  # fmt: skip
        for error in report.errors[:10]:
            log.warning("could not delete %s", error)
        (root / HEARTBEAT).touch()
        if stop.wait(every_seconds):
            return


# argv: the heartbeat's path, the seconds; exit 0 when it is that fresh, 1 when older, missing or unreadable
_PROBE = "import os,sys,time;sys.exit(time.time()-os.stat(sys.argv[1]).st_mtime>float(sys.argv[2]))"


def probe_command(root: str, within_seconds: float, python: str = "python") -> list[str]:
    """The exec probe :func:`alive` means, cheap enough to run beside the groomer (see the module doc)."""
    return [python, "-I", "-S", "-c", _PROBE, str(Path(root) / HEARTBEAT), str(within_seconds)]


def alive(root: Path, within_seconds: float, now: float | None = None) -> bool:
    """Did a grooming pass over ``root`` finish within the last ``within_seconds``?"""
    now = time.time() if now is None else now
    try:
        return now - (root / HEARTBEAT).stat().st_mtime <= within_seconds
    except FileNotFoundError:
        return False
