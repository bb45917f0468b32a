"""The Kubernetes provider the platform needs: ConfigMaps and Secrets updated in place, never replaced.

pulumi-kubernetes *replaces* a ConfigMap or Secret whose data changed unless the provider has
``enableConfigMapMutable`` / ``enableSecretMutable``; with the platform's pinned names a
replacement deletes the object before creating it again, and a pod starting in between (a task pod
mounting airflow.cfg, a control-plane pod reading the Secret) fails.  So
:class:`~airflow_k8s.infra.components.platform.AirflowK8sPlatform` itself - not only this
repository's stack program - refuses a provider it cannot prove is set up that way
(:func:`provider_problems`):

* **an explicit provider** (``opts=ResourceOptions(providers=[...])``, or inherited from a parent)
  must be a :class:`PlatformProvider`: a ``pulumi_kubernetes.Provider`` that always sets both
  flags.  A plain ``k8s.Provider`` is refused, even one created with the flags, because a program
  cannot read a provider's inputs back - only this subclass can vouch for them;
* **the default provider** is configured by the stack's ``kubernetes:*`` config (or the
  provider's ``PULUMI_K8S_ENABLE_*_MUTABLE`` environment variables): both flags must be ``true``
  there.  This is the one place a component reads configuration - the default provider's, which
  decides what ``pulumi up`` will do to the platform's objects.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

# provider config key -> the environment variable the provider falls back to
MUTABLE_FLAGS = {
    "enableConfigMapMutable": "PULUMI_K8S_ENABLE_CONFIGMAP_MUTABLE",
    "enableSecretMutable": "PULUMI_K8S_ENABLE_SECRET_MUTABLE",
}


class PlatformProvider(k8s.Provider):
    """A ``pulumi_kubernetes.Provider`` that updates ConfigMaps and Secrets in place (module docstring).

    Takes every argument ``k8s.Provider`` takes; ``enable_config_map_mutable`` and
    ``enable_secret_mutable`` are always ``True`` (passing ``False`` is an error).
    """

    updates_in_place = True

    def __init__(self, resource_name: str, opts: pulumi.ResourceOptions | None = None, **kwargs: Any) -> None:
        for flag in ("enable_config_map_mutable", "enable_secret_mutable"):
            if kwargs.get(flag) is False:
                raise ValueError(f"PlatformProvider {resource_name}: {flag}=False is what the platform cannot run with")
            kwargs[flag] = True
        super().__init__(resource_name, opts, **kwargs)


def default_provider_flag(key: str, environ: Mapping[str, str] | None = None) -> bool:
    """The default Kubernetes provider's boolean ``key``, as the provider resolves it."""
    value = pulumi.Config("kubernetes").get(key)
    if value is None:
        value = (os.environ if environ is None else environ).get(MUTABLE_FLAGS[key])
    return (value or "").strip().lower() == "true"


def default_provider_problems() -> list[str]:
    return [
        f"kubernetes:{key} must be true (pulumi config set kubernetes:{key} true): without it every change "
        f"of airflow.cfg, a pod template or a secret deletes and recreates the object under running pods"
        for key in MUTABLE_FLAGS
        if not default_provider_flag(key)
    ]


def provider_problems(component: pulumi.Resource) -> list[str]:
    """Why the Kubernetes provider ``component``'s children will use cannot run the platform (empty: it can)."""
    provider = component.get_provider("kubernetes::index")
    if provider is None:
        return default_provider_problems()
    if getattr(provider, "updates_in_place", False):
        return []
    name = getattr(provider, "_name", "?")
    return [
        f"the Kubernetes provider {name!r} is not a PlatformProvider: the platform cannot verify that it updates "
        "ConfigMaps and Secrets in place (a replacement deletes them under running pods); create it with "
        "airflow_k8s.infra.PlatformProvider(...) - a pulumi_kubernetes.Provider that always sets "
        "enable_config_map_mutable and enable_secret_mutable"
    ]
