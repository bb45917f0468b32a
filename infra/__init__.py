"""Pulumi components of the Airflow Kubernetes executor platform, and its offline render.

``from airflow_k8s.infra import AirflowK8sPlatform, PlatformArgs`` in another stack;
``python -m airflow_k8s.infra render`` for the offline review.  Submodules that need no Pulumi
(``config.args``, ``config.stack_config``, ``components.placement``, ``components.podtemplates``)
can be imported without it: the component classes are loaded lazily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_k8s.infra.components.platform import AirflowK8sPlatform, PlatformArgs
    from airflow_k8s.infra.components.secrets import PlatformSecrets

__all__ = ["AirflowK8sPlatform", "PlatformArgs", "PlatformSecrets"]


def __getattr__(name: str) -> Any:
    if name in ("AirflowK8sPlatform", "PlatformArgs"):
        from airflow_k8s.infra.components import platform

        return getattr(platform, name)
    if name == "PlatformSecrets":
        from airflow_k8s.infra.components import secrets

        return secrets.PlatformSecrets
    raise AttributeError(f"module 'airflow_k8s.infra' has no attribute {name!r}")
