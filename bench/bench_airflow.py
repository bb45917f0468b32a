"""N queued Airflow tasks through this executor and through Airflow's KubernetesExecutor, same fake API.

    .venv-airflow/bin/python bench/bench_airflow.py [--tasks 2000] [--json]

Each executor runs in a fresh process of its own (:mod:`airflow_worker`), driven as Airflow's
scheduler drives it (``queue_workload``, then ``heartbeat()`` in a loop), against a fresh fake
API server in another process (:mod:`fakeproc`: its ``strict`` preset unless ``--fake kind``,
one roomy node, pods that succeed ``--run-seconds`` after they start) and the same SQLite
metadata database, whose N task instances are reset to ``queued`` before every run
(:mod:`airflow_home`; the job id is numeric, so both executors run their stale-workload check:
the provider one query per task, ours one per batch).
A stand-in for the tasks' own state reports marks each task instance ``success`` when its pod
appears, and counts the pods created per task (:mod:`airflow_standin`).

Runs (``--runs`` picks some), interleaved: ``--repeat`` rounds (3) of every run in this order, so
that a burst of load from other jobs on a shared machine hits one sample of each, not every
sample of one:

* ``provider``: the provider with its defaults (``worker_pods_creation_batch_size = 1``);
* ``provider64``: the provider with ``worker_pods_creation_batch_size = 64``;
* ``ours``: this executor with its defaults.  It has no client-side rate limit: the API server's
  own pushback paces it (``executor/kube/flowcontrol.py``);
* ``ours-qps`` (only with ``--ours-qps``): this executor with an explicit creation cap.

``[core] parallelism = N`` and ``worker_pods_max = N`` for all (the provider has no such key: its
``parallelism`` is its bound), so no slot limit caps any of them, and all read the same
``[kubernetes_executor]`` section: the same pod template, image and namespace.  Nothing else is
changed from either side's defaults.

Per run: pods created per second (the fake's records, first create to last), wall time from the
first ``queue_workload`` to the last terminal event, executor CPU per task (the worker process,
all its threads and every child process: the provider's two Manager servers and its pod watcher;
the window also covers pod deletion), peak RSS of that process tree (and PSS, which does not
count the pages forked children share with their parent twice), task start latency (queued ->
pod created -> pod running, p50 and p99 over the tasks, from the fake's records), tasks lost (no
terminal event) and duplicated (a second pod for a task try, a same-name create, or a terminal
event reported twice).

The headline comes first: the medians of each configuration, their ratios (and the range of the
per-round ratios) and a PASS/FAIL line per target: >= 10x the provider's throughput (defaults
and batch 64) at <= 1/10 of its CPU per task.  Every sample is printed below it.  Compare rows of
one invocation with each other, not across invocations.

``--full`` adds the whole-scheduler scenario (:mod:`bench_scheduler`): a real Airflow (scheduler,
api-server, dag-processor, PostgreSQL) runs one DAG of ``--full-tasks`` tasks through each
executor at both sides' defaults.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_scheduler
from airflow_home import NAMESPACE, ROOT, SHARED_SETTINGS, AirflowHome, make_home, reset_queued
from airflow_standin import TaskStandIn
from fakeproc import FakeApi, creation_span
from proctree import TreeSampler

WORKER = Path(__file__).resolve().parent / "airflow_worker.py"
OURS = "airflow_k8s.executor.airflow.KubernetesPlatformExecutor"
PROVIDER = "KubernetesExecutor"
TARGET_THROUGHPUT = 10.0  # ours / provider, at least
TARGET_CPU = 0.1  # ours / provider, at most
MEDIANS = ("pods_per_s", "wall_s", "cpu_ms_per_task", "peak_rss_mb", "created_p50_s", "created_p99_s",
           "running_p50_s", "running_p99_s")  # fmt: skip


@dataclass(frozen=True)
class Run:
    id: str  # for --runs
    executor: str  # "ours" | "provider"
    config: str  # what the table shows
    settings: dict[str, str] = field(default_factory=dict)  # [kubernetes_executor] key -> value

    @property
    def name(self) -> str:
        return f"{self.executor}: {self.config}"


def plan(args: argparse.Namespace) -> list[Run]:
    both = {"worker_pods_max": str(args.tasks)}
    ours = {**both, "pod_template_dir": str(ROOT / "pod_templates")}
    batch = {**both, "worker_pods_creation_batch_size": "64"}
    runs = [
        Run("provider", "provider", "defaults (worker_pods_creation_batch_size=1)", both),
        Run("provider64", "provider", "worker_pods_creation_batch_size=64", batch),
        Run("ours", "ours", "defaults", ours),
    ]
    if args.ours_qps:
        capped = {"worker_pods_creation_qps": f"{args.ours_qps:g}", "worker_pods_creation_burst": str(args.ours_burst)}
        config = f"creation_qps={args.ours_qps:g}, burst={args.ours_burst}"
        runs.append(Run("ours-qps", "ours", config, {**ours, **capped}))
    chosen = set(args.runs.split(",")) if args.runs else {run.id for run in runs}
    return [run for run in runs if run.id in chosen]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run_one(home: AirflowHome, run: Run, args: argparse.Namespace, workdir: Path, index: int) -> dict[str, Any]:
    """One executor run against a fresh fake, the database reset to N queued task instances."""
    reset_queued(home)
    fake = FakeApi(args.run_seconds, strict=args.fake == "strict")
    standin = TaskStandIn(fake.url, NAMESPACE, home.database).start()
    try:
        settings = dict(run.settings)
        if run.executor == "ours":
            settings["metrics_port"] = str(free_port())  # its status endpoint, on a port nobody else holds
        run = replace(run, settings=settings)
        env = {
            **home.environ(),
            "AIRFLOW__CORE__EXECUTOR": OURS if run.executor == "ours" else PROVIDER,
            "AIRFLOW__KUBERNETES_EXECUTOR__CONFIG_FILE": str(fake.kubeconfig(workdir / f"run{index}.kubeconfig")),
            **{f"AIRFLOW__KUBERNETES_EXECUTOR__{key.upper()}": value for key, value in settings.items()},
        }
        command = [
            *shlex.split(args.worker_prefix),
            sys.executable, str(WORKER), "--executor", run.executor, "--job-id", str(home.job_id),
            "--api-url", fake.url, "--loop-period", str(args.loop_period), "--timeout", str(args.timeout),
        ]  # fmt: skip
        result = run_worker(command, env, workdir / f"run{index}.log", fake.pid, args.timeout + 120)
        stats = fake.stats()
        created, span = creation_span(stats)
        standin.wait_for_pods(created, 30)
    finally:
        standin.stop()
        fake.stop()
    same_name = len(stats["duplicate_creates"])
    created_after = [pod["created_at"] - result["queued_at"] for pod in stats["pods"]]
    running_after = [pod["running_at"] - result["queued_at"] for pod in stats["pods"] if pod.get("running_at")]
    return {
        "executor": run.executor,
        "config": run.config,
        "core_executor": OURS if run.executor == "ours" else PROVIDER,
        "settings": run.settings,
        **result,
        "creates": created,
        "pods_per_s": round(created / span, 1) if span > 0 else None,
        "cpu_ms_per_task": round((result["cpu_self_s"] + result["cpu_children_s"]) * 1000 / result["tasks"], 2),
        "created_p50_s": _percentile(created_after, 0.50),
        "created_p99_s": _percentile(created_after, 0.99),
        "running_p50_s": _percentile(running_after, 0.50),
        "running_p99_s": _percentile(running_after, 0.99),
        "pods_duplicated": standin.duplicated(),
        "same_name_creates": same_name,
        "duplicated": standin.duplicated() + same_name + result["events_twice"],
        "standin_errors": standin.errors[:5],
        **api_requests(stats, result["tasks"]),
    }


def run_worker(command: list[str], env: dict[str, str], log_path: Path, fake_pid: int, limit: float) -> dict[str, Any]:
    """The worker's figures, plus its process tree's peak memory and the environment's CPU meanwhile."""
    with open(log_path, "w") as log:
        # A session of its own, so that the worker and every process it started can be ended together.
        worker = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=log, text=True, start_new_session=True
        )
        watchdog = threading.Timer(limit, _end_group, (worker.pid,))
        watchdog.start()
        sampler = TreeSampler(worker.pid).start()
        result: dict[str, Any] | None = None
        around = {"fake": 0.0, "bench": 0.0}
        assert worker.stdout is not None
        try:
            for line in worker.stdout:
                if line.startswith("PHASE start"):
                    sampler.active.set()
                    around = _environment_cpu(fake_pid)
                elif line.startswith("PHASE end"):
                    sampler.active.clear()
                    around = {k: v - around[k] for k, v in _environment_cpu(fake_pid).items()}
                elif line.startswith("{"):
                    result = json.loads(line)
            code = worker.wait()
        finally:
            watchdog.cancel()
            sampler.stop()
            _end_group(worker.pid)  # leftovers of a failed run (the provider's non-daemon watcher)
    if code != 0 or result is None:
        raise SystemExit(f"the worker failed (exit {code}); see {log_path}")
    return {
        **result,
        **sampler.figures(),
        "fake_cpu_s": round(around["fake"], 2),
        "bench_cpu_s": round(around["bench"], 2),
    }


