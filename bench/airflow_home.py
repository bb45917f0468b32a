"""A throwaway AIRFLOW_HOME whose SQLite database holds N queued task instances, as a scheduler left them.

The executors check every workload against the metadata database before creating its pod (the
provider: one query per task; ours: one query per batch), so the benchmark gives them a real
database rather than a stub:

1. ``airflow.cfg`` (SQLite, a JWT secret, ``[core] parallelism = N`` so Airflow's own slot limit
   never caps the run, and the ``[kubernetes_executor]`` settings both executors read) and a DAG
   file with N tasks;
2. ``airflow db migrate``;
3. in a fresh interpreter (Airflow reads its config at import): the DAG parsed and serialised like
   the DAG processor does (``DagBag`` + ``sync_bag_to_db``: DagModel, DagVersion, SerializedDagModel),
   a DagRun created from the serialised DAG (its N TaskInstance rows), and a scheduler Job row
   whose numeric id both executors get as ``job_id``;
4. before each executor run, :func:`reset_queued`: every task instance ``queued`` by that job, try 1
   (what the scheduler writes when it queues a task), with plain SQL.

The database is switched to WAL so that the task stand-in (:mod:`airflow_standin`) can write while
the executor reads.

    python bench/airflow_home.py seed   # step 3, run by :func:`make_home` with AIRFLOW_HOME set
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DAG_ID = "bench"
RUN_ID = "bench_run"
NAMESPACE = "bench"
TEMPLATE = ROOT / "pod_templates" / "default_template.yaml"
# Long enough for SHA-512 (64 bytes); a throwaway home, never a real secret.
JWT_SECRET = "bench-only-jwt-signing-secret-" + "x" * 40

CONFIG = """\
[core]
dags_folder = {home}/dags
load_examples = False
parallelism = {tasks}
[database]
sql_alchemy_conn = sqlite:///{home}/airflow.db
[api_auth]
jwt_secret = {secret}
[kubernetes_executor]
{executor_settings}
"""
# What both executors read from [kubernetes_executor]; each run adds its own (and config_file, its fake).
SHARED_SETTINGS = {
    "in_cluster": "False",
    "namespace": NAMESPACE,
    "pod_template_file": str(TEMPLATE),
    "worker_container_repository": "apache/airflow",
    "worker_container_tag": "3.3.2",
}

DAG = """\
from airflow.sdk import DAG, BaseOperator


class Work(BaseOperator):
    def execute(self, context):
        return None


with DAG({dag_id!r}, schedule=None, catchup=False):
    for index in range({tasks}):
        Work(task_id=f"task_{{index:05d}}")
"""


@dataclass(frozen=True)
class AirflowHome:
    path: Path
    tasks: int
    job_id: int

    @property
    def database(self) -> Path:
        return self.path / "airflow.db"

    def environ(self) -> dict[str, str]:
        """The environment every process of the benchmark that imports Airflow runs with."""
        keep = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        return {**keep, "AIRFLOW_HOME": str(self.path), "AIRFLOW_CONFIG": str(self.path / "airflow.cfg")}


def make_home(path: Path, tasks: int) -> AirflowHome:
    """A new home at ``path`` (a directory of the benchmark's own: an earlier one there is replaced)."""
    shutil.rmtree(path, ignore_errors=True)
    (path / "dags").mkdir(parents=True)
    (path / "airflow.cfg").write_text(
        CONFIG.format(
            home=path,
            tasks=tasks,
            secret=JWT_SECRET,
            executor_settings="\n".join(f"{key} = {value}" for key, value in SHARED_SETTINGS.items()),
        )
    )
    (path / "dags" / "bench_dag.py").write_text(DAG.format(dag_id=DAG_ID, tasks=tasks))
    env = AirflowHome(path, tasks, 0).environ()
    _run([str(BIN / "airflow"), "db", "migrate"], env, path / "db-migrate.log")
    seeded = _run([sys.executable, __file__, "seed"], env, path / "seed.log")
    job_id = int(seeded.strip().splitlines()[-1])
    with sqlite3.connect(path / "airflow.db") as db:
        db.execute("PRAGMA journal_mode=WAL")
    home = AirflowHome(path, tasks, job_id)
    reset_queued(home)
    return home


def reset_queued(home: AirflowHome) -> None:
    """Every task instance of the run queued by the benchmark's scheduler job, first try."""
    with sqlite3.connect(home.database, timeout=30) as db:
        changed = db.execute(
            "UPDATE task_instance SET state = 'queued', try_number = 1, queued_by_job_id = ?,"
            " queued_dttm = CURRENT_TIMESTAMP WHERE dag_id = ? AND run_id = ?",
            (home.job_id, DAG_ID, RUN_ID),
        ).rowcount
    if changed != home.tasks:
        raise SystemExit(f"expected {home.tasks} task instances in the database, found {changed}")


def _run(command: list[str], env: dict[str, str], log: Path) -> str:
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    log.write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[:3])} failed (exit {done.returncode}); see {log}")
    return done.stdout


def seed() -> int:
    """Step 3 of the module docstring; prints the scheduler job's id last."""
    import pendulum
    from airflow.configuration import conf
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    from airflow.jobs.job import Job
    from airflow.models.dagbag import DBDagBag
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType

    DagBundlesManager().sync_bundles_to_db()
    folder = Path(conf.get("core", "dags_folder"))
    bag = DagBag(dag_folder=folder, bundle_path=folder, bundle_name="dags-folder")
    if bag.import_errors or DAG_ID not in bag.dags:
        raise SystemExit(f"the benchmark DAG did not load: {bag.import_errors}")
    sync_bag_to_db(bag, "dags-folder", None)
    with create_session() as session:
        dag = DBDagBag().get_latest_version_of_dag(DAG_ID, session=session)
        if dag is None:
            raise SystemExit("the benchmark DAG was not serialised")
        now = pendulum.now("UTC")
        dag.create_dagrun(
            run_id=RUN_ID, logical_date=now, data_interval=(now, now), run_after=now, run_type=DagRunType.MANUAL,
            triggered_by=DagRunTriggeredByType.TEST, state=DagRunState.RUNNING, session=session,
        )  # fmt: skip
        job = Job(job_type="SchedulerJob")
        session.add(job)
        session.flush()
        job_id = job.id
    print(job_id)
    return 0


if __name__ == "__main__":
    if sys.argv[1:] != ["seed"]:
        raise SystemExit("usage: python bench/airflow_home.py seed   (with AIRFLOW_HOME set)")
    sys.exit(seed())
