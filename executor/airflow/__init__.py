"""The adapter to Airflow 3's executor interface - the only package that imports ``airflow``.

``[core] executor = airflow_k8s.executor.airflow.KubernetesPlatformExecutor``.  It may import
every other layer of the executor; none of them imports it, so the engine stays testable (and
the standalone runner usable) without Airflow installed.
"""

from airflow_k8s.executor.airflow.executor import KubernetesPlatformExecutor

__all__ = ["KubernetesPlatformExecutor"]
