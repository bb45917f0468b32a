"""Render an ExecutorConfig back to airflow.cfg text.

infra uses this to build the ConfigMap from Pulumi stack config, so the rendered file is exactly
what :func:`~airflow_k8s.executor.contract.config_loader.parse_config` accepts:
``parse_config(render_config(c), environ={}) == c`` for every valid ``c`` (property-tested).
Every setting is written explicitly, defaults included (keys that are unset stay absent), so the
ConfigMap documents itself and a change of a default in code shows up as a diff in review.
"""

from __future__ import annotations

from airflow_k8s.executor.contract import config_keys
from airflow_k8s.executor.contract.config import ExecutorConfig, Tier
from airflow_k8s.executor.contract.config_loader import SECTION
from airflow_k8s.executor.contract.config_rules import TIER_PREFIX

HEADER = "# Generated from the platform's stack configuration; edit the stack, not this file.\n"


def render_config(config: ExecutorConfig, *, header: str = HEADER) -> str:
    """airflow.cfg text with ``[core]``, ``[workers]``, ``[kubernetes_executor]`` and one section per tier."""
    lines = [header.rstrip("\n"), "[core]", f"executor = {config.executor}"]
    lines.extend(_key_lines(config, config_keys.CORE_KEYS, comments=False))
    lines.extend(["", "[workers]", *_key_lines(config, config_keys.WORKERS_KEYS, comments=True)])
    lines.extend(["", f"[{SECTION}]", *_key_lines(config, config_keys.KUBERNETES_KEYS, comments=True)])
    for tier in config.tiers:
        lines.extend(["", f"[{TIER_PREFIX}{tier.name}]", *_key_lines(tier, config_keys.TIER_KEYS, comments=False)])
    return "\n".join(lines) + "\n"


def _key_lines(values: ExecutorConfig | Tier, keys: tuple[config_keys.Key, ...], *, comments: bool) -> list[str]:
    out = []
    for key in keys:
        value = getattr(values, key.name)
        if value is None:
            continue
        if comments:
            out.append(f"# {key.doc}")
        out.append(f"{key.name} = {key.render(value)}".rstrip())
    return out
