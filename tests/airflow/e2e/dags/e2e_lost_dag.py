"""A task whose worker cannot find its DAG - as in an image whose AIRFLOW_HOME hides the platform's
airflow.cfg: its pod's Airflow looks in another DAGs folder, the Task SDK logs "Dag not found during start
up" and reschedules the same try, and (with the worker's own missing_dag_retries out of the platform's
reach, here 50 with no delay) Airflow hands the try back again and again."""

from datetime import datetime

from airflow.sdk import dag, task

LOST = {
    "AIRFLOW__CORE__DAGS_FOLDER": "/nonexistent/airflow-k8s-e2e-dags",
    "AIRFLOW__WORKERS__MISSING_DAG_RETRIES": "50",
    "AIRFLOW__WORKERS__MISSING_DAG_RETRY_DELAY": "0",
}


@dag(schedule=None, start_date=datetime(2024, 1, 1), catchup=False, tags=["e2e"])
def e2e_lost_dag():
    @task(retries=0, executor_config={"kubernetes_config": {"tier": "light", "env": LOST}})
    def never_found():
        raise AssertionError("the worker must not find this DAG")

    never_found()


e2e_lost_dag()
