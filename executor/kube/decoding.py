"""Reading what the API server answered: JSON bodies, and non-2xx answers as typed errors.

Every failure becomes a :class:`~airflow_k8s.executor.contract.errors.KubeApiError` subclass
(:func:`~airflow_k8s.executor.contract.errors.api_error`) carrying the HTTP status, the
Kubernetes Status ``reason`` and ``Retry-After``, so callers branch on types, not on text.
"""

from __future__ import annotations

from typing import Any

from airflow_k8s.executor.contract import jsonfast
from airflow_k8s.executor.contract.errors import KubeApiError, api_error


def decoded(data: bytes, content_type: str | None, decode: bool) -> Any:
    """The answer's JSON (or text when it is not JSON); None when the caller only needs success."""
    if not decode:  # the caller only needs success (DELETE answers with the whole object)
        return None
    if "json" not in (content_type or ""):
        return data.decode("utf-8", errors="replace")
    return jsonfast.loads(data)


def status_error(what: str, status: int, http_reason: str | None, retry_header: str | None, raw: bytes) -> KubeApiError:
    """Turn a non-2xx response into KubeApiError with the Status reason and Retry-After."""
    reason, message, body = "", "", None
    try:
        body = jsonfast.loads(raw)
        reason = body.get("reason") or ""
        message = body.get("message") or ""
    except (ValueError, AttributeError):
        message = raw[:200].decode("utf-8", errors="replace")
    retry_after = None
    header = retry_header
    if header:
        try:
            retry_after = max(0.0, float(header))
        except ValueError:
            retry_after = None
    return api_error(
        f"{what}: HTTP {status} {reason or http_reason}: {message}".rstrip(": "),
        status=status,
        reason=reason,
        retry_after=retry_after,
        body=body,
    )
