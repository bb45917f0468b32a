"""Tasks that hold until the test releases their run, then a task after them.

Each ``hold_<n>`` leaves "<task instance id> <try>" in ``marks-<run id>.log`` (in ``E2E_SHARED_DIR``) when its code
starts, waits for the file ``release-<run id>`` (or ``release-<run id>-<task id>``) and returns its task id (an
XCom the Execution API stores); ``after`` runs once all of them succeeded.  The test decides, per run, when the
tasks may end - so it can kill a scheduler or restart the api-server while they run.
"""

import os
import time
from datetime import datetime
from pathlib import Path

from airflow.sdk import dag, get_current_context, task

TASKS = 4
WAIT_AT_MOST = 600.0  # seconds; a task never released fails rather than hangs
LIGHT = {"kubernetes_config": {"tier": "light"}}


def _shared(name: str) -> Path:
    return Path(os.environ["E2E_SHARED_DIR"]) / name


@dag(schedule=None, start_date=datetime(2024, 1, 1), catchup=False, tags=["e2e"])
def e2e_hold():
    @task(executor_config=LIGHT)
    def hold() -> str:
        context = get_current_context()
        ti, run_id = context["ti"], context["run_id"]
        with open(_shared(f"marks-{run_id}.log"), "a") as marks:
            marks.write(f"{ti.id} {ti.try_number}\n")
        deadline = time.monotonic() + WAIT_AT_MOST
        while not (_shared(f"release-{run_id}").exists() or _shared(f"release-{run_id}-{ti.task_id}").exists()):
            if time.monotonic() > deadline:
                raise TimeoutError("never released")
            time.sleep(0.2)
        return ti.task_id

    @task(executor_config=LIGHT)
    def after(held: list[str]) -> int:
        context = get_current_context()
        ti, run_id = context["ti"], context["run_id"]
        with open(_shared(f"marks-{run_id}.log"), "a") as marks:
            marks.write(f"{ti.id} {ti.try_number}\n")
        return len(held)

    after([hold.override(task_id=f"hold_{n}")() for n in range(TASKS)])


e2e_hold()