def _percentile(values: list[float], q: float) -> float | None:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3) if ordered else None


def api_requests(stats: dict[str, Any], tasks: int) -> dict[str, Any]:
    """API requests (watches, discovery and the fake's control API aside) by verb and resource, and per task."""
    counts: Counter[str] = Counter()
    for entry in stats["requests"]:
        if entry["resource"] not in ("_fake", "discovery") and entry["method"] != "WATCH":
            counts[f"{entry['method']} {entry['resource']}"] += entry["count"]
    return {"api_requests": dict(counts), "api_requests_per_task": round(sum(counts.values()) / tasks, 2)}


def _environment_cpu(fake_pid: int) -> dict[str, float]:
    """CPU seconds so far of the fake API server and of this process (the task stand-in, the sampler)."""
    fake, bench = psutil.Process(fake_pid).cpu_times(), psutil.Process().cpu_times()
    return {"fake": fake.user + fake.system, "bench": bench.user + bench.system}


def _end_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def summaries(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per configuration: the median of its samples (a quick run is sampled --repeat-quick times)."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["executor"], row["config"]), []).append(row)
    return [
        {
            "executor": executor,
            "config": config,
            "samples": len(samples),
            **{name: statistics.median(r[name] or 0 for r in samples) for name in MEDIANS},
            "pods_per_s_range": [
                min(r["pods_per_s"] or 0 for r in samples),
                max(r["pods_per_s"] or 0 for r in samples),
            ],
            "lost": sum(r["lost"] for r in samples),
            "duplicated": sum(r["duplicated"] for r in samples),
        }
        for (executor, config), samples in groups.items()
    ]


def ratios(summary: list[dict[str, Any]], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each configuration of ours against each of the provider: ratios of the medians, and their per-round range."""
    out = []
    for ours in (r for r in summary if r["executor"] == "ours"):
        for provider in (r for r in summary if r["executor"] == "provider"):
            speed = ours["pods_per_s"] / provider["pods_per_s"] if ours["pods_per_s"] and provider["pods_per_s"] else 0
            cpu = ours["cpu_ms_per_task"] / provider["cpu_ms_per_task"]
            ours_rows = [r for r in rows if (r["executor"], r["config"]) == ("ours", ours["config"])]
            provider_rows = [r for r in rows if (r["executor"], r["config"]) == ("provider", provider["config"])]
            pairs = [(a, b) for a in ours_rows for b in provider_rows if a["round"] == b["round"]]
            speeds = [a["pods_per_s"] / b["pods_per_s"] for a, b in pairs if a["pods_per_s"] and b["pods_per_s"]]
            cpus = [a["cpu_ms_per_task"] / b["cpu_ms_per_task"] for a, b in pairs if b["cpu_ms_per_task"]]
            out.append(
                {
                    "ours": ours["config"],
                    "provider": provider["config"],
                    "throughput_ratio": round(speed, 2),
                    "cpu_ratio": round(cpu, 4),
                    "throughput_range": [round(min(speeds), 2), round(max(speeds), 2)] if speeds else None,
                    "cpu_range": [round(min(cpus), 4), round(max(cpus), 4)] if cpus else None,
                    "throughput_pass": speed >= TARGET_THROUGHPUT,
                    "cpu_pass": cpu <= TARGET_CPU,
                }
            )
    return out


def print_configuration(report: dict[str, Any]) -> None:
    settings = report["settings"]
    shared = ", ".join(f"{key}={value}" for key, value in SHARED_SETTINGS.items())
    print(f"all runs: [core] parallelism={settings['parallelism']}; [kubernetes_executor] {shared}, ")
    print("  config_file=<a kubeconfig for the run's own fake API server>; every other key at its default")
    shown = set()
    for run in report["runs"]:
        settings_shown = {k: v for k, v in run["settings"].items() if k != "metrics_port"}  # a free port per run
        extra = ", ".join(f"{key}={value}" for key, value in settings_shown.items()) or "nothing else"
        line = f"  {run['executor']} ({run['config']}): [core] executor={run['core_executor']}; {extra}"
        if line not in shown:
            shown.add(line)
            print(line)
    print()


def print_headline(report: dict[str, Any]) -> None:
    settings = report["settings"]
    print(
        f"HEADLINE: both executors at their defaults, {settings['tasks']} queued tasks, [core] parallelism = "
        f"worker_pods_max = {settings['parallelism']}; medians of {settings['repeat']} interleaved round(s)"
    )
    for ratio in report["ratios"]:
        low, high = ratio["throughput_range"] or (0, 0)
        clow, chigh = ratio["cpu_range"] or (0, 0)
        print(
            f"  ours ({ratio['ours']}) vs provider ({ratio['provider']}): throughput x{ratio['throughput_ratio']:.2f} "
            f"(rounds x{low:.2f}-x{high:.2f}), CPU per task x{ratio['cpu_ratio']:.3f} (rounds x{clow:.3f}-x{chigh:.3f})"
        )
        print(
            f"    {'PASS' if ratio['throughput_pass'] else 'FAIL'}  throughput >= {TARGET_THROUGHPUT:g}x the provider's"
        )
        print(f"    {'PASS' if ratio['cpu_pass'] else 'FAIL'}  CPU per task <= 1/{1 / TARGET_CPU:g} of the provider's")
    print()


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def print_report(report: dict[str, Any]) -> None:
    print_headline(report)
    print_configuration(report)
    header = ("executor", "config", "pods/s", "wall s", "CPU ms/task", "peak RSS MB", "created p50/p99 s",
              "running p50/p99 s", "lost", "dup")  # fmt: skip
    lines = []
    for summary in report["summary"]:
        key = (summary["executor"], summary["config"])
        samples = [r for r in report["runs"] if (r["executor"], r["config"]) == key]
        for r in [*samples, summary] if len(samples) > 1 else [summary]:
            label = r["config"] if r is summary else f"{r['config']}, round {r['round'] + 1}"
            label = f"{label}: MEDIAN of {len(samples)}" if r is summary and len(samples) > 1 else label
            lines.append(
                (r["executor"], label, f"{r['pods_per_s']:.1f}", f"{r['wall_s']:.1f}", f"{r['cpu_ms_per_task']:.2f}",
                 f"{r['peak_rss_mb']:.0f}", f"{_seconds(r['created_p50_s'])}/{_seconds(r['created_p99_s'])}",
                 f"{_seconds(r['running_p50_s'])}/{_seconds(r['running_p99_s'])}", str(r["lost"]), str(r["duplicated"]))
            )  # fmt: skip
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]
    for row in [header, *lines]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    print()
    for r in report["runs"]:
        print(
            f"{r['executor']} ({r['config']}, round {r['round'] + 1}): start-up {r['startup_s']:.2f} s, cleanup after "
            f"the last event {r['cleanup_s']:.2f} s, {r['heartbeats']} heartbeats, CPU {r['cpu_self_s']:.2f} s in the "
            f"scheduler process + {r['cpu_children_s']:.2f} s in children, peak PSS {r['peak_pss_mb']:.0f} MB over "
            f"{r['processes']} processes, final states {r['final_states']}, {r['api_requests_per_task']} API "
            f"requests per task besides watches ({r['api_requests']}); meanwhile the fake API server used "
            f"{r['fake_cpu_s']:.1f} s of CPU and the bench's own process (task stand-in, memory sampler) "
            f"{r['bench_cpu_s']:.1f} s; load average {r['load']}"
            + (f"; flow control {r['flow_control']}" if r.get("flow_control") else "")
        )
    print()
    settings = report["settings"]
    print(
        f"{settings['tasks']} tasks; the fake API server's {settings['fake']} preset; pods run "
        f"{settings['run_seconds']} s; scheduler loop at most every "
        f"{settings['loop_period']} s; stale-workload check against SQLite, scheduler job id {settings['job_id']} "
        f"(numeric: both executors query the database); start latency is from queue_workload to the pod's "
        f"creation / first Running in the fake; machine shared, figures are noisy: compare within one run."
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--run-seconds", type=float, default=0.5, help="how long each pod runs in the fake")
    parser.add_argument("--fake", choices=("strict", "kind"), default="strict", help="the fake API server's preset")
    parser.add_argument("--loop-period", type=float, default=0.02, help="the scheduler loop runs at most this often")
    parser.add_argument(
        "--ours-qps", type=float, default=0.0, help="add a run of ours with this explicit creation cap (0: no such run)"
    )
    parser.add_argument("--ours-burst", type=int, default=200, help="creation burst of that run")
    parser.add_argument("--timeout", type=float, default=900.0, help="per run")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds of every run (medians over them)")
    parser.add_argument("--runs", help="only these runs, comma-separated: provider,provider64,ours,ours-qps")
    parser.add_argument("--quick", action="store_true", help="500 tasks, one round, no whole-scheduler scenario")
    bench_scheduler.add_arguments(parser)
    parser.add_argument("--worker-prefix", default="", help="prefix the worker's command line (a profiler)")
    parser.add_argument("--workdir", type=Path, help="keep the Airflow home and the logs here")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--json-out", type=Path, help="also write that JSON object to this file")
    args = parser.parse_args()
    if args.quick:
        args.tasks, args.repeat, args.full = min(args.tasks, 500), 1, False

    with tempfile.TemporaryDirectory(prefix="bench-airflow-") as scratch:
        workdir = (args.workdir or Path(scratch)).resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        home = make_home(workdir / "airflow-home", args.tasks)
        rows: list[dict[str, Any]] = []
        runs = plan(args)
        for round_index in range(args.repeat):  # interleaved: one sample of each run per round
            for run in runs:
                print(f"round {round_index + 1}/{args.repeat}: running {run.name} ...", file=sys.stderr, flush=True)
                row = run_one(home, run, args, workdir, len(rows))
                row.update(round=round_index, load=" ".join(f"{x:.1f}" for x in os.getloadavg()))
                rows.append(row)
        full = bench_scheduler.run_all(args, workdir) if args.full else None
    report = {
        "settings": {
            "tasks": args.tasks, "run_seconds": args.run_seconds, "loop_period": args.loop_period, "fake": args.fake,
            "job_id": home.job_id, "parallelism": args.tasks, "repeat": args.repeat,
        },
        "runs": rows,
        "summary": summaries(rows),
    }  # fmt: skip
    report["ratios"] = ratios(report["summary"], rows)
    report["full"] = full
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=1))
    if args.json:
        print(json.dumps(report))
    else:
        print_report(report)
        if full is not None:
            bench_scheduler.print_report(full)
    correct = all(r["lost"] == 0 and r["duplicated"] == 0 and r["creates"] == r["tasks"] for r in rows)
    return 0 if correct else 1


if __name__ == "__main__":
    sys.exit(main())
