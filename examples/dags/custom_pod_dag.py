"""The seed's ``custom_pod_dag``, as it runs on Airflow 3 with this executor.

The seed wrote ``@task(kubernetes_config={...})``: Airflow 3 refuses that keyword (TypeError).  A task's pod
settings go in ``executor_config``, in either of the two forms the executor reads:

* this project's typed form, ``{"kubernetes_config": {...}}`` (``heavy_computation``), written with the typed
  helper ``kubernetes_config(...)`` - the seed's call with ``executor_config=`` around it: a template by its
  bare name in ``[kubernetes_executor] pod_template_dir``, resources, a tier, node selector, env... (an editor
  completes the arguments; a bad value fails when the DAG is parsed);
* Airflow's own form, ``{"pod_template_file": ..., "pod_override": k8s.V1Pod(...)}`` (``light_task``), as the
  provider's KubernetesExecutor takes it.

Merge order: template -> airflow.cfg defaults -> tier -> ``kubernetes_config`` -> ``pod_override``.
"""

from datetime import datetime

from airflow.sdk import dag, task
from kubernetes.client import models as k8s

from airflow_k8s.executor.tasks.dag import kubernetes_config


@dag(
    schedule="@daily",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["kubernetes", "custom-pods"],
)
def custom_pod_dag():
    @task(
        executor_config=kubernetes_config(
            pod_template_file="heavy_computation.yaml",
            resources={"requests": {"cpu": "2", "memory": "4Gi"}, "limits": {"cpu": "4", "memory": "8Gi"}},
        )
    )
    def heavy_computation():
        """Task requiring heavy compute resources."""
        import time

        time.sleep(10)
        return {"status": "completed"}

    @task(
        executor_config={
            "pod_template_file": "light_task.yaml",
            "pod_override": k8s.V1Pod(
                spec=k8s.V1PodSpec(
                    containers=[
                        k8s.V1Container(
                            name="base",
                            resources=k8s.V1ResourceRequirements(
                                requests={"cpu": "250m", "memory": "512Mi"},
                                limits={"cpu": "500m", "memory": "1Gi"},
                            ),
                        )
                    ]
                )
            ),
        }
    )
    def light_task():
        """Task requiring minimal resources."""
        return {"status": "completed"}

    heavy_computation() >> light_task()


custom_pod_dag()
