"""Object validation with the real API server's rules and wording (the subset pods and labels need).

Messages match apimachinery's so a client that surfaces ``Status.message`` shows what a cluster would.
"""

from __future__ import annotations

import re
from typing import Any

from .errors import Cause
from .quantity import QUANTITY_REGEX_TEXT, is_quantity, parse_quantity

_SUBDOMAIN_FMT = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_LABEL_FMT = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_QUALIFIED_NAME_FMT = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_SUBDOMAIN = re.compile(_SUBDOMAIN_FMT)
_LABEL = re.compile(_LABEL_FMT)
_QUALIFIED_NAME = re.compile(_QUALIFIED_NAME_FMT)

SUBDOMAIN_MESSAGE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start "
    f"and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '{_SUBDOMAIN_FMT}')"
)
LABEL_MESSAGE = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end "
    f"with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '{_LABEL_FMT}')"
)
_NAME_PART_MESSAGE = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
    f"character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '{_QUALIFIED_NAME_FMT}')"
)
_LABEL_VALUE_MESSAGE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and "
    "end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is "
    f"'({_QUALIFIED_NAME_FMT})?')"
)
MAX_ANNOTATIONS_BYTES = 256 * 1024


def subdomain_errors(value: str) -> list[str]:
    errors = []
    if len(value) > 253:
        errors.append("must be no more than 253 characters")
    if not _SUBDOMAIN.fullmatch(value):
        errors.append(SUBDOMAIN_MESSAGE)
    return errors


def dns_label_errors(value: str) -> list[str]:
    errors = []
    if len(value) > 63:
        errors.append("must be no more than 63 characters")
    if not _LABEL.fullmatch(value):
        errors.append(LABEL_MESSAGE)
    return errors


def qualified_name_errors(key: str) -> list[str]:
    """Label/annotation key rules: optional DNS-subdomain prefix, ``/``, then a <=63 character name part."""
    prefix, slash, name = key.rpartition("/")
    errors = []
    if slash and (not prefix or subdomain_errors(prefix)):
        errors.append("prefix part " + SUBDOMAIN_MESSAGE)
    if not name:
        errors.append("name part must be non-empty")
    elif len(name) > 63:
        errors.append("name part must be no more than 63 characters")
    elif not _QUALIFIED_NAME.fullmatch(name):
        errors.append(_NAME_PART_MESSAGE)
    return errors


def label_value_errors(value: str) -> list[str]:
    errors = []
    if len(value) > 63:
        errors.append("must be no more than 63 characters")
    if value and not _QUALIFIED_NAME.fullmatch(value):
        errors.append(_LABEL_VALUE_MESSAGE)
    return errors


def _invalid(field: str, value: Any, detail: str) -> Cause:
    return Cause(field, "FieldValueInvalid", f"Invalid value: {_quote(value)}: {detail}")


def _required(field: str) -> Cause:
    return Cause(field, "FieldValueRequired", "Required value")


def _quote(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else str(value)


def validate_metadata(meta: dict[str, Any], *, namespaced: bool = True) -> list[Cause]:
    causes: list[Cause] = []
    name = meta.get("name")
    if not name:
        causes.append(Cause("metadata.name", "FieldValueRequired", "Required value: name or generateName is required"))
    elif not isinstance(name, str):
        causes.append(_invalid("metadata.name", name, "must be a string"))
    else:
        causes.extend(_invalid("metadata.name", name, e) for e in subdomain_errors(name))
    if namespaced and isinstance(meta.get("namespace"), str):
        causes.extend(_invalid("metadata.namespace", meta["namespace"], e) for e in dns_label_errors(meta["namespace"]))
    labels = meta.get("labels") or {}
    if not isinstance(labels, dict):
        return [*causes, _invalid("metadata.labels", labels, "must be an object")]
    for key, value in labels.items():
        causes.extend(_invalid("metadata.labels", key, e) for e in qualified_name_errors(key))
        if not isinstance(value, str):
            causes.append(_invalid(f"metadata.labels[{key}]", value, "must be a string"))
        else:
            causes.extend(_invalid("metadata.labels", value, e) for e in label_value_errors(value))
    annotations = meta.get("annotations") or {}
    if not isinstance(annotations, dict):
        return [*causes, _invalid("metadata.annotations", annotations, "must be an object")]
    size = 0
    for key, value in annotations.items():
        causes.extend(_invalid("metadata.annotations", key, e.lower()) for e in qualified_name_errors(key.lower()))
        if not isinstance(value, str):
            causes.append(_invalid(f"metadata.annotations[{key}]", value, "must be a string"))
        else:
            size += len(key) + len(value)
    if size > MAX_ANNOTATIONS_BYTES:
        causes.append(Cause("metadata.annotations", "FieldValueTooLong", f"Too long: must have at most {size} bytes"))
    return causes


def _validate_resources(field: str, resources: dict[str, Any]) -> list[Cause]:
    causes: list[Cause] = []
    parsed: dict[str, dict[str, Any]] = {}
    for section in ("requests", "limits"):
        for res, qty in (resources.get(section) or {}).items():
            if not is_quantity(qty):
                detail = f"quantities must match the regular expression '{QUANTITY_REGEX_TEXT}'"
                causes.append(_invalid(f"{field}.{section}[{res}]", qty, detail))
            else:
                parsed.setdefault(section, {})[res] = qty
    for res, qty in parsed.get("requests", {}).items():
        limit = parsed.get("limits", {}).get(res)
        if limit is not None and parse_quantity(qty) > parse_quantity(limit):
            causes.append(_invalid(f"{field}.requests", qty, f"must be less than or equal to {res} limit of {limit}"))
    return causes


def validate_pod(pod: dict[str, Any]) -> list[Cause]:
    """The validation a pod create/update goes through; returns every failure (empty list: valid)."""
    causes = validate_metadata(pod.get("metadata") or {})
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        return [*causes, _required("spec.containers")]
    containers = spec.get("containers")
    if not containers or not isinstance(containers, list):
        causes.append(_required("spec.containers"))
        containers = []
    seen: set[str] = set()
    for section, items in (("containers", containers), ("initContainers", spec.get("initContainers") or [])):
        for i, container in enumerate(items):
            field = f"spec.{section}[{i}]"
            if not isinstance(container, dict):
                causes.append(_invalid(field, container, "must be an object"))
                continue
            name = container.get("name")
            if not name:
                causes.append(_required(f"{field}.name"))
            else:
                causes.extend(_invalid(f"{field}.name", name, e) for e in dns_label_errors(str(name)))
                if name in seen:
                    causes.append(Cause(f"{field}.name", "FieldValueDuplicate", f'Duplicate value: "{name}"'))
                seen.add(name)
            if not container.get("image"):
                causes.append(_required(f"{field}.image"))
            causes.extend(_validate_resources(f"{field}.resources", container.get("resources") or {}))
    policy = spec.get("restartPolicy")
    if policy is not None and policy not in ("Always", "OnFailure", "Never"):
        causes.append(
            Cause(
                "spec.restartPolicy",
                "FieldValueNotSupported",
                f'Unsupported value: "{policy}": supported values: "Always", "OnFailure", "Never"',
            )
        )
    return causes
