"""CPU time and memory of a process together with every process it started (psutil, Linux).

Airflow's KubernetesExecutor does part of its work in child processes (two
``multiprocessing.Manager`` servers and the pod watcher), so the executor's cost is the whole
tree's, not the scheduler process's alone:

* :func:`tree_cpu_seconds` - user + system CPU of a process and its live descendants, plus
  ``RUSAGE_CHILDREN`` (descendants already exited and reaped).  Read it at the start and at the
  end of a measurement from inside the measured process: the difference is the tree's CPU over
  the window (a child alive at the start and reaped before the end would count its whole life;
  none of the executors measured here does that).
* :class:`TreeSampler` - samples the tree's summed RSS (what ``ps`` shows per process, so pages a
  forked child still shares with its parent count twice) every 0.2 s and PSS (shared pages split
  between the sharers: the tree's real footprint; dearer to read) every 2 s, from *another*
  process, so sampling costs the measured tree nothing.
"""

from __future__ import annotations

import os
import resource
import threading
from typing import Any

import psutil


def tree_cpu_seconds(process: psutil.Process | None = None) -> dict[str, float]:
    """CPU seconds: ``self`` (all threads), ``children`` (live descendants + reaped ones)."""
    process = process or psutil.Process()
    own = process.cpu_times()
    children = 0.0
    for child in process.children(recursive=True):
        try:
            times = child.cpu_times()
        except psutil.NoSuchProcess:
            continue
        children += times.user + times.system
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    children += reaped.ru_utime + reaped.ru_stime
    return {"self": own.user + own.system, "children": children}


def cpu_by_thread(names: dict[int, str]) -> dict[str, float]:
    """CPU seconds of this process's live threads, summed by name without its number (``pod-launcher-3``)."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        name = names.get(int(tid), "other").rstrip("0123456789").rstrip("-_") or "other"
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


class TreeSampler:
    """Peak summed RSS and PSS of ``pid`` and its descendants while :attr:`active` is set."""

    def __init__(self, pid: int, interval: float = 0.2, pss_every: int = 10) -> None:
        self.root = psutil.Process(pid)
        self.interval = interval
        self.pss_every = pss_every  # PSS reads smaps_rollup, far dearer than RSS: every Nth sample only
        self._samples = 0
        self.active = threading.Event()
        self.peak_rss = 0
        self.peak_pss = 0
        self.peak_processes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tree-sampler", daemon=True)

    def start(self) -> TreeSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def sample(self) -> None:
        try:
            processes = [self.root, *self.root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        with_pss = self._samples % self.pss_every == 0
        self._samples += 1
        rss = pss = 0
        for process in processes:
            try:
                info = process.memory_full_info() if with_pss else process.memory_info()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            rss += info.rss
            pss += getattr(info, "pss", info.rss)
        self.peak_rss = max(self.peak_rss, rss)
        if with_pss:
            self.peak_pss = max(self.peak_pss, pss)
        self.peak_processes = max(self.peak_processes, len(processes))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            if self.active.is_set():
                self.sample()

    def figures(self) -> dict[str, Any]:
        mb = 1024 * 1024
        return {
            "peak_rss_mb": round(self.peak_rss / mb, 1),
            "peak_pss_mb": round(self.peak_pss / mb, 1),
            "processes": self.peak_processes,
        }
