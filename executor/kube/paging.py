"""Lists, page by page with ``limit`` / ``continue``.

A list is never asked for in one piece: each page holds at most ``page_size`` objects, so one
answer stays small however many objects match.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from airflow_k8s.executor.kube.request import Query

Fetch = Callable[[Query], Any]


@dataclass(frozen=True)
class PodList:
    items: list[dict[str, Any]]
    resource_version: str


def list_all(fetch: Fetch, *, label_selector: str | None = None, page_size: int = 500) -> PodList:
    """Every object of a list (following ``continue`` pages) and the list's resourceVersion.

    ``fetch`` gets one page's query and returns its decoded answer.
    """
    items: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        query: list[tuple[str, Any]] = [("limit", page_size)]
        if label_selector:
            query.append(("labelSelector", label_selector))
        if token:
            query.append(("continue", token))
        page = fetch(query)
        items.extend(page.get("items") or [])
        metadata = page.get("metadata") or {}
        token = metadata.get("continue")
        if not token:
            return PodList(items, str(metadata.get("resourceVersion", "")))
