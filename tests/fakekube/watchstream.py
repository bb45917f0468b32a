"""Streaming one watch: selector filtering with label-transition events, bookmarks, timeout, expiry, drops.

Bookmarks (only with ``allowWatchBookmarks=true``) come every ``bookmark_interval`` seconds and, with
``bookmark_before_timeout``, once more 2 s before the watch's timeout -- the watch cache's schedule.  A bookmark is
held back while the watcher still has events queued, so it never claims a resourceVersion the client has not seen.

For a selector-filtered watch, a MODIFIED event is translated like the watch cache does: if the object starts to
match it is sent as ADDED, if it stops matching it is sent as DELETED (with the previous object content at the new
resourceVersion), and if it matches neither before nor after it is not sent.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from .errors import too_old_resource_version
from .routes import WatchResponse
from .selectors import ObjectFilter
from .store import Store
from .watchers import ADDED, DELETED, MODIFIED, WatchEvent, encode, event_line

_IDLE_POLL = 0.25  # how often an idle stream checks whether its client went away
_MAX_CHUNK = 256 * 1024


def render(event: WatchEvent, flt: ObjectFilter) -> bytes | None:
    """The line this watcher should receive for ``event`` (None: nothing)."""
    if flt.selects_everything_in_namespace:
        if flt.namespace is None or event.new.obj["metadata"].get("namespace", "") == flt.namespace:
            return event.line
        return None
    now_matches = flt.matches(event.new.obj)
    if event.type != MODIFIED or event.prev is None:
        return event.line if now_matches else None
    matched_before = flt.matches(event.prev.obj)
    if now_matches:
        return event.line if matched_before else event_line(ADDED, event.new.raw)
    if matched_before:
        obj = event.prev.copy()
        obj["metadata"]["resourceVersion"] = str(event.rv)
        return event_line(DELETED, encode(obj))
    return None


_NODE_INFO = [
    "machineID",
    "systemUUID",
    "bootID",
    "kernelVersion",
    "osImage",
    "containerRuntimeVersion",
    "kubeletVersion",
    "kubeProxyVersion",
    "operatingSystem",
    "architecture",
]
#: What Go's encoding/json adds to an empty object of each kind (non-omitempty fields, empty structs).
EMPTY_OBJECT_FIELDS: dict[str, dict[str, object]] = {
    "Pod": {"spec": {"containers": None}, "status": {}},
    "Node": {
        "spec": {},
        "status": {"daemonEndpoints": {"kubeletEndpoint": {"Port": 0}}, "nodeInfo": dict.fromkeys(_NODE_INFO, "")},
    },
    "Event": {
        "involvedObject": {},
        "source": {},
        "firstTimestamp": None,
        "lastTimestamp": None,
        "eventTime": None,
        "reportingComponent": "",
        "reportingInstance": "",
    },
    "ResourceQuota": {"spec": {}, "status": {}},
}
PRE_TIMEOUT_BOOKMARK = 2.0  # seconds before the watch's deadline


def bookmark_line(kind: str, api_version: str, rv: int, shape: str = "short") -> bytes:
    """``short``: kind, apiVersion and the resourceVersion.  ``apiserver``: the empty object the real server
    encodes, ``creationTimestamp: null`` and the kind's non-omitempty fields included."""
    meta: dict[str, object] = {"resourceVersion": str(rv)}
    obj: dict[str, object] = {"kind": kind, "apiVersion": api_version, "metadata": meta}
    if shape == "apiserver":
        meta["creationTimestamp"] = None
        obj.update(EMPTY_OBJECT_FIELDS.get(kind, {}))
    return event_line("BOOKMARK", encode(obj))


def _next_bookmark(now: float, resp: WatchResponse, deadline: float, pre_timeout_sent: bool) -> float:
    if not resp.bookmarks:
        return math.inf
    due = now + resp.bookmark_interval
    if resp.bookmark_before_timeout and not pre_timeout_sent and now < deadline - PRE_TIMEOUT_BOOKMARK:
        due = min(due, deadline - PRE_TIMEOUT_BOOKMARK)
    return due


def stream_watch(
    resp: WatchResponse,
    store: Store,
    write: Callable[[bytes], None],
    client_gone: Callable[[], bool],
) -> str:
    """Write events until the watch ends; returns why: timeout | expired | closed | dropped | client-gone.

    ``write`` sends one chunk (and may raise ``OSError`` if the client vanished).
    """
    if resp.expired is not None:
        write(event_line("ERROR", resp.expired.body()))
        return "expired"
    watcher = resp.watcher
    assert watcher is not None
    flt = resp.filter
    start = time.monotonic()
    deadline = start + resp.timeout
    next_bookmark = _next_bookmark(start, resp, deadline, False)
    pre_timeout_sent = False
    try:
        while True:
            now = time.monotonic()
            if now >= deadline:
                return "timeout"
            events = watcher.take(max(0.0, min(deadline, next_bookmark, now + _IDLE_POLL) - now))
            if watcher.dropped:
                return "dropped"
            if events:
                out: list[bytes] = []
                size = 0
                for event in events:
                    line = render(event, flt)
                    if line is not None:
                        out.append(line)
                        size += len(line)
                        if size >= _MAX_CHUNK:
                            write(b"".join(out))
                            out, size = [], 0
                if out:
                    write(b"".join(out))
            if watcher.expired:
                error = too_old_resource_version(watcher.last_rv, store.rv)
                write(event_line("ERROR", error.body()))
                return "expired"
            if watcher.closed:
                return "closed"
            now = time.monotonic()
            if now >= next_bookmark:
                rv = store.bookmark_rv(watcher)
                if rv is not None:
                    write(bookmark_line(resp.kind, resp.api_version, rv, resp.bookmark_shape))
                    pre_timeout_sent = pre_timeout_sent or now >= deadline - PRE_TIMEOUT_BOOKMARK
                next_bookmark = _next_bookmark(now, resp, deadline, pre_timeout_sent)
            if not events and client_gone():
                return "client-gone"
    finally:
        store.unsubscribe(watcher)
