"""Reading what the API server answered: JSON bodies checked for shape, and non-2xx answers as typed errors.

Every failure becomes a :class:`~airflow_k8s.executor.contract.errors.KubeApiError` subclass
(:func:`~airflow_k8s.executor.contract.errors.api_error`) carrying the HTTP status, the
Kubernetes Status ``reason`` and ``Retry-After``, so callers branch on types, not on text.

An answer that cannot be used - not JSON, an HTML page from a proxy, a JSON array where an object
belongs, a list without ``items`` - is a :class:`~airflow_k8s.executor.contract.errors.BadResponse`
whose message names the request (server included), the HTTP status and content type, what was
wrong and the first bytes of the body (escaped: a hostile body cannot forge log lines).  Nothing
here lets a ``ValueError``, ``AttributeError`` or ``RecursionError`` through.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from airflow_k8s.executor.contract import jsonfast
from airflow_k8s.executor.contract.errors import BadResponse, KubeApiError, api_error
from airflow_k8s.executor.kube.transport import Answer

_SHOWN = 80  # bytes of a bad body quoted in its error


def excerpt(data: bytes) -> str:
    """The start of a body, safe to log (escaped, bounded)."""
    shown = repr(data[:_SHOWN].decode("utf-8", errors="replace"))
    return shown + ("..." if len(data) > _SHOWN else "")


def json_value(answer: Answer, what: str, loads: Callable[[bytes], Any] = jsonfast.loads) -> Any:
    """The answer's JSON document (decoded by ``loads``); :class:`BadResponse` when it is not JSON."""
    content_type = answer.headers.get("content-type") or "no content type"
    if "json" not in content_type:
        raise BadResponse(
            f"{what}: HTTP {answer.status} answer is {content_type}, not JSON: {excerpt(answer.data)}",
            status=answer.status,
        )
    try:
        return loads(answer.data)
    except (ValueError, RecursionError) as exc:  # orjson / json decode errors are ValueErrors
        raise BadResponse(
            f"{what}: HTTP {answer.status} answer is not valid JSON ({exc}): {excerpt(answer.data)}",
            status=answer.status,
        ) from exc


def json_object(answer: Answer, what: str, loads: Callable[[bytes], Any] = jsonfast.loads) -> dict[str, Any]:
    """The answer as one JSON object (a pod, a list); :class:`BadResponse` for any other shape."""
    value = json_value(answer, what, loads)
    if not isinstance(value, dict):
        raise BadResponse(
            f"{what}: HTTP {answer.status} answer is a JSON {_kind(value)}, expected an object: {excerpt(answer.data)}",
            status=answer.status,
        )
    return value


def list_page(page: dict[str, Any], what: str, status: int = 200) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A list answer's ``items`` (objects) and ``metadata``; :class:`BadResponse` when either is malformed."""
    items = page.get("items")
    metadata = page.get("metadata")
    if items is None:
        items = []
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise BadResponse(f"{what}: list answer's items is not a list of objects", status=status)
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise BadResponse(f"{what}: list answer's metadata is a JSON {_kind(metadata)}, not an object", status=status)
    return items, metadata


def text(answer: Answer) -> str:
    """The answer as text (a log), whatever its bytes."""
    return answer.data.decode("utf-8", errors="replace")


def status_error(what: str, status: int, http_reason: str | None, retry_header: str | None, raw: bytes) -> KubeApiError:
    """Turn a non-2xx response into KubeApiError with the Status reason and Retry-After."""
    reason, message, body = "", "", None
    try:
        body = jsonfast.loads(raw)
    except (ValueError, RecursionError):
        body = None
    if isinstance(body, dict):
        reason = str(body.get("reason") or "") if isinstance(body.get("reason"), str) else ""
        message = str(body.get("message") or "") if isinstance(body.get("message"), str) else ""
    else:
        body = None
        message = excerpt(raw) if raw else ""
    retry_after = None
    if retry_header:
        try:
            retry_after = max(0.0, float(retry_header))
        except ValueError:
            retry_after = None
    return api_error(
        f"{what}: HTTP {status} {reason or http_reason}: {message}".rstrip(": "),
        status=status,
        reason=reason,
        retry_after=retry_after,
        body=body,
    )


def _kind(value: Any) -> str:
    return {list: "array", str: "string", bool: "boolean", type(None): "null", dict: "object"}.get(
        type(value), "number"
    )
