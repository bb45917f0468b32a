"""A task whose pod dies under it: the task SIGKILLs its own supervisor, so nothing reports through the
Execution API, the container exits 137, and only the executor's event says what happened."""

import os
import signal
import time
from datetime import datetime, timedelta
from pathlib import Path

from airflow.sdk import dag, get_current_context, task


@dag(schedule=None, start_date=datetime(2024, 1, 1), catchup=False, tags=["e2e"])
def e2e_pod_dies():
    @task(retries=1, retry_delay=timedelta(seconds=0), executor_config={"kubernetes_config": {"tier": "light"}})
    def dies_with_its_pod():
        ti = get_current_context()["ti"]
        with open(Path(os.environ["E2E_SHARED_DIR"]) / "pod_dies.log", "a") as marks:
            marks.write(f"{ti.id} {ti.try_number}\n")
        os.kill(os.getppid(), signal.SIGKILL)  # the supervisor: the container's main process
        time.sleep(600)  # killed with the rest of the container's processes

    dies_with_its_pod()


e2e_pod_dies()
