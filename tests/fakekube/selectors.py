"""Label and field selectors with the API server's syntax and semantics.

Label selectors: comma-separated requirements, all of which must hold::

    a=b   a==b   a!=b   a in (x,y)   a notin (x)   a   !a   a>3   a<3

``!=`` and ``notin`` also match objects that lack the key.  Keys and values are validated like the real parser, so
anything that is not a legal label (quotes, spaces inside values, ``;``...) is a 400 BadRequest rather than a silent
non-match.

Field selectors: ``field=value``, ``field==value`` or ``field!=value`` terms joined by commas, over a fixed set of
fields per resource (``metadata.name``, ``metadata.namespace``, ``status.phase``, ``spec.nodeName``...).  Unknown
fields are a 400 like ``field label not supported: foo``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ApiError, bad_request
from .validation import label_value_errors, qualified_name_errors

_KEY = r"[^\s,()!=<>]+"
_VALUE = r"[^\s,()!=<>]*"
_NOT_EXISTS = re.compile(rf"\s*!\s*({_KEY})\s*")
_SET = re.compile(rf"\s*({_KEY})\s+(in|notin)\s*\(([^()]*)\)\s*")
_EQUALITY = re.compile(rf"\s*({_KEY})\s*(==|=|!=)\s*({_VALUE})\s*")
_COMPARE = re.compile(rf"\s*({_KEY})\s*([<>])\s*(-?[0-9]+)\s*")
_EXISTS = re.compile(rf"\s*({_KEY})\s*")


@dataclass(frozen=True, slots=True)
class Requirement:
    """One label requirement; ``op`` is one of ``= != in notin exists !exists gt lt``."""

    key: str
    op: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.op
        if op == "=":
            return labels.get(self.key) == self.values[0]
        if op == "!=":
            return labels.get(self.key) != self.values[0]
        if op == "in":
            return self.key in labels and labels[self.key] in self.values
        if op == "notin":
            return labels.get(self.key) not in self.values
        if op == "exists":
            return self.key in labels
        if op == "!exists":
            return self.key not in labels
        value = labels.get(self.key)
        if value is None:
            return False
        try:
            number = int(value)
        except ValueError:
            return False
        bound = int(self.values[0])
        return number > bound if op == "gt" else number < bound


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside ``( )``."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _parse_requirement(text: str) -> Requirement:
    if m := _NOT_EXISTS.fullmatch(text):
        req = Requirement(m[1], "!exists")
    elif m := _SET.fullmatch(text):
        values = tuple(v.strip() for v in m[3].split(",")) if m[3].strip() else ()
        if not values:
            raise bad_request(
                f"unable to parse requirement: for '{m[2]}', 'notin' operators, values set can't be empty"
            )
        req = Requirement(m[1], m[2], values)
    elif m := _EQUALITY.fullmatch(text):
        req = Requirement(m[1], "!=" if m[2] == "!=" else "=", (m[3],))
    elif m := _COMPARE.fullmatch(text):
        req = Requirement(m[1], "gt" if m[2] == ">" else "lt", (m[3],))
    elif m := _EXISTS.fullmatch(text):
        req = Requirement(m[1], "exists")
    else:
        raise bad_request(f"unable to parse requirement: found '{text.strip()}', expected: identifier")
    for problem in qualified_name_errors(req.key):
        raise bad_request(f'unable to parse requirement: key: Invalid value: "{req.key}": {problem}')
    if req.op not in ("gt", "lt"):
        for i, value in enumerate(req.values):
            for problem in label_value_errors(value):
                raise bad_request(
                    f'unable to parse requirement: values[{i}][{req.key}]: Invalid value: "{value}": {problem}'
                )
    return req


@dataclass(frozen=True, slots=True)
class LabelSelector:
    requirements: tuple[Requirement, ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> LabelSelector:
        """Parse selector syntax; raises :class:`ApiError` (400) for malformed input."""
        if not text or not text.strip():
            return cls()
        return cls(tuple(_parse_requirement(part) for part in _split_top_level(text)))

    @property
    def empty(self) -> bool:
        return not self.requirements

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    def matches_object(self, obj: Mapping[str, Any]) -> bool:
        return not self.requirements or self.matches(obj.get("metadata", {}).get("labels"))


def _path(*keys: str) -> Callable[[Mapping[str, Any]], str]:
    def get(obj: Mapping[str, Any]) -> str:
        cur: Any = obj
        for key in keys:
            if not isinstance(cur, Mapping):
                return ""
            cur = cur.get(key)
        if cur is None:
            return ""
        if isinstance(cur, bool):
            return "true" if cur else "false"
        return str(cur)

    return get


_META = {"metadata.name": _path("metadata", "name"), "metadata.namespace": _path("metadata", "namespace")}
#: The fields each resource supports in fieldSelector (as in the real API server's field label conversions).
FIELDS: dict[str, dict[str, Callable[[Mapping[str, Any]], str]]] = {
    "pods": {
        **_META,
        "spec.nodeName": _path("spec", "nodeName"),
        "spec.restartPolicy": _path("spec", "restartPolicy"),
        "spec.schedulerName": _path("spec", "schedulerName"),
        "spec.serviceAccountName": _path("spec", "serviceAccountName"),
        "status.phase": _path("status", "phase"),
        "status.podIP": _path("status", "podIP"),
        "status.nominatedNodeName": _path("status", "nominatedNodeName"),
    },
    "nodes": {**_META, "spec.unschedulable": _path("spec", "unschedulable")},
    "events": {
        **_META,
        "involvedObject.kind": _path("involvedObject", "kind"),
        "involvedObject.name": _path("involvedObject", "name"),
        "involvedObject.namespace": _path("involvedObject", "namespace"),
        "involvedObject.uid": _path("involvedObject", "uid"),
        "reason": _path("reason"),
        "type": _path("type"),
        "source": _path("source", "component"),
    },
    "namespaces": {**_META, "status.phase": _path("status", "phase")},
}


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)


@dataclass(frozen=True, slots=True)
class FieldSelector:
    terms: tuple[tuple[Callable[[Mapping[str, Any]], str], bool, str], ...] = ()  # (getter, equal?, value)

    @classmethod
    def parse(cls, text: str | None, resource: str) -> FieldSelector:
        if not text or not text.strip():
            return cls()
        fields = FIELDS.get(resource, _META)
        terms = []
        for part in re.split(r"(?<!\\),", text):
            m = re.fullmatch(r"\s*([^=!\s]+)\s*(==|=|!=)(.*)", part)
            if m is None:
                raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
            getter = fields.get(m[1])
            if getter is None:
                raise ApiError(400, f"field label not supported: {m[1]}", "BadRequest")
            terms.append((getter, m[2] != "!=", _unescape(m[3].strip())))
        return cls(tuple(terms))

    @property
    def empty(self) -> bool:
        return not self.terms

    def matches_object(self, obj: Mapping[str, Any]) -> bool:
        return all((getter(obj) == value) is equal for getter, equal, value in self.terms)


@dataclass(frozen=True, slots=True)
class ObjectFilter:
    """Namespace + label selector + field selector, as applied to lists and watch events."""

    namespace: str | None = None
    labels: LabelSelector = LabelSelector()
    fields: FieldSelector = FieldSelector()

    @property
    def selects_everything_in_namespace(self) -> bool:
        return self.labels.empty and self.fields.empty

    def matches(self, obj: Mapping[str, Any]) -> bool:
        if self.namespace is not None and obj.get("metadata", {}).get("namespace", "") != self.namespace:
            return False
        return self.labels.matches_object(obj) and self.fields.matches_object(obj)
