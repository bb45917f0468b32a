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

Runs, in this order (``--runs`` picks some):

* ``provider``: the provider with its defaults (``worker_pods_creation_batch_size = 1``);
* ``provider64``: the provider with ``worker_pods_creation_batch_size = 64``;
* ``ours``: this executor with its defaults except ``worker_pods_max = N`` (N_max, 32 by default)
  and ``pod_template_dir`` (where the shared template lives).  Its default
  ``worker_pods_creation_qps = 20`` (burst 40) paces creates at 20/s by design: on a real API
  server, where a create takes 150-500 ms, its 8 concurrent creates rarely reach that; against the
  loopback fake it is the bound;
* ``ours-qps``: the same with the creation rate limit raised as well (``--ours-qps 2000``,
  ``--ours-burst 200``, as ``bench_engine.py``), so that, like the provider, nothing but the
  executor's own cost caps it.

``[core] parallelism = N`` for all, so Airflow's slot limit caps none of them, and all read the
same ``[kubernetes_executor]`` section: the same pod template, image and namespace.

Per run: pods created per second (the fake's records, first create to last), wall time from the
first ``queue_workload`` to the last terminal event, executor CPU per task (the worker process,
all its threads and every child process: the provider's two Manager servers and its pod watcher;
the window also covers pod deletion), peak RSS of that process tree (and PSS, which does not
count the pages forked children share with their parent twice), tasks lost (no terminal event)
and duplicated (a second pod for a task try, a same-name create, or a terminal event reported
twice).  Then the ratios against each provider run and the verdict on the targets: >= 10x the
provider's throughput and <= 1/10 of its CPU per task.

Runs shorter than 30 s (this executor without its rate limit: a few seconds) are at the mercy of
one burst of load from other jobs on a shared machine, so they run ``--repeat-quick`` times (3)
and the ratios use each configuration's medians; every sample is printed.  Compare rows of one
invocation with each other, not across invocations.
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

from airflow_home import NAMESPACE, ROOT, SHARED_SETTINGS, AirflowHome, make_home, reset_queued
from airflow_standin import TaskStandIn
from fakeproc import FakeApi, creation_span
from proctree import TreeSampler

WORKER = Path(__file__).resolve().parent / "airflow_worker.py"
OURS = "airflow_k8s.executor.airflow.KubernetesPlatformExecutor"
PROVIDER = "KubernetesExecutor"
TARGET_THROUGHPUT = 10.0  # ours / provider, at least
TARGET_CPU = 0.1  # ours / provider, at most
QUICK_SECONDS = 30.0  # runs shorter than this are repeated (--repeat-quick) and their medians compared
MEDIANS = ("pods_per_s", "wall_s", "cpu_ms_per_task", "peak_rss_mb")


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
    ours = {"worker_pods_max": str(args.tasks), "pod_template_dir": str(ROOT / "pod_templates")}
    runs = [
        Run("provider", "provider", "defaults (worker_pods_creation_batch_size=1)"),
        Run("provider64", "provider", "worker_pods_creation_batch_size=64", {"worker_pods_creation_batch_size": "64"}),
        Run("ours", "ours", f"defaults, worker_pods_max={args.tasks}", ours),
    ]
    if args.ours_qps:
        lifted = {"worker_pods_creation_qps": f"{args.ours_qps:g}", "worker_pods_creation_burst": str(args.ours_burst)}
        config = f"worker_pods_max={args.tasks}, creation_qps={args.ours_qps:g}, burst={args.ours_burst}"
        runs.append(Run("ours-qps", "ours", config, {**ours, **lifted}))
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
    return {
        "executor": run.executor,
        "config": run.config,
        "core_executor": OURS if run.executor == "ours" else PROVIDER,
        "settings": run.settings,
        **result,
        "creates": created,
        "pods_per_s": round(created / span, 1) if span > 0 else None,
        "cpu_ms_per_task": round((result["cpu_self_s"] + result["cpu_children_s"]) * 1000 / result["tasks"], 2),
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
            "lost": sum(r["lost"] for r in samples),
            "duplicated": sum(r["duplicated"] for r in samples),
        }
        for (executor, config), samples in groups.items()
    ]


