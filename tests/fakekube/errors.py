"""Kubernetes ``Status`` bodies and the exception that carries them through the fake API server.

Every error the fake returns is a ``{"kind": "Status", "apiVersion": "v1", "status": "Failure", ...}`` body shaped
like the real kube-apiserver's, so client code that parses ``reason``/``code``/``details`` sees what it would in a
cluster.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

#: The ``reason`` the real API server uses for each status code when nothing more specific applies.
DEFAULT_REASONS: dict[int, str] = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


@dataclass(frozen=True)
class Cause:
    """One field-level validation failure (``details.causes[]`` of an ``Invalid`` Status)."""

    field: str
    reason: str  # FieldValueInvalid | FieldValueRequired | FieldValueDuplicate | FieldValueNotSupported
    message: str  # e.g. 'Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain ...'

    def describe(self) -> str:
        return f"{self.field}: {self.message}"


class ApiError(Exception):
    """An error response: HTTP ``code`` plus the Status body the real API server would send."""

    def __init__(
        self,
        code: int,
        message: str,
        reason: str | None = None,
        *,
        details: dict[str, Any] | None = None,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason or DEFAULT_REASONS.get(code, "Unknown")
        self.details = details
        self.headers = headers

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        }
        if self.details is not None:
            body["details"] = self.details
        body["code"] = self.code
        return body

    def body(self) -> bytes:
        return json.dumps(self.status(), separators=(",", ":")).encode()


def not_found(resource: str, name: str, group: str = "") -> ApiError:
    details: dict[str, Any] = {"name": name, "kind": resource}
    if group:
        details["group"] = group
    return ApiError(404, f'{resource} "{name}" not found', "NotFound", details=details)


def path_not_found() -> ApiError:
    """What the server says for a URL it does not serve at all (also the aggregator's answer for an absent API)."""
    return ApiError(404, "the server could not find the requested resource", "NotFound", details={})


def already_exists(resource: str, name: str) -> ApiError:
    return ApiError(
        409, f'{resource} "{name}" already exists', "AlreadyExists", details={"name": name, "kind": resource}
    )


def conflict(resource: str, name: str, why: str) -> ApiError:
    return ApiError(
        409,
        f'Operation cannot be fulfilled on {resource} "{name}": {why}',
        "Conflict",
        details={"name": name, "kind": resource},
    )


def stale_conflict(resource: str, name: str) -> ApiError:
    return conflict(
        resource, name, "the object has been modified; please apply your changes to the latest version and try again"
    )


def invalid(kind: str, name: str, causes: list[Cause]) -> ApiError:
    """422 Invalid, message formatted like apimachinery's ``NewInvalid``."""
    described = [c.describe() for c in causes]
    summary = described[0] if len(described) == 1 else "[" + ", ".join(described) + "]"
    return ApiError(
        422,
        f'{kind} "{name}" is invalid: {summary}',
        "Invalid",
        details={
            "name": name,
            "kind": kind,
            "causes": [{"reason": c.reason, "message": c.message, "field": c.field} for c in causes],
        },
    )


def forbidden(resource: str, name: str, why: str) -> ApiError:
    return ApiError(
        403, f'{resource} "{name}" is forbidden: {why}', "Forbidden", details={"name": name, "kind": resource}
    )


def bad_request(message: str) -> ApiError:
    return ApiError(400, message, "BadRequest")


def expired(message: str) -> ApiError:
    return ApiError(410, message, "Expired")


def too_old_resource_version(requested: int, oldest: int) -> ApiError:
    """The Status a watch from a compacted resourceVersion receives (inside an ERROR event, HTTP 200)."""
    return ApiError(410, f"too old resource version: {requested} ({oldest})", "Expired")
