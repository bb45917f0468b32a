"""Pulumi components of the Airflow Kubernetes executor platform, and its offline render.

``from infra import AirflowK8sPlatform, PlatformArgs`` in another stack; ``python -m infra
render`` for the offline review.  Submodules that need no Pulumi (``infra.args``,
``infra.stack_config``, ``infra.placement``, ``infra.podtemplates``) can be imported without it:
the component classes are loaded lazily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from infra.platform import AirflowK8sPlatform, PlatformArgs
    from infra.secrets import PlatformSecrets

__all__ = ["AirflowK8sPlatform", "PlatformArgs", "PlatformSecrets"]


def __getattr__(name: str) -> Any:
    if name in ("AirflowK8sPlatform", "PlatformArgs"):
        from infra import platform

        return getattr(platform, name)
    if name == "PlatformSecrets":
        from infra import secrets

        return secrets.PlatformSecrets
    raise AttributeError(f"module 'infra' has no attribute {name!r}")
