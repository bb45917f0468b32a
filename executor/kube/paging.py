"""Lists, page by page with ``limit`` / ``continue``.

A list is never asked for in one piece: each page holds at most ``page_size`` objects, so one
answer stays small however many objects match (and under the client's byte cap).

A ``continue`` token is only good while the list's resourceVersion is in etcd's history; after a
compaction the next page is refused with ``410 Gone``/``Expired``.  The list then starts again from
the first page, as client-go's pager does, at most :data:`RESTARTS` times; the pages read so far
are dropped, so the objects returned all come from one consistent snapshot.  A server that hands
back a ``continue`` token it already gave is an error (it would page for ever).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from airflow_k8s.executor.contract.errors import BadResponse, Gone
from airflow_k8s.executor.kube.decoding import list_page
from airflow_k8s.executor.kube.request import Query

log = logging.getLogger(__name__)
RESTARTS = 3

Fetch = Callable[[Query], dict[str, Any]]


@dataclass(frozen=True)
class PodList:
    items: list[dict[str, Any]]
    resource_version: str


def list_all(
    fetch: Fetch, *, what: str, label_selector: str | None = None, page_size: int = 500, restarts: int = RESTARTS
) -> PodList:
    """Every object of a list (following ``continue`` pages) and the list's resourceVersion.

    ``fetch`` gets one page's query and returns its answer (a JSON object); ``what`` names the list
    in errors and logs.
    """
    for attempt in range(restarts + 1):
        try:
            return _pages(fetch, what, label_selector, page_size)
        except _ContinueExpired as expired:
            if attempt == restarts:
                raise expired.gone from None
            log.info("%s: continue token expired (%s); listing again from the first page", what, expired.gone)
    raise AssertionError("unreachable")  # pragma: no cover


class _ContinueExpired(Exception):
    def __init__(self, gone: Gone) -> None:
        super().__init__(str(gone))
        self.gone = gone


def _pages(fetch: Fetch, what: str, label_selector: str | None, page_size: int) -> PodList:
    items: list[dict[str, Any]] = []
    token: str | None = None
    seen: set[str] = set()
    while True:
        query: list[tuple[str, Any]] = [("limit", page_size)]
        if label_selector:
            query.append(("labelSelector", label_selector))
        if token:
            query.append(("continue", token))
        try:
            page = fetch(query)
        except Gone as exc:
            if token:
                raise _ContinueExpired(exc) from exc
            raise
        page_items, metadata = list_page(page, what)
        items.extend(page_items)
        token = metadata.get("continue")
        if not token:
            return PodList(items, str(metadata.get("resourceVersion", "")))
        if not isinstance(token, str) or token in seen:
            raise BadResponse(f"{what}: the server's continue token repeats or is not a string: {token!r:.80}")
        seen.add(token)
