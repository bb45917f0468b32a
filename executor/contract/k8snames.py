"""Validation of Kubernetes names, label keys and label values.

Pod names, namespaces, service accounts and labels all have grammars enforced by the API
server; checking them here turns a 422 at launch time into a clear error at config load time.
Patterns match the whole value with ASCII semantics (``fullmatch``, ``re.ASCII``): ``^...$`` with
``re.match`` would accept a trailing newline, which the API server does not.
"""

from __future__ import annotations

import re

DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_MAX = 253
LABEL_VALUE_MAX = 63
# Namespaces Kubernetes itself runs in: the executor never launches task pods there.
SYSTEM_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease"})

_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", re.ASCII)
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*", re.ASCII)
_LABEL_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]", re.ASCII)
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?", re.ASCII)
_ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*", re.ASCII)


def is_dns1123_label(value: str) -> bool:
    """Namespace / pod-hostname grammar: lowercase alphanumerics and '-', at most 63 chars."""
    return len(value) <= DNS1123_LABEL_MAX and bool(_DNS1123_LABEL.fullmatch(value))


def is_dns1123_subdomain(value: str) -> bool:
    """Object-name grammar (pods, service accounts, configmaps): dot-separated labels."""
    return len(value) <= DNS1123_SUBDOMAIN_MAX and bool(_DNS1123_SUBDOMAIN.fullmatch(value))


def is_label_value(value: str) -> bool:
    """Label values: empty, or <= 63 chars of alphanumerics, '-', '_', '.' (alnum at ends)."""
    return len(value) <= LABEL_VALUE_MAX and bool(_LABEL_VALUE.fullmatch(value))


def is_label_key(key: str) -> bool:
    """Label / annotation / nodeSelector keys: optional DNS-subdomain prefix, '/', a name."""
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or not is_dns1123_subdomain(prefix)):
        return False
    return 0 < len(name) <= 63 and bool(_LABEL_NAME.fullmatch(name))


def is_env_name(name: str) -> bool:
    """Environment variable names accepted by the API server."""
    return bool(_ENV_NAME.fullmatch(name))


def label_key_problem(key: object) -> str | None:
    """None when ``key`` is a valid label key, otherwise a sentence saying why not."""
    if not isinstance(key, str):
        return f"label key {key!r} must be a string"
    if not is_label_key(key):
        return f"{key!r} is not a valid label key (optional DNS prefix + '/' + name of <= 63 chars)"
    return None


def label_value_problem(value: object) -> str | None:
    """None when ``value`` is a valid label value, otherwise a sentence saying why not."""
    if not isinstance(value, str):
        return f"label value {value!r} must be a string"
    if not is_label_value(value):
        return f"{value!r} is not a valid label value (<= 63 chars of [A-Za-z0-9-_.], alnum at both ends)"
    return None
