"""Real-cluster tier: tasks that run until the test releases them.

Each task prints a start line, then a heartbeat every 2 s, until the Airflow Variable ``kc_release_<run id>``
exists - read through the Execution API, the only service a task pod may reach.  The test reads their logs
while they run, deletes the scheduler pod under them, or applies a stack update, then releases them.
"""

import time
from datetime import datetime

from airflow.sdk import Variable, dag, get_current_context, task

TASKS = 3
WAIT_AT_MOST = 1800.0  # seconds; a task never released fails rather than hangs


@dag(schedule=None, start_date=datetime(2024, 1, 1), catchup=False, tags=["realcluster"])
def kc_hold():
    for number in range(TASKS):

        @task(task_id=f"hold_{number}", executor_config={"kubernetes_config": {"tier": "light"}})
        def hold():
            context = get_current_context()
            ti = context["ti"]
            key = f"kc_release_{context['run_id']}"
            print(f"KC-START {ti.task_id} try={ti.try_number} id={ti.id}", flush=True)
            deadline = time.monotonic() + WAIT_AT_MOST
            beat = 0
            while Variable.get(key, default=None) is None:
                if time.monotonic() > deadline:
                    raise TimeoutError("never released")
                beat += 1
                print(f"KC-HEARTBEAT {ti.task_id} {beat}", flush=True)
                time.sleep(2)
            print(f"KC-DONE {ti.task_id}", flush=True)
            return ti.task_id

        hold()


kc_hold()
