"""Parsers for setting values: raw text in, a typed value out, ``ValueError`` with a reason on failure.

Shared by airflow.cfg (:mod:`~airflow_k8s.executor.contract.config_keys`), task overrides and
infra's stack keys, so one grammar holds everywhere.  The rules, and why:

* **ASCII only, whole value**: every pattern is matched with ``re.fullmatch`` and ``re.ASCII``.
  ``re.match(r"^[a-z]+$")`` accepts ``"abc\\n"`` (``$`` matches before a final newline) and
  ``\\d`` accepts Arabic-Indic digits; the API server accepts neither.  Names, label values,
  quantities and image references are not stripped either: ``"x\\n"`` is invalid, not ``"x"``
  (configparser already strips airflow.cfg values; JSON and stack values arrive verbatim).
* **Booleans as Airflow parses them**: ``t``, ``true``, ``1`` / ``f``, ``false``, ``0`` in any case
  (``AirflowConfigParser.getboolean``); ``yes``/``on`` are errors in Airflow, so they are here.
* **Every number is bounded** by what the running code can honour (a thread count, a port, an
  int64 on the API server), so a value that validates never crashes the scheduler later.
* **Image references** follow the distribution reference grammar (registry, path, tag, digest).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from airflow_k8s.executor.contract import k8snames, quantity
from airflow_k8s.executor.contract.config import PULL_POLICIES, TAINT_EFFECTS, TOLERATION_OPERATORS, Toleration
from airflow_k8s.executor.contract.errors import QuantityError

_TRUE = {"t", "true", "1"}
_FALSE = {"f", "false", "0"}

# The distribution reference grammar (github.com/distribution/reference, regexp.go).
_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|{_IPV6})(?::[0-9]+)?"
_NAME = rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = re.compile(rf"(?P<name>{_NAME})(?::{_TAG})?(?:@{_DIGEST})?", re.ASCII)
IMAGE_NAME_MAX = 255


def fullmatch(pattern: str | re.Pattern[str], value: str) -> bool:
    """``value`` matches ``pattern`` as a whole, ASCII semantics (no trailing-newline loophole)."""
    compiled = pattern if isinstance(pattern, re.Pattern) else re.compile(pattern, re.ASCII)
    return compiled.fullmatch(value) is not None


def parse_bool(raw: str) -> bool:
    """Airflow's boolean: t/true/1 or f/false/0, any case, an inline ``#`` comment stripped."""
    lowered = raw.split("#", 1)[0].strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError("expected a boolean as Airflow reads it: True/False (also t/f, 1/0)")


def render_bool(value: bool) -> str:
    return "True" if value else "False"


def int_parser(minimum: int, maximum: int) -> Callable[[str], int]:
    """A whole number in ``[minimum, maximum]`` (ASCII digits, optional sign)."""

    def parse(raw: str) -> int:
        value_text = raw.strip()
        if not fullmatch(r"[+-]?[0-9]{1,19}", value_text):
            raise ValueError("expected a whole number")
        value = int(value_text)
        if value < minimum:
            raise ValueError(f"must be >= {minimum}")
        if value > maximum:
            raise ValueError(f"must be <= {maximum}")
        return value

    return parse


