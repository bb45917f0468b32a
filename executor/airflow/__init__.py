"""The adapter to Airflow 3's executor interface - the only package that imports ``airflow``.

``[core] executor = airflow_k8s.executor.airflow.KubernetesPlatformExecutor``.  It may import
every other layer of the executor; none of them imports it, so the engine stays testable (and
the standalone runner usable) without Airflow installed.

The executor class is imported on first use: every Airflow process loads this package's cluster
policy (:mod:`.policy`, the ``airflow.policy`` entry point), and most of them never run the
executor, so they need not import the engine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_k8s.executor.airflow.executor import KubernetesPlatformExecutor

__all__ = ["KubernetesPlatformExecutor"]


def __getattr__(name: str) -> Any:
    if name == "KubernetesPlatformExecutor":
        from airflow_k8s.executor.airflow.executor import KubernetesPlatformExecutor

        return KubernetesPlatformExecutor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
