"""The whole scheduler, not only the executor: one DAG of N tasks through a real Airflow, per executor.

    .venv-airflow/bin/python bench/bench_airflow.py --full [--full-tasks 500] [--full-repeat 1]

Per executor (the provider's ``KubernetesExecutor`` and this one), in a fresh stack of its own:

* PostgreSQL (the end-to-end test's :mod:`tests.airflow.e2e.postgres`), ``airflow db migrate``;
* the fake API server in another process (strict preset, one roomy node); its pods never finish
  by themselves: they complete when the task has reported (below);
* ``airflow api-server``, ``airflow dag-processor``, ``airflow scheduler``, every Airflow setting
  at its default (``[core] parallelism = 32``, ``max_active_tasks_per_dag = 16``, the scheduler's
  loop) but what the stack needs to run at all: the database URL, the executor, the Execution
  API URL, no example DAGs, new DAGs unpaused, the simple auth manager's all-admin mode for the
  REST calls, a short DAG-folder refresh (start-up only).  ``[kubernetes_executor]``: the shared
  namespace, template, image and kubeconfig, nothing else;
* a DAG of N tasks, triggered through the REST API (``POST /api/v2/dags/{id}/dagRuns``);
* pods that complete without running task code: a stand-in plays each task's part the way the
  Task SDK does - ``PATCH /execution/task-instances/{id}/run`` then ``.../state`` (success),
  with the workload's own token, against the api-server - then completes the pod in the fake
  (``/_fake/pods/.../complete``), as a task's process exits after reporting.

Measured from the trigger to the DAG run's end: wall time, and the CPU of the scheduler, the
api-server and PostgreSQL (each process with every child, live and reaped), per task.  The
api-server's and the database's include serving the tasks' Execution API calls and the
benchmark's own poll of the DAG run (one REST call every 2 s, so a longer run costs more).
"""

from __future__ import annotations

import argparse
import json
import queue
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from airflow_home import NAMESPACE, ROOT, SHARED_SETTINGS
from fakeproc import FakeApi

sys.path.insert(0, str(ROOT))

