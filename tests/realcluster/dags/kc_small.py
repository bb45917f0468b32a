"""Real-cluster tier: the small DAG both executors run for the comparison (no executor_config: each executor's
default pod template).  Three independent tasks, then one that depends on them; each sleeps one second."""

import time
from datetime import datetime

from airflow.sdk import dag, task


@dag(schedule=None, start_date=datetime(2024, 1, 1), catchup=False, tags=["realcluster"])
def kc_small():
    @task
    def step(number: int) -> int:
        time.sleep(1)
        return number

    @task
    def total(numbers: list[int]) -> int:
        return sum(numbers)

    total([step.override(task_id=f"step_{n}")(n) for n in range(3)])


kc_small()
