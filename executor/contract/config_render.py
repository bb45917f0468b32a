"""Render an ExecutorConfig back to airflow.cfg text.

infra uses this to build the scheduler's ConfigMap from Pulumi stack config, so the rendered
file is exactly what :func:`airflow_k8s.executor.contract.config_loader.parse_config` accepts:
``parse_config(render_config(c), environ={}) == c`` for every valid ``c`` (property-tested).
Every setting is written explicitly, defaults included, so the ConfigMap documents itself and a
change of a default in code shows up as a diff in review rather than silently.
"""

from __future__ import annotations

from airflow_k8s.executor.contract import config_keys
from airflow_k8s.executor.contract.config import ExecutorConfig, Tier
from airflow_k8s.executor.contract.config_loader import TIER_PREFIX

HEADER = "# Generated from the platform's stack configuration; edit the stack, not this file.\n"


def render_config(config: ExecutorConfig, *, header: str = HEADER) -> str:
    """airflow.cfg text with ``[core]``, ``[kubernetes]`` and one section per tier."""
    lines = [header.rstrip("\n"), "[core]", f"executor = {config.executor}", "", "[kubernetes]"]
    for key in config_keys.KUBERNETES_KEYS:
        value = getattr(config, key.name)
        if value is None:
            continue
        lines.append(f"# {key.doc}")
        lines.append(f"{key.name} = {key.render(value)}")
    for tier in config.tiers:
        lines.extend(["", f"[{TIER_PREFIX}{tier.name}]", *_tier_lines(tier)])
    return "\n".join(line for line in lines if line is not None) + "\n"


def _tier_lines(tier: Tier) -> list[str]:
    out = []
    for key in config_keys.TIER_KEYS:
        value = getattr(tier, key.name)
        if value is None:
            continue
        out.append(f"{key.name} = {key.render(value)}")
    return out
