"""Parsers of the ``task_allowed_*`` airflow.cfg keys (:mod:`~airflow_k8s.executor.contract.task_policy`).

Same contract as :mod:`~airflow_k8s.executor.contract.parsers`: raw text in, a typed value out,
``ValueError`` with a reason on failure (the loader adds file, section, key and value).  Lists are
comma-separated as Airflow writes lists; the node selector allowance is JSON because its values
are lists.  Every parser refuses what would widen the policy past its fixed limits: a never-allowed
pod field, a ``system-*`` PriorityClass, a registry given without its host.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from airflow_k8s.executor.contract import k8snames
from airflow_k8s.executor.contract.config import Toleration
from airflow_k8s.executor.contract.parsers import comma_list, dns_subdomain, json_value, tolerations
from airflow_k8s.executor.contract.task_policy import (
    DEFAULT_POD_FIELDS,
    NEVER_POD_FIELDS,
    OPTIONAL_POD_FIELDS,
    SYSTEM_PRIORITY_PREFIX,
)

_KNOWN_POD_FIELDS = (*DEFAULT_POD_FIELDS, *OPTIONAL_POD_FIELDS)
# A registry host (as in image references) and optional repository path components.
_REGISTRY = re.compile(
    r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*"
    r"(?::[0-9]{1,5})?(?:/[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*)*",
    re.ASCII,
)
MAX_LIST_ITEMS = 1000


def _unique(parse: Callable[[str], tuple[str, ...]]) -> Callable[[str], tuple[str, ...]]:
    def checked(raw: str) -> tuple[str, ...]:
        values = parse(raw)
        if len(values) > MAX_LIST_ITEMS:
            raise ValueError(f"at most {MAX_LIST_ITEMS} entries")
        seen = set()
        for value in values:
            if value in seen:
                raise ValueError(f"{value!r} is listed twice")
            seen.add(value)
        return values

    return checked


def _pod_field(raw: str) -> str:
    if raw in NEVER_POD_FIELDS:
        raise ValueError(f"{raw!r} can never be allowed for tasks: {NEVER_POD_FIELDS[raw]}")
    if raw not in _KNOWN_POD_FIELDS:
        raise ValueError(f"{raw!r} is not a pod spec field a task may be allowed (choose from {_KNOWN_POD_FIELDS})")
    return raw


def _priority_class(raw: str) -> str:
    value = dns_subdomain(raw)
    if value.startswith(SYSTEM_PRIORITY_PREFIX):
        raise ValueError(f"{value!r}: system-* PriorityClasses are reserved for cluster-critical pods")
    return value


def _registry(raw: str) -> str:
    """``registry.example.com[:5000][/team/...]``: an image host, optionally a repository prefix."""
    value = raw
    host = value.partition("/")[0]
    if not _REGISTRY.fullmatch(value) or not ("." in host or ":" in host or host == "localhost"):
        raise ValueError(
            f"{value!r} is not a registry: give its host (docker.io, ghcr.io/my-org, registry.example.com:5000/team)"
        )
    return "docker.io" + value[len("index.docker.io") :] if host == "index.docker.io" else value


pod_fields = _unique(comma_list(_pod_field))
names = _unique(comma_list(dns_subdomain))
priority_classes = _unique(comma_list(_priority_class))
registries = _unique(comma_list(_registry))


def node_selector_allowance(raw: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """JSON object of label key -> allowed values, e.g. ``{"topology.kubernetes.io/zone": ["eu-west-1a"]}``."""
    if not raw.strip():
        return ()
    data = json_value(raw, dict, '{"node-type": ["worker", "gpu"]}')
    out = []
    for key, given in sorted(data.items()):
        problem = k8snames.label_key_problem(key)
        if problem:
            raise ValueError(problem)
        values = [given] if isinstance(given, str) else given
        if not isinstance(values, list) or not values:
            raise ValueError(f"{key!r}: expected a non-empty list of label values")
        for value in values:
            problem = k8snames.label_value_problem(value)
            if problem:
                raise ValueError(f"{key!r}: {problem}")
        out.append((key, tuple(sorted(set(values)))))
    return tuple(out)


def render_node_selector_allowance(value: tuple[tuple[str, tuple[str, ...]], ...]) -> str:
    return json.dumps({key: list(values) for key, values in value}, sort_keys=True)


def registry_allows(entry: str, repository: str) -> bool:
    """``repository`` (fully qualified, see :func:`~.parsers.image_repository`) lies under ``entry``."""
    return repository == entry or repository.startswith(entry.rstrip("/") + "/")


def task_tolerations(raw: str) -> tuple[Toleration, ...]:
    """Tolerations a task may add: never one without a key and with operator ``Exists``, which tolerates every
    taint (the control plane's, ``node.kubernetes.io/unschedulable``...), whatever its effect."""
    allowed = tolerations(raw)
    for item in allowed:
        if item.key is None:
            raise ValueError(
                'a toleration without a key and with operator "Exists" tolerates every taint; '
                "name the taint keys tasks may tolerate"
            )
    return allowed
