"""One executor run, in a process of its own, driven the way Airflow's scheduler drives an executor.

    python bench/airflow_worker.py --executor ours|provider --job-id J --api-url URL [--loop-period 0.02]

Run by ``bench/bench_airflow.py`` with AIRFLOW_HOME (the seeded database, see
:mod:`airflow_home`) and the run's ``AIRFLOW__KUBERNETES_EXECUTOR__*`` settings in the environment.

1. Set-up, not measured: the queued task instances are read from the database and turned into
   workloads with ``ExecuteTask.make(ti, generator=executor.jwt_generator)``, as the scheduler does.
2. ``executor.start()`` and one heartbeat with nothing queued (reported apart as start-up: the
   first heartbeat loads Airflow's metrics registry, and the provider's first sync adopts
   completed pods; ours also waits for its first pod list).
3. The measured window: every workload handed over with ``queue_workload``, then
   ``heartbeat()`` (-> ``trigger_tasks`` -> ``_process_workloads``, then ``sync``) in a loop that
   drains ``get_event_buffer()`` like the scheduler, until every workload has a terminal event
   (success or failed) and the executor has deleted every pod (cleanup is part of the work: the
   provider deletes inside ``sync``, ours on its own threads).  The loop runs at most once per
   ``--loop-period`` seconds: a heartbeat that takes longer (the provider creating its pods) is
   followed at once by the next, a quick one waits, standing in for the scheduler's own work
   between heartbeats (a real scheduler loop spends tens of milliseconds in database queries).
4. ``executor.end()``.

Lines on stdout: ``PHASE start`` before 2 and ``PHASE end`` after 3 (the parent samples memory
in between), then one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import urllib.request
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from proctree import cpu_by_thread, tree_cpu_seconds

TERMINAL = frozenset({"success", "failed"})


def build_executor(kind: str, job_id: int) -> Any:
    from airflow.configuration import conf

    parallelism = conf.getint("core", "parallelism")
    if kind == "ours":
        from airflow_k8s.executor.airflow.executor import KubernetesPlatformExecutor

        executor = KubernetesPlatformExecutor(parallelism=parallelism)
    else:
        from airflow.providers.cncf.kubernetes.executors.kubernetes_executor import KubernetesExecutor

        executor = KubernetesExecutor(parallelism=parallelism)
    executor.job_id = job_id
    return executor


def load_workloads(executor: Any) -> list[Any]:
    """The queued task instances as the scheduler hands them over: ``ExecuteTask`` workloads."""
    from airflow.executors.workloads import ExecuteTask
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from airflow_home import DAG_ID
    from sqlalchemy import select
    from sqlalchemy.orm import joinedload

    query = (
        select(TaskInstance)
        .where(TaskInstance.dag_id == DAG_ID, TaskInstance.state == "queued")
        .options(joinedload(TaskInstance.dag_model), joinedload(TaskInstance.dag_run))
        .order_by(TaskInstance.task_id)
    )
    with create_session() as session:
        tis = session.scalars(query).unique().all()
        return [ExecuteTask.make(ti, generator=executor.jwt_generator) for ti in tis]


def pods_left(api_url: str, namespace: str) -> bool:
    """Whether any pod is left in the namespace (one item asked for: the check costs next to nothing)."""
    url = f"{api_url}/api/v1/namespaces/{namespace}/pods?limit=1"
    with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - loopback only
        return bool(json.loads(response.read())["items"])


def drive(executor: Any, workloads: list[Any], args: argparse.Namespace) -> dict[str, Any]:
    """Step 3 of the module docstring; returns the figures of the measured window."""
    from airflow_home import NAMESPACE

    keys = {w.ti.key for w in workloads}
    events: dict[Any, list[str]] = defaultdict(list)
    terminal: Counter[Any] = Counter()
    pending = set(keys)
    heartbeats = 0
    cpu0, wall0 = tree_cpu_seconds(), time.perf_counter()
    threads0 = cpu_by_thread(_thread_names())
    deadline = wall0 + args.timeout
    queued_at = time.time()  # wall clock, to compare with the fake's records of each pod
    for workload in workloads:
        executor.queue_workload(workload, session=None)

    def beat() -> None:
        nonlocal heartbeats
        started = time.perf_counter()
        executor.heartbeat()
        heartbeats += 1
        for key, (state, _info) in executor.get_event_buffer().items():
            events[key].append(str(state))
            if str(state) in TERMINAL:
                terminal[key] += 1
                pending.discard(key)
        rest = args.loop_period - (time.perf_counter() - started)
        if rest > 0:
            time.sleep(rest)

    while pending and time.perf_counter() < deadline:
        beat()
    all_terminal = time.perf_counter()
    left = True
    while time.perf_counter() < deadline:  # until the executor has cleaned up every pod
        left = pods_left(args.api_url, NAMESPACE)
        if not left:
            break
        for _ in range(max(1, round(0.2 / args.loop_period))):  # look again about every 0.2 s
            beat()
    wall_end = time.perf_counter()
    cpu1 = tree_cpu_seconds()
    threads = {name: cpu - threads0.get(name, 0.0) for name, cpu in cpu_by_thread(_thread_names()).items()}
    finals = Counter(states[-1] for states in events.values())
    return {
        "queued_at": queued_at,
        "wall_s": round(all_terminal - wall0, 3),
        "cleanup_s": round(wall_end - all_terminal, 3),
        "cpu_self_s": round(cpu1["self"] - cpu0["self"], 3),
        "cpu_children_s": round(cpu1["children"] - cpu0["children"], 3),
        "heartbeats": heartbeats,
        "lost": len(keys - set(terminal)),
        "events_twice": sum(1 for n in terminal.values() if n > 1),
        "final_states": dict(finals),
        "pods_left": int(left),
        "cpu_ms_per_task_by_thread": {
            name: round(cpu * 1000 / len(keys), 3) for name, cpu in sorted(threads.items()) if cpu > 0
        },
    }


def _thread_names() -> dict[int, str]:
    return {thread.native_id: ("main" if thread is threading.main_thread() else thread.name)
            for thread in threading.enumerate() if thread.native_id is not None}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--executor", choices=("ours", "provider"), required=True)
    parser.add_argument("--job-id", type=int, required=True)
    parser.add_argument("--api-url", required=True)
    parser.add_argument("--loop-period", type=float, default=0.02)
    parser.add_argument("--timeout", type=float, default=900.0)
    args = parser.parse_args()

    executor = build_executor(args.executor, args.job_id)
    workloads = load_workloads(executor)
    print("PHASE start", flush=True)
    started = time.perf_counter()
    executor.start()
    try:
        if args.executor == "ours":
            executor.engine.synced.wait(30)
        # A first heartbeat with nothing queued: Airflow loads its metrics registry (a YAML file) at the
        # first gauge, and the provider adopts completed pods at its first sync - one-off start-up costs
        # of any scheduler, not costs per task.
        executor.heartbeat()
        executor.get_event_buffer()
        startup = time.perf_counter() - started
        figures = drive(executor, workloads, args)
        flow = executor.engine.flow if args.executor == "ours" else None
        print("PHASE end", flush=True)
    finally:
        executor.end()  # the provider's watcher is a non-daemon process: without end() nothing exits
    figures.update(tasks=len(workloads), startup_s=round(startup, 3))
    if flow is not None:  # what the flow control saw: was it ever paced by the server's pushback?
        figures["flow_control"] = flow.state()
    print(json.dumps(figures), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
