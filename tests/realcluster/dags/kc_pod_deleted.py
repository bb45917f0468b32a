"""Real-cluster tier: a task whose pod the test deletes (``kubectl delete pod``) while its first try runs.

The first try waits (printing a heartbeat) for the deletion; the retry, in a new pod, succeeds at once.
"""

import time
from datetime import datetime, timedelta

from airflow.sdk import dag, get_current_context, task

WAIT_AT_MOST = 1800.0


@dag(schedule=None, start_date=datetime(2024, 1, 1), catchup=False, tags=["realcluster"])
def kc_pod_deleted():
    @task(retries=1, retry_delay=timedelta(seconds=0), executor_config={"kubernetes_config": {"tier": "light"}})
    def deleted_under_it():
        ti = get_current_context()["ti"]
        print(f"KC-START {ti.task_id} try={ti.try_number} id={ti.id}", flush=True)
        if ti.try_number == 1:
            deadline = time.monotonic() + WAIT_AT_MOST
            while time.monotonic() < deadline:
                print(f"KC-HEARTBEAT {ti.task_id}", flush=True)
                time.sleep(2)
            raise TimeoutError("the pod of the first try was never deleted")
        return ti.try_number

    deleted_under_it()


kc_pod_deleted()