DAG_ID = "bench_full"
OURS = "airflow_k8s.executor.airflow.KubernetesPlatformExecutor"
PROVIDER = "KubernetesExecutor"
JWT_SECRET = "bench-only-jwt-signing-secret-" + "x" * 40  # a throwaway stack's signing key
DAG = """\
from airflow.sdk import DAG, BaseOperator


class Work(BaseOperator):
    def execute(self, context):
        return None


with DAG({dag_id!r}, schedule=None, catchup=False):
    for index in range({tasks}):
        Work(task_id=f"task_{{index:05d}}")
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--full", action="store_true", help="also run the whole-scheduler scenario")
    parser.add_argument("--full-tasks", type=int, default=500, help="tasks in its DAG")
    parser.add_argument("--full-repeat", type=int, default=1, help="interleaved rounds of it")
    parser.add_argument("--full-timeout", type=float, default=900.0, help="seconds for one DAG run")


@dataclass
class TreeCpu:
    """User + system CPU seconds of a process, its live descendants and its reaped children."""

    pid: int

    def seconds(self) -> float:
        try:
            root = psutil.Process(self.pid)
            times = root.cpu_times()
            total = times.user + times.system + times.children_user + times.children_system
            for child in root.children(recursive=True):
                try:
                    child_times = child.cpu_times()
                except psutil.NoSuchProcess:
                    continue
                total += child_times.user + child_times.system
            return total
        except psutil.NoSuchProcess:
            return 0.0


class TaskStandIn:
    """Plays each task's part once its pod runs: report running, then success, then let the pod finish."""

    def __init__(self, fake_url: str, api_url: str, workers: int = 8) -> None:
        self.fake_url = fake_url
        self.execution_url = api_url.rstrip("/") + "/execution/"
        self.done = 0
        self.errors: list[str] = []
        self._seen: set[str] = set()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="standin")
        self._stop = threading.Event()
        self._queue: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._watch, name="standin-watch", daemon=True)

    def start(self) -> TaskStandIn:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _watch(self) -> None:
        version = ""
        while not self._stop.is_set():
            url = (
                f"{self.fake_url}/api/v1/namespaces/{NAMESPACE}/pods?watch=true&allowWatchBookmarks=true"
                f"&timeoutSeconds=60&resourceVersion={version}"
            )
            try:
                with urllib.request.urlopen(url, timeout=5) as stream:  # noqa: S310 - loopback only
                    for line in stream:
                        if self._stop.is_set():
                            return
                        event = json.loads(line)
                        pod = event.get("object") or {}
                        version = (pod.get("metadata") or {}).get("resourceVersion") or version
                        if event.get("type") == "ERROR":
                            version = ""
                            break
                        self._maybe_start(pod)
            except (TimeoutError, OSError, ValueError):
                time.sleep(0.05)

    def _maybe_start(self, pod: dict[str, Any]) -> None:
        meta = pod.get("metadata") or {}
        uid = meta.get("uid", "")
        if (pod.get("status") or {}).get("phase") != "Running" or uid in self._seen or meta.get("deletionTimestamp"):
            return
        self._seen.add(uid)
        self._pool.submit(self._run_task, meta["name"], pod)

    def _run_task(self, name: str, pod: dict[str, Any]) -> None:
        try:
            workload = _workload(pod)
            token, ti_id = workload["token"], workload["ti"]["id"]
            now = datetime.now(UTC).isoformat()
            running = {"state": "running", "hostname": "bench", "unixname": "bench", "pid": 1, "start_date": now}
            token = self._execution("PATCH", f"task-instances/{ti_id}/run", running, token)
            success = {"state": "success", "end_date": datetime.now(UTC).isoformat()}
            self._execution("PATCH", f"task-instances/{ti_id}/state", success, token)
            _post(f"{self.fake_url}/_fake/pods/{NAMESPACE}/{name}/complete", {"outcome": "succeed"})
            self.done += 1
        except Exception as exc:  # a benchmark stand-in: record, never crash the thread
            self.errors.append(f"{name}: {exc!r}"[:300])

    def _execution(self, method: str, path: str, body: dict[str, Any], token: str) -> str:
        """One Execution API call; returns the token to use next (the server may refresh it)."""
        request = urllib.request.Request(  # noqa: S310 - loopback only
            self.execution_url + path,
            data=json.dumps(body).encode(),
            method=method,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            response.read()
            return response.headers.get("Refreshed-API-Token") or token


def _workload(pod: dict[str, Any]) -> dict[str, Any]:
    """The ExecuteTask workload in the base container's ``--json-string`` argument (both executors put it there)."""
    for container in (pod.get("spec") or {}).get("containers") or []:
        argv = [*(container.get("command") or []), *(container.get("args") or [])]
        if "--json-string" in argv:
            return dict(json.loads(argv[argv.index("--json-string") + 1]))
    raise ValueError("no --json-string workload in the pod")


def _post(url: str, body: dict[str, Any]) -> None:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")  # noqa: S310
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback only
        response.read()


def _ini(sections: dict[str, dict[str, Any]]) -> str:
    return "".join(
        f"[{name}]\n" + "".join(f"{k} = {v}\n" for k, v in values.items()) + "\n" for name, values in sections.items()
    )


def run_scenario(executor: str, args: argparse.Namespace, root: Path) -> dict[str, Any]:
    """One executor through the whole stack (module docstring); the figures of the DAG run."""
    from tests.airflow.e2e.postgres import start_postgres
    from tests.airflow.e2e.processes import Services, free_port, wait_until
    from tests.airflow.e2e.rest import AirflowApi

    services = Services(root / "logs")
    fake = FakeApi(3600.0)  # pods run until the stand-in completes them
    standin: TaskStandIn | None = None
    try:
        database = start_postgres(services)
        home, dags = root / "home", root / "dags"
        home.mkdir(parents=True, exist_ok=True)
        dags.mkdir(exist_ok=True)
        (dags / "bench_full.py").write_text(DAG.format(dag_id=DAG_ID, tasks=args.full_tasks))
        port = free_port()
        settings = dict(SHARED_SETTINGS)
        settings["config_file"] = str(fake.kubeconfig(root / "kubeconfig"))
        if executor == "ours":
            settings["pod_template_dir"] = str(ROOT / "pod_templates")
            settings["metrics_port"] = str(free_port())
        (home / "airflow.cfg").write_text(
            _ini(
                {
                    "core": {
                        "dags_folder": dags,
                        "load_examples": "False",
                        "executor": OURS if executor == "ours" else PROVIDER,
                        "execution_api_server_url": f"http://127.0.0.1:{port}/execution/",
                        "dags_are_paused_at_creation": "False",
                        "simple_auth_manager_all_admins": "True",
                    },
                    "database": {"sql_alchemy_conn": database.url},
                    "api": {"host": "127.0.0.1", "port": port, "base_url": f"http://127.0.0.1:{port}"},
                    "api_auth": {"jwt_secret": JWT_SECRET},
                    "logging": {"base_log_folder": root / "task-logs", "colored_console_log": "False"},
                    "dag_processor": {"refresh_interval": 2},
                    "kubernetes_executor": settings,
                }
            )
        )
        env = {
            **{k: v for k, v in __import__("os").environ.items() if not k.startswith("AIRFLOW")},
            "AIRFLOW_HOME": str(home),
            "AIRFLOW_CONFIG": str(home / "airflow.cfg"),
            "PYTHONPATH": str(ROOT),
        }
        services.run("db-migrate", [sys.executable, "-m", "airflow", "db", "migrate"], timeout=600, env=env, cwd=home)
        api_server = services.start("api-server", [sys.executable, "-m", "airflow", "api-server"], env=env, cwd=home)
        services.start("dag-processor", [sys.executable, "-m", "airflow", "dag-processor"], env=env, cwd=home)
        scheduler = services.start("scheduler", [sys.executable, "-m", "airflow", "scheduler"], env=env, cwd=home)
        api = AirflowApi(f"http://127.0.0.1:{port}", timeout=120)
        wait_until(api.reachable, timeout=300, what="the api-server", services=services)
        wait_until(lambda: api.dag(DAG_ID), timeout=300, what="the DAG to be parsed", services=services)
        standin = TaskStandIn(fake.url, f"http://127.0.0.1:{port}").start()
        time.sleep(5)  # let the scheduler settle after start-up (not measured)
        meters = {
            "scheduler": TreeCpu(scheduler.pid),
            "api_server": TreeCpu(api_server.pid),
            "database": TreeCpu(database.server.pid),
        }
        before = {name: meter.seconds() for name, meter in meters.items()}
        started = time.perf_counter()
        run_id = api.trigger(DAG_ID, f"bench_{int(time.time())}")

        def finished() -> dict[str, Any] | None:
            run = api.dag_run(DAG_ID, run_id)
            return run if run["state"] in ("success", "failed") else None

        # Polled every 2 s: the polls are REST calls the api-server and the database serve, counted in their CPU.
        run = wait_until(
            finished, timeout=args.full_timeout, what="the DAG run to finish", services=services, interval=2.0
        )
        wall = time.perf_counter() - started
        cpu = {name: meter.seconds() - before[name] for name, meter in meters.items()}
        states = api.request("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances", limit=1)["total_entries"]
        stats = fake.stats()
    finally:
        if standin is not None:
            standin.stop()
        services.stop_all()
        fake.stop()
    tasks = args.full_tasks
    return {
        "executor": executor,
        "state": run["state"],
        "tasks": tasks,
        "task_instances": states,
        "reported_by_standin": standin.done if standin else 0,
        "standin_errors": (standin.errors if standin else [])[:3],
        "pods_created": len(stats["pods"]),
        "wall_s": round(wall, 1),
        "cpu_s": {name: round(value, 2) for name, value in cpu.items()},
        "cpu_ms_per_task": {name: round(value * 1000 / tasks, 2) for name, value in cpu.items()},
    }


def run_all(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    rows = []
    for round_index in range(args.full_repeat):
        for executor in ("provider", "ours"):
            print(f"whole scheduler, round {round_index + 1}: {executor} ...", file=sys.stderr, flush=True)
            row = run_scenario(executor, args, workdir / f"full-{executor}-{round_index}")
            row["round"] = round_index
            rows.append(row)
    return {"tasks": args.full_tasks, "rows": rows}


def print_report(full: dict[str, Any]) -> None:
    print()
    print(
        f"WHOLE SCHEDULER: one DAG of {full['tasks']} tasks through a real Airflow (scheduler, api-server, "
        "dag-processor, PostgreSQL), every Airflow setting at its default, triggered through the REST API"
    )
    header = ("executor", "round", "state", "wall s", "scheduler ms/task", "api-server ms/task", "database ms/task")
    lines = [
        (r["executor"], str(r["round"] + 1), r["state"], f"{r['wall_s']:.1f}",
         f"{r['cpu_ms_per_task']['scheduler']:.1f}", f"{r['cpu_ms_per_task']['api_server']:.1f}",
         f"{r['cpu_ms_per_task']['database']:.1f}")
        for r in full["rows"]
    ]  # fmt: skip
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]
    for row in [header, *lines]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    for r in full["rows"]:
        if r["standin_errors"] or r["pods_created"] != r["tasks"]:
            print(f"  {r['executor']}: {r['pods_created']} pods created; stand-in errors {r['standin_errors']}")
