"""Real-cluster tier: a task whose first try overruns its ``execution_timeout``; the retry finishes in time."""

import time
from datetime import datetime, timedelta

from airflow.sdk import dag, get_current_context, task


@dag(schedule=None, start_date=datetime(2024, 1, 1), catchup=False, tags=["realcluster"])
def kc_timeout():
    @task(
        retries=1,
        retry_delay=timedelta(seconds=0),
        execution_timeout=timedelta(seconds=20),
        executor_config={"kubernetes_config": {"tier": "light"}},
    )
    def overruns_once():
        ti = get_current_context()["ti"]
        print(f"KC-START {ti.task_id} try={ti.try_number} id={ti.id}", flush=True)
        if ti.try_number == 1:
            time.sleep(900)  # execution_timeout stops it after 20 s
        return ti.try_number

    overruns_once()


kc_timeout()