def ratios(summary: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for ours in (r for r in summary if r["executor"] == "ours"):
        for provider in (r for r in summary if r["executor"] == "provider"):
            speed = ours["pods_per_s"] / provider["pods_per_s"] if ours["pods_per_s"] and provider["pods_per_s"] else 0
            cpu = ours["cpu_ms_per_task"] / provider["cpu_ms_per_task"]
            out.append(
                {
                    "ours": ours["config"],
                    "provider": provider["config"],
                    "throughput_ratio": round(speed, 2),
                    "cpu_ratio": round(cpu, 4),
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
    for run in report["runs"]:
        extra = ", ".join(f"{key}={value}" for key, value in run["settings"].items()) or "nothing else"
        print(f"  {run['executor']} ({run['config']}): [core] executor={run['core_executor']}; {extra}")
    print()


def print_report(report: dict[str, Any]) -> None:
    print_configuration(report)
    header = ("executor", "config", "pods/s", "wall s", "CPU ms/task", "peak RSS MB", "lost", "duplicated")
    lines = []
    for summary in report["summary"]:
        key = (summary["executor"], summary["config"])
        samples = [r for r in report["runs"] if (r["executor"], r["config"]) == key]
        for r in [*samples, summary] if len(samples) > 1 else [summary]:
            label = r["config"] if r is summary else f"{r['config']}, run {samples.index(r) + 1}"
            label = f"{label}: median of {len(samples)}" if r is summary and len(samples) > 1 else label
            lines.append(
                (r["executor"], label, f"{r['pods_per_s']:.1f}", f"{r['wall_s']:.1f}", f"{r['cpu_ms_per_task']:.2f}",
                 f"{r['peak_rss_mb']:.0f}", str(r["lost"]), str(r["duplicated"]))
            )  # fmt: skip
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]
    for row in [header, *lines]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    print()
    for r in report["runs"]:
        print(
            f"{r['executor']} ({r['config']}): start-up {r['startup_s']:.2f} s, cleanup after the last event "
            f"{r['cleanup_s']:.2f} s, {r['heartbeats']} heartbeats, CPU {r['cpu_self_s']:.2f} s in the scheduler "
            f"process + {r['cpu_children_s']:.2f} s in children, peak PSS {r['peak_pss_mb']:.0f} MB over "
            f"{r['processes']} processes, final states {r['final_states']}, {r['api_requests_per_task']} API "
            f"requests per task besides watches; meanwhile the fake API server used "
            f"{r['fake_cpu_s']:.1f} s of CPU and the bench's own process (task stand-in, memory sampler) "
            f"{r['bench_cpu_s']:.1f} s"
        )
    print()
    for ratio in report["ratios"]:
        print(
            f"ours ({ratio['ours']}) vs provider ({ratio['provider']}): "
            f"throughput x{ratio['throughput_ratio']:.2f}, CPU per task x{ratio['cpu_ratio']:.3f}"
        )
        verdict = "PASS" if ratio["throughput_pass"] else "FAIL"
        print(f"  {verdict}  throughput >= {TARGET_THROUGHPUT:g}x the provider's")
        print(f"  {'PASS' if ratio['cpu_pass'] else 'FAIL'}  CPU per task <= 1/{1 / TARGET_CPU:g} of the provider's")
    print()
    settings = report["settings"]
    print(
        f"{settings['tasks']} tasks; the fake API server's {settings['fake']} preset; pods run "
        f"{settings['run_seconds']} s; scheduler loop at most every "
        f"{settings['loop_period']} s; stale-workload check against SQLite, scheduler job id {settings['job_id']} "
        f"(numeric: both executors query the database); machine shared, figures are noisy: compare within one run."
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--run-seconds", type=float, default=0.5, help="how long each pod runs in the fake")
    parser.add_argument("--fake", choices=("strict", "kind"), default="strict", help="the fake API server's preset")
    parser.add_argument("--loop-period", type=float, default=0.02, help="the scheduler loop runs at most this often")
    parser.add_argument(
        "--ours-qps", type=float, default=2000.0, help="add a run of ours with this creation QPS (0: no such run)"
    )
    parser.add_argument("--ours-burst", type=int, default=200, help="creation burst of that run")
    parser.add_argument("--timeout", type=float, default=900.0, help="per run")
    parser.add_argument(
        "--repeat-quick", type=int, default=3, help=f"repeat runs under {QUICK_SECONDS:g} s this often (medians)"
    )
    parser.add_argument("--runs", help="only these runs, comma-separated: provider,provider64,ours,ours-qps")
    parser.add_argument("--worker-prefix", default="", help="prefix the worker's command line (a profiler)")
    parser.add_argument("--workdir", type=Path, help="keep the Airflow home and the logs here")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--json-out", type=Path, help="also write that JSON object to this file")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-airflow-") as scratch:
        workdir = (args.workdir or Path(scratch)).resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        home = make_home(workdir / "airflow-home", args.tasks)
        rows: list[dict[str, Any]] = []
        for run in plan(args):
            samples: list[dict[str, Any]] = []
            # A run of a few seconds is at the mercy of one burst of load from the machine's other jobs.
            while not samples or (len(samples) < args.repeat_quick and samples[0]["wall_s"] < QUICK_SECONDS):
                print(f"running {run.name} ...", file=sys.stderr, flush=True)
                samples.append(run_one(home, run, args, workdir, len(rows) + len(samples)))
            rows.extend(samples)
    report = {
        "settings": {
            "tasks": args.tasks, "run_seconds": args.run_seconds, "loop_period": args.loop_period, "fake": args.fake,
            "job_id": home.job_id, "parallelism": args.tasks,
        },
        "runs": rows,
        "summary": summaries(rows),
    }  # fmt: skip
    report["ratios"] = ratios(report["summary"])
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=1))
    if args.json:
        print(json.dumps(report))
    else:
        print_report(report)
    correct = all(r["lost"] == 0 and r["duplicated"] == 0 and r["creates"] == r["tasks"] for r in rows)
    return 0 if correct else 1


if __name__ == "__main__":
    sys.exit(main())
