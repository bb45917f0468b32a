"""Tasks the executor fails, each for a reason the DAG author must read in the task's log: an image that cannot be
pulled, a request no node can ever hold (refused when queued: the DAG processor cannot know the nodes), and a pod
preempted under its running task (the test starts the preemptor once the task marks that it runs)."""

import os
import time
from datetime import datetime
from pathlib import Path

from airflow.sdk import dag, get_current_context, task

from airflow_k8s.executor.tasks.dag import kubernetes_config

WAIT_AT_MOST = 600.0


@dag(schedule=None, start_date=datetime(2024, 1, 1), catchup=False, tags=["e2e"])
def e2e_reasons():
    @task(executor_config=kubernetes_config(tier="light", image="apache/airflow:bad"))  # the fake cannot pull ":bad"
    def image_cannot_be_pulled(): ...

    @task(
        executor_config=kubernetes_config(tier="light", resources={"requests": {"cpu": "20"}, "limits": {"cpu": "20"}})
    )
    def larger_than_any_worker_node(): ...  # the light tier's pool: worker nodes of 16 CPUs

    @task(executor_config=kubernetes_config(tier="heavy"))  # alone on the compute pool
    def preempted_while_running():
        shared = Path(os.environ["E2E_SHARED_DIR"])
        (shared / f"preempt-me-{get_current_context()['ti'].run_id}").touch()
        deadline = time.monotonic() + WAIT_AT_MOST
        while time.monotonic() < deadline:  # until the pod is deleted under it
            time.sleep(0.5)
        raise TimeoutError("never preempted")

    image_cannot_be_pulled()
    larger_than_any_worker_node()
    preempted_while_running()


e2e_reasons()