def float_parser(minimum: float, maximum: float, *, inclusive: bool = False) -> Callable[[str], float]:
    """A finite number in ``(minimum, maximum]`` (``[minimum, maximum]`` when ``inclusive``)."""

    def parse(raw: str) -> float:
        value_text = raw.strip()
        if not fullmatch(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", value_text):
            raise ValueError("expected a number")
        value = float(value_text)
        if inclusive and not (math.isfinite(value) and value >= minimum):
            raise ValueError(f"must be a finite number of at least {minimum:g}")
        if not math.isfinite(value) or value < minimum or (value == minimum and not inclusive):
            raise ValueError(f"must be a finite number greater than {minimum:g}")
        if value > maximum:
            raise ValueError(f"must be <= {maximum:g}")
        return value

    return parse


def price(raw: str) -> Decimal:
    value_text = raw.strip()
    if not fullmatch(r"[0-9]{1,9}(?:\.[0-9]{1,9})?", value_text):
        raise ValueError("expected a price such as 0.08 (0 to 999999999, up to 9 decimals)")
    try:
        return Decimal(value_text)
    except InvalidOperation as exc:  # pragma: no cover - the pattern admits only decimals
        raise ValueError("expected a price such as 0.08") from exc


def text(raw: str) -> str:
    """A non-empty single line of printable ASCII-or-Unicode text (no control characters)."""
    value = raw.strip()
    if not value or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError("expected a non-empty single-line value")
    return value


def absolute_path(raw: str) -> str:
    value = text(raw)
    if not value.startswith("/") or "\x00" in value:
        raise ValueError("expected an absolute path")
    return value


def image(raw: str) -> str:
    """A container image reference: ``[registry[:port]/]path[:tag][@digest]``."""
    value = raw
    match = _REFERENCE.fullmatch(value)
    if match is None or len(match["name"]) > IMAGE_NAME_MAX:
        raise ValueError(
            "expected a container image reference such as apache/airflow:3.3.2 or "
            "registry.example.com:5000/team/image@sha256:<64 hex>"
        )
    return value


DOCKER_HUB = "docker.io"


def image_repository(reference: str) -> str:
    """The fully qualified repository of an image reference, as container runtimes resolve it.

    ``apache/airflow:3.3.2`` -> ``docker.io/apache/airflow``, ``busybox`` -> ``docker.io/library/busybox``,
    ``ghcr.io/org/img@sha256:...`` -> ``ghcr.io/org/img`` (distribution's ``splitDockerDomain``: the
    first component is a registry only if it has a ``.`` or ``:``, is ``localhost`` or has uppercase).
    Raises ``ValueError`` for a reference that is not valid.
    """
    match = _REFERENCE.fullmatch(image(reference))
    assert match is not None  # image() checked it
    name = match["name"]
    first, slash, rest = name.partition("/")
    if slash and (any(c in first for c in ".:") or first == "localhost" or first != first.lower()):
        domain, path = first, rest
    else:
        domain, path = DOCKER_HUB, name
    if domain == "index.docker.io":
        domain = DOCKER_HUB
    if domain == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    return f"{domain}/{path}"


def dns_label(raw: str) -> str:
    value = raw
    if not k8snames.is_dns1123_label(value):
        raise ValueError("expected a DNS-1123 label (lowercase a-z, 0-9, '-', <= 63 chars)")
    return value


def namespace(raw: str) -> str:
    """A namespace the executor may run task pods in: a DNS-1123 label, not a system namespace."""
    value = dns_label(raw)
    if value in k8snames.SYSTEM_NAMESPACES:
        raise ValueError(f"{value!r} is a Kubernetes system namespace; task pods must not run there")
    return value


def dns_subdomain(raw: str) -> str:
    value = raw
    if not k8snames.is_dns1123_subdomain(value):
        raise ValueError("expected a DNS-1123 name (lowercase a-z, 0-9, '-', '.')")
    return value


def label_value(raw: str) -> str:
    value = raw
    problem = k8snames.label_value_problem(value)
    if problem or not value:
        raise ValueError(problem or "expected a non-empty label value")
    return value


def pull_policy(raw: str) -> str:
    value = raw
    if value not in PULL_POLICIES:
        raise ValueError(f"expected one of {', '.join(PULL_POLICIES)}")
    return value


def quantity_parser(check: Callable[[object], Decimal]) -> Callable[[str], str]:
    """A parser that checks a quantity with ``check`` and keeps its text (ValueError on failure)."""

    def parse(raw: str) -> str:
        value = raw
        try:
            check(value)
        except QuantityError as exc:
            raise ValueError(str(exc)) from exc
        return value

    return parse


cpu = quantity_parser(quantity.cpu)
memory = quantity_parser(quantity.memory)


def json_value(raw: str, expected: type, example: str) -> Any:
    """Parse JSON and require a value of type ``expected`` (dict or list)."""
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    except RecursionError as exc:
        raise ValueError("invalid JSON: nested too deeply") from exc
    if not isinstance(data, expected):
        raise ValueError(f"expected a JSON {'object' if expected is dict else 'array'} such as {example}")
    return data


def comma_list(item: Callable[[str], str]) -> Callable[[str], tuple[str, ...]]:
    """A comma-separated list (Airflow's form), each item checked by ``item``; empty items dropped."""

    def parse(raw: str) -> tuple[str, ...]:
        return tuple(item(part.strip()) for part in raw.split(",") if part.strip())

    return parse


def render_comma_list(values: tuple[str, ...]) -> str:
    return ",".join(values)


def node_selector(raw: str) -> tuple[tuple[str, str], ...]:
    """JSON object of label key -> label value, e.g. ``{"node-type": "worker"}``."""
    data = json_value(raw, dict, '{"node-type": "worker"}')
    for key, value in data.items():
        problem = k8snames.label_key_problem(key) or k8snames.label_value_problem(value)
        if problem:
            raise ValueError(problem)
    return tuple(sorted(data.items()))


def render_node_selector(value: tuple[tuple[str, str], ...]) -> str:
    return json.dumps(dict(value), sort_keys=True)


_TOLERATION_FIELDS = {"key", "operator", "value", "effect", "tolerationSeconds"}
TOLERATION_SECONDS_MAX = 2**63 - 1


def toleration(item: object) -> Toleration:
    """Validate one toleration dict (camelCase, as in pod specs)."""
    if not isinstance(item, dict):
        raise ValueError(f"each toleration must be a JSON object, got {item!r}")
    unknown = set(item) - _TOLERATION_FIELDS
    if unknown:
        raise ValueError(f"unknown toleration field(s) {sorted(unknown)}; allowed: {sorted(_TOLERATION_FIELDS)}")
    operator = item.get("operator", "Equal")
    if operator not in TOLERATION_OPERATORS:
        raise ValueError(f"toleration operator {operator!r} must be one of {TOLERATION_OPERATORS}")
    key, value, effect = item.get("key"), item.get("value"), item.get("effect")
    if key is not None and (not isinstance(key, str) or not k8snames.is_label_key(key)):
        raise ValueError(f"toleration key {key!r} is not a valid label key")
    if operator == "Exists" and value not in (None, ""):
        raise ValueError("a toleration with operator Exists must not have a value")
    if operator == "Equal" and key is None:
        raise ValueError("a toleration with operator Equal needs a key")
    if value is not None and k8snames.label_value_problem(value):
        raise ValueError(f"toleration value {value!r} is not a valid label value")
    if effect is not None and effect not in TAINT_EFFECTS:
        raise ValueError(f"toleration effect {effect!r} must be one of {TAINT_EFFECTS}")
    seconds = item.get("tolerationSeconds")
    if seconds is not None:
        if not isinstance(seconds, int) or isinstance(seconds, bool) or not 0 <= seconds <= TOLERATION_SECONDS_MAX:
            raise ValueError("tolerationSeconds must be a whole number >= 0")
        if effect != "NoExecute":
            raise ValueError("tolerationSeconds only applies to effect NoExecute")
    return Toleration(key=key, operator=operator, value=value or None, effect=effect, toleration_seconds=seconds)


def tolerations(raw: str) -> tuple[Toleration, ...]:
    """JSON array of toleration objects."""
    data = json_value(raw, list, '[{"key": "dedicated", "operator": "Equal", "value": "worker"}]')
    return tuple(toleration(item) for item in data)


def render_tolerations(value: tuple[Toleration, ...]) -> str:
    return json.dumps([t.to_k8s() for t in value], sort_keys=True)
