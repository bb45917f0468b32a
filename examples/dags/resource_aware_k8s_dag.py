"""The seed's ``resource_aware_k8s_dag``, as it runs on Airflow 3 with this executor.

The seed measured the cluster in one task, picked resources in a second and passed them to a third as
``kubernetes_config={'resources': '{{ resources }}'}``.  That cannot work: an executor builds the pod before
the task runs, and templates are rendered inside the pod, so the pod would get the literal string (and
``@task(kubernetes_config=...)`` is a TypeError in Airflow 3 anyway).  The seed's arithmetic was also wrong
(``int("3920m")`` fails, the available CPU was computed from 0 downwards).

Here the executor does the measuring, at launch time: ``tier: auto`` picks the largest tier marked ``auto``
(light, medium, heavy by default) whose requests fit on a node its template can be scheduled on, from the
nodes' allocatable resources minus what the executor's own pods request.  The task can learn which tier it
got through the downward API (the pod's ``airflow_executor_tier`` label).
"""

import os
from datetime import datetime

from airflow.sdk import dag, task

from airflow_k8s.executor.tasks.dag import kubernetes_config

TIER_FROM_LABEL = {
    "name": "EXECUTOR_TIER",
    "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['airflow_executor_tier']"}},
}


@dag(
    schedule="@hourly",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["kubernetes", "resource-aware"],
)
def resource_aware_k8s_dag():
    @task(
        executor_config=kubernetes_config(
            tier="auto", pod_override={"spec": {"containers": [{"name": "base", "env": [TIER_FROM_LABEL]}]}}
        )
    )
    def process_with_adaptive_resources():
        """Process with the resources the executor chose for this run."""
        return {"tier": os.environ.get("EXECUTOR_TIER", "unknown"), "status": "processing"}

    process_with_adaptive_resources()


resource_aware_k8s_dag()
