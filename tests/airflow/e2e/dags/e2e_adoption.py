"""Tasks that run until the test releases them: each leaves "<task instance id> <try>" in a shared file when
it starts, then waits for the file ``release`` - so the test can kill the scheduler while they run."""

import os
import time
from datetime import datetime
from pathlib import Path

from airflow.sdk import dag, get_current_context, task

TASKS = 3
WAIT_AT_MOST = 600.0  # seconds; a task never released fails rather than hangs


@dag(schedule=None, start_date=datetime(2024, 1, 1), catchup=False, tags=["e2e"])
def e2e_adoption():
    for number in range(TASKS):

        @task(task_id=f"long_{number}", executor_config={"kubernetes_config": {"tier": "light"}})
        def long_task():
            shared = Path(os.environ["E2E_SHARED_DIR"])
            ti = get_current_context()["ti"]
            with open(shared / "adoption.log", "a") as marks:
                marks.write(f"{ti.id} {ti.try_number}\n")
            deadline = time.monotonic() + WAIT_AT_MOST
            while not (shared / "release").exists():
                if time.monotonic() > deadline:
                    raise TimeoutError("never released")
                time.sleep(0.2)
            return ti.task_id

        long_task()


e2e_adoption()
