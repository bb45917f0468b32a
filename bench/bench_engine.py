"""Push N tasks (default 10,000) through the executor engine against the fake API server.

The fake Kubernetes API runs in its own process (``python -m tests.fakekube``), so this
process's CPU time and memory are the scheduler's alone.  It runs the fake's ``strict`` preset
(server-side defaults, apiserver-shaped bookmarks once a minute, graceful deletion...) unless
``--fake kind`` asks for the kinder defaults.  Prints:

* launch throughput: pod creates per second, from the first create to the last;
* scheduler CPU per task lifecycle: this process's CPU time / N (submit, build, create,
  watch events, result, delete);
* peak RSS of this process;
* the CPU per task split by thread group (launchers, watcher, engine loop, cleanup, main);
* added latency from "queued" to "create request sent", p50 / p99;
* correctness: tasks lost, tasks recorded twice, pods created twice (from the fake's stats).

Targets (issue #4): >= 200 creates/s, <= 1 ms CPU per task, <= 300 MB peak RSS at 10,000 tasks;
(issue #16) <= 1 ms CPU per task and >= 1,000 creates/s at 3,000 tasks on a quiet machine.

    python bench/bench_engine.py [--tasks 10000] [--rate 200] [--window 2000] [--json]
    python bench/bench_engine.py --rss-series 1000,10000,30000,100000   # memory flat in finished tasks

Without ``--rate`` all tasks arrive at once, so queued-to-create latency is mostly queueing
behind the burst; with ``--rate`` below the launch capacity it is the scheduler's own delay.
``--window W`` keeps at most W tasks unfinished, as Airflow's ``parallelism`` does, so memory
shows what the engine keeps per *finished* task (the queue itself is state, the finished are
not).  ``--rss-series`` runs one fresh process per count with ``--window`` = N_max and prints
each one's peak RSS and its ratio to the 10,000-task run (target: 100,000 within 1.5x).
The benchmark's own bookkeeping is constant-size (a bitmap of recorded tasks, sampled
latencies), so the RSS is the engine's.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fakeproc import FakeApi, creation_span  # noqa: E402

from airflow_k8s.executor.contract.config_loader import parse_config  # noqa: E402
from airflow_k8s.executor.engine import scheduling as scheduling_module  # noqa: E402
from airflow_k8s.executor.engine.core import Engine, EngineOptions  # noqa: E402
from airflow_k8s.executor.kube.client import KubeClient  # noqa: E402
from airflow_k8s.executor.pods.templates import TemplateStore  # noqa: E402
from airflow_k8s.executor.tasks.task import Task  # noqa: E402

TARGETS = {"creates_per_s": 1000.0, "cpu_ms_per_task": 1.0, "peak_rss_mb": 300.0}  # #16: quiet machine, 3,000 tasks
CONFIG = """\
[kubernetes]
namespace = bench
worker_container_image = apache/airflow:2.8.0
worker_pods_max = {n_max}
worker_pods_creation_qps = {qps}
worker_pods_creation_burst = {burst}
worker_pods_creation_workers = {workers}
watch_timeout_seconds = 300
pod_creation_timeout = 600
max_pod_pending_timeout = 600
"""


def cpu_by_thread_group() -> dict[str, float]:
    """CPU seconds per thread group of this process (Linux /proc), e.g. pod-launcher, pod-watcher."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/self/task/{tid}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        name = names.get(int(tid), "other")
        group = name.rstrip("0123456789").rstrip("-_") if name != "MainThread" else "main"
        out[group] = out.get(group, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


class BitmapSink:
    """Which of the N tasks have a result, in N bits (task i is ``run_{i // 100}.task_{i % 100}``)."""

    def __init__(self, tasks: int) -> None:
        self.bits = bytearray((tasks + 7) // 8)
        self.count = self.twice = self.succeeded = 0
        self._lock = threading.Lock()

    @staticmethod
    def index(key: Any) -> int:
        return int(key.run_id[4:]) * 100 + int(key.task_id[5:])

    def has_result(self, key: Any) -> bool:
        i = self.index(key)
        return bool(self.bits[i >> 3] & (1 << (i & 7)))

    def record(self, result: Any) -> None:
        i = self.index(result.key)
        with self._lock:
            if self.bits[i >> 3] & (1 << (i & 7)):
                self.twice += 1
                return
            self.bits[i >> 3] |= 1 << (i & 7)
            self.count += 1
            self.succeeded += result.state == "success"


def make_task(index: int) -> Task:
    return Task.from_dict(
        {"dag_id": "bench", "task_id": f"task_{index % 100}", "run_id": f"run_{index // 100}", "command": ["true"]}
    )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def run(args: argparse.Namespace) -> dict[str, Any]:
    fake = FakeApi(args.run_seconds, strict=args.fake == "strict")
    url = fake.url
    try:
        config = parse_config(
            CONFIG.format(n_max=args.n_max, qps=args.qps, burst=args.burst, workers=args.workers),
            source="bench.cfg",
            environ={},
        )
        templates = TemplateStore(ROOT / "pod_templates")
        kube = KubeClient.for_host(url, pool_size=args.workers + 8)
        sink = BitmapSink(args.tasks)
        sample = max(1, args.tasks // 10_000)  # latencies of every sample-th task only: constant memory
        options = replace(EngineOptions(), tick=0.05, aux_workers=args.aux_workers)
        submitted: dict[Any, float] = {}
        create_sent: dict[Any, float] = {}
        lock = threading.Lock()
        real_build = scheduling_module.build_pod

        def timed_build(task: Task, *a: Any, **kw: Any) -> dict[str, Any]:
            pod = real_build(task, *a, **kw)
            if task.key in submitted:
                with lock:  # the launcher sends the create right after building the pod
                    create_sent[task.key] = time.perf_counter()
            return pod

        scheduling_module.build_pod = timed_build  # type: ignore[assignment]
        engine = Engine(config, templates, kube, sink=sink, options=options)
        started = time.perf_counter()
        engine.start()
        engine.synced.wait(30)  # the initial list is a one-time start-up cost, reported apart
        startup_ms = (time.perf_counter() - started) * 1000
        cpu0, wall0 = time.process_time(), time.perf_counter()
        threads0 = cpu_by_thread_group()
        interval = 1.0 / args.rate if args.rate else 0.0
        for index in range(args.tasks):
            if interval:  # paced arrivals: latency is the scheduler's own, not queueing behind a burst
                delay = wall0 + index * interval - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            while args.window and index - sink.count >= args.window:  # at most W unfinished, like parallelism
                time.sleep(0.002)
            task = make_task(index)
            if index % sample == 0:
                submitted[task.key] = time.perf_counter()
            engine.submit(task)
        finished = engine.wait_idle(args.timeout)
        wall = time.perf_counter() - wall0
        cpu = time.process_time() - cpu0
        threads = {k: v - threads0.get(k, 0.0) for k, v in cpu_by_thread_group().items()}
        engine.stop()
        # Before the fake's records come in: they list every pod ever created (tens of MB at 100,000
        # tasks) and are the benchmark's own bookkeeping, not the engine's memory.
        peak_rss_mb = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        scheduling_module.build_pod = real_build
        stats = fake.stats()
    finally:
        fake.stop()

    creates, span = creation_span(stats)
    latencies = [(create_sent[k] - submitted[k]) * 1000 for k in submitted if k in create_sent]
    return {
        "tasks": args.tasks,
        "fake": args.fake,
        "arrival": f"{args.rate:g}/s" if args.rate else "burst",
        "finished": finished,
        "startup_sync_ms": round(startup_ms, 1),
        "wall_s": round(wall, 2),
        "creates": creates,
        "creates_per_s": round(creates / span, 1) if span > 0 else None,
        "cpu_ms_per_task": round(cpu * 1000 / args.tasks, 3),
        "peak_rss_mb": peak_rss_mb,
        "queued_to_create_p50_ms": round(percentile(latencies, 0.50), 1),
        "queued_to_create_p99_ms": round(percentile(latencies, 0.99), 1),
        "lost": args.tasks - sink.count,
        "recorded_twice": sink.twice,
        "created_twice": len(stats["duplicate_creates"]),
        "succeeded": sink.succeeded,
        "window": args.window or None,
        "load_average": " ".join(f"{x:.1f}" for x in os.getloadavg()),
        "cpu_ms_per_task_by_thread": {
            name: round(seconds * 1000 / args.tasks, 3) for name, seconds in sorted(threads.items()) if seconds > 0
        },
    }


def rss_series(args: argparse.Namespace) -> int:
    """One fresh process per task count, at most N_max unfinished; their peak RSS side by side."""
    rows = []
    for count in (int(part) for part in args.rss_series.split(",")):
        command = [sys.executable, __file__, "--tasks", str(count), "--window", str(args.window or args.n_max),
                   "--n-max", str(args.n_max), "--workers", str(args.workers), "--json"]  # fmt: skip
        print(f"running {count} tasks ...", file=sys.stderr, flush=True)
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(done.stdout, done.stderr, file=sys.stderr)
            return 1
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    reference = next((r["peak_rss_mb"] for r in rows if r["tasks"] == 10_000), None)
    print("tasks     peak RSS MB  vs 10,000  CPU ms/task  creates/s  lost  load")
    for r in rows:
        ratio = f"{r['peak_rss_mb'] / reference:.2f}x" if reference else "-"
        print(f"{r['tasks']:<9} {r['peak_rss_mb']:<12} {ratio:<10} {r['cpu_ms_per_task']:<12} "
              f"{r['creates_per_s']:<10} {r['lost']:<5} {r['load_average']}")  # fmt: skip
    big = next((r["peak_rss_mb"] for r in rows if r["tasks"] == 100_000), None)
    if big is not None and reference:
        verdict = "PASS" if big <= 1.5 * reference else "FAIL"
        print(f"{verdict}  100,000 tasks within 1.5x of 10,000 ({big / reference:.2f}x)")
    return 0 if all(r["lost"] == 0 and r["recorded_twice"] == 0 for r in rows) else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--n-max", type=int, default=2_000, help="worker_pods_max")
    parser.add_argument("--qps", type=float, default=2_000.0, help="worker_pods_creation_qps")
    parser.add_argument("--burst", type=int, default=200)
    # Loopback answers in about a millisecond, so a few threads keep up; more only add GIL contention.
    parser.add_argument("--workers", type=int, default=4, help="worker_pods_creation_workers")
    parser.add_argument("--aux-workers", type=int, default=2, help="threads for log reads and pod deletion")
    parser.add_argument("--run-seconds", type=float, default=0.2, help="simulated task runtime")
    parser.add_argument("--rate", type=float, default=0.0, help="submit N tasks/s (default: all at once)")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--fake", choices=("strict", "kind"), default="strict", help="the fake API server's preset")
    parser.add_argument("--window", type=int, default=0, help="at most this many tasks unfinished (0: no limit)")
    parser.add_argument("--rss-series", help="comma-separated task counts: peak RSS of each in a fresh process")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if args.rss_series:
        return rss_series(args)
    figures = run(args)
    if args.json:
        print(json.dumps(figures))
    else:
        width = max(map(len, figures))
        for name, value in figures.items():
            target = TARGETS.get(name)
            note = ""
            if target is not None and value is not None:
                ok = value >= target if name == "creates_per_s" else value <= target
                note = f"   (target {'>=' if name == 'creates_per_s' else '<='} {target:g}: {'ok' if ok else 'MISSED'})"
            print(f"{name:<{width}}  {value}{note}")
    correct = figures["finished"] and figures["lost"] == 0 and figures["recorded_twice"] == 0
    return 0 if correct and figures["created_twice"] == 0 else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
