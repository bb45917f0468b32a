"""LIST and WATCH for any stored kind: selectors, ``limit``/``continue`` pagination, watch setup.

Pagination returns items in (namespace, name) order; the ``continue`` token records the list's resourceVersion and
the last key, and every page reports the first page's resourceVersion.  Pages are read from the *current* state
(unlike etcd's snapshot reads), but no object is ever returned twice and none that existed throughout is skipped.
A token older than the last :meth:`Store.compact` is answered 410 Expired, as when etcd has compacted it.
``remainingItemCount`` is set only for unfiltered lists, as the real server does.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import json
from typing import Any

from .config import ClusterConfig
from .errors import ApiError, bad_request, expired
from .routes import Request, Response, WatchResponse
from .selectors import FieldSelector, LabelSelector, ObjectFilter
from .store import Store
from .watchers import ResourceExpired


def object_filter(req: Request, resource: str, namespace: str | None) -> ObjectFilter:
    return ObjectFilter(
        namespace,
        LabelSelector.parse(req.query.get("labelSelector")),
        FieldSelector.parse(req.query.get("fieldSelector"), resource),
    )


def _encode_token(rv: int, key: tuple[str, str]) -> str:
    raw = json.dumps({"v": "fakekube/v1", "rv": rv, "start": list(key)}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str) -> tuple[int, tuple[str, str]]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        return int(data["rv"]), (str(data["start"][0]), str(data["start"][1]))
    except (ValueError, KeyError, IndexError, TypeError, binascii.Error) as exc:
        raise bad_request(f"continue key is not valid: {exc}") from exc


def list_objects(store: Store, req: Request, resource: str, list_kind: str, namespace: str | None) -> Response:
    flt = object_filter(req, resource, namespace)
    limit = req.int_param("limit") or 0
    token = req.query.get("continue")
    items, rv = store.snapshot(resource, namespace)
    start = 0
    if token:
        list_rv, after = _decode_token(token)
        if list_rv < store.compacted_rv:
            raise expired(
                "The provided continue parameter is too old to display a consistent list result. You can start a new "
                "list without the continue parameter."
            )
        keys = [(s.obj["metadata"].get("namespace", ""), s.obj["metadata"]["name"]) for s in items]
        start = bisect.bisect_right(keys, after)
        rv = list_rv
    candidates = items[start:]
    remaining = 0
    if flt.selects_everything_in_namespace:
        selected = candidates[:limit] if limit else candidates
        remaining = len(candidates) - len(selected)
        more = remaining > 0
    else:
        selected, more = [], False
        for stored in candidates:
            if flt.matches(stored.obj):
                if limit and len(selected) >= limit:
                    more = True
                    break
                selected.append(stored)
    meta: dict[str, Any] = {"resourceVersion": str(rv)}
    if more and selected:
        last = selected[-1].obj["metadata"]
        meta["continue"] = _encode_token(rv, (last.get("namespace", ""), last["name"]))
        if remaining:
            meta["remainingItemCount"] = remaining
    head = json.dumps({"kind": list_kind, "apiVersion": "v1", "metadata": meta}, separators=(",", ":")).encode()
    body = head[:-1] + b',"items":[' + b",".join(s.raw for s in selected) + b"]}"
    return Response(200, body)


def start_watch(
    store: Store, config: ClusterConfig, req: Request, resource: str, kind: str, namespace: str | None
) -> WatchResponse:
    flt = object_filter(req, resource, namespace)
    rv = req.query.get("resourceVersion") or ""
    if rv and not rv.isdigit():
        raise bad_request(f'resourceVersion: Invalid value: "{rv}": must be a non-negative integer')
    timeout = req.int_param("timeoutSeconds")
    common: dict[str, Any] = {
        "filter": flt,
        "timeout": float(timeout) if timeout and timeout > 0 else config.default_watch_timeout,
        "bookmarks": req.flag("allowWatchBookmarks"),
        "bookmark_interval": config.bookmark_interval,
        "bookmark_shape": config.bookmark_shape,
        "bookmark_before_timeout": config.bookmark_before_timeout,
        "kind": kind,
        "api_version": "v1",
    }
    try:
        watcher = store.watch(resource, namespace, rv)
    except ResourceExpired as exc:
        return WatchResponse(watcher=None, expired=exc.error, **common)
    return WatchResponse(watcher=watcher, **common)


def list_or_watch(
    store: Store, config: ClusterConfig, req: Request, resource: str, kind: str, namespace: str | None
) -> Response | WatchResponse:
    if req.flag("watch"):
        return start_watch(store, config, req, resource, kind, namespace)
    return list_objects(store, req, resource, f"{kind}List", namespace)


def not_supported(message: str) -> ApiError:
    return ApiError(405, message, "MethodNotAllowed")
