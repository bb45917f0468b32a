"""Pulumi components of the Airflow 3 Kubernetes executor platform, and its offline render.

``from airflow_k8s.infra import AirflowK8sPlatform, PlatformArgs, PlatformSecrets, shipped_templates``
in another stack; ``python -m airflow_k8s.infra render`` for the offline review.  Submodules that
need no Pulumi (``config.args``, ``config.stack_config``, ``config.quota``,
``components.placement``, ``components.podtemplates``) can be imported without it: the
component classes are loaded lazily.
"""

from __future__ import annotations

from importlib.resources import as_file, files
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_k8s.infra.components.platform import AirflowK8sPlatform, PlatformArgs
    from airflow_k8s.infra.components.provider import PlatformProvider
    from airflow_k8s.infra.components.secrets import PlatformSecrets
    from airflow_k8s.infra.config.args import PlatformConfig

__all__ = [
    "AirflowK8sPlatform",
    "PlatformArgs",
    "PlatformConfig",
    "PlatformProvider",
    "PlatformSecrets",
    "shipped_templates",
]


def shipped_templates(logical_dir: str | None = None) -> dict[str, dict[str, Any]]:
    """The pod templates this package ships (``airflow_k8s/pod_templates``), parsed and validated.

    Package data, found with :mod:`importlib.resources`: the same call works in a checkout, an
    editable install and a wheel in any ``site-packages`` - no path relative to a working
    directory.  ``logical_dir`` is where the scheduler mounts them (airflow.cfg
    ``pod_template_dir``; default ``/opt/airflow/pod_templates``).
    """
    from airflow_k8s.executor.contract.config import DEFAULT_TEMPLATE_DIR
    from airflow_k8s.executor.pods.templates import TemplateStore

    with as_file(files("airflow_k8s") / "pod_templates") as directory:
        store = TemplateStore(Path(directory), logical_dir=logical_dir or DEFAULT_TEMPLATE_DIR)
        return store.load_all()


def __getattr__(name: str) -> Any:
    if name in ("AirflowK8sPlatform", "PlatformArgs"):
        from airflow_k8s.infra.components import platform

        return getattr(platform, name)
    if name == "PlatformProvider":
        from airflow_k8s.infra.components import provider

        return provider.PlatformProvider
    if name == "PlatformConfig":
        from airflow_k8s.infra.config import args

        return args.PlatformConfig
    if name == "PlatformSecrets":
        from airflow_k8s.infra.components import secrets

        return secrets.PlatformSecrets
    raise AttributeError(f"module 'airflow_k8s.infra' has no attribute {name!r}")
