"""Deterministic, review-friendly YAML: key order kept, multi-line strings as ``|`` blocks.

Used for the pod templates published in a ConfigMap and for the offline render, where a stable,
readable text is what makes a diff between two renders meaningful.
"""

from __future__ import annotations

from typing import Any

import yaml


class _Dumper(yaml.SafeDumper):
    """SafeDumper that writes multi-line strings as literal blocks and never uses aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str_representer(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    # Trailing spaces cannot be represented in a literal block; such strings stay quoted.
    if "\n" in data and not any(line != line.rstrip() for line in data.split("\n")):
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


_Dumper.add_representer(str, _str_representer)


def dump(data: Any) -> str:
    """YAML text of ``data`` (dict order kept, block style, no line wrapping)."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=1 << 16, allow_unicode=True)


def dump_sorted(data: Any) -> str:
    """Like :func:`dump` with keys sorted (for objects whose order carries no meaning)."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=True, default_flow_style=False, width=1 << 16, allow_unicode=True)
