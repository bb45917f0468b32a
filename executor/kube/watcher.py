"""One list-then-watch loop over the executor's pods, resilient to every way a watch breaks.

Protocol (the informer pattern of client-go, reduced to what the executor needs):

1. LIST the pods of this executor instance (paginated) and hand the full set to ``on_relist``
   together with the list's resourceVersion; the engine reconciles its state against it.
2. WATCH from that resourceVersion with bookmarks.  Each event goes to ``on_event`` and advances
   the resourceVersion; BOOKMARK events only advance it (they arrive as raw dicts).
3. When the server ends the watch (``timeoutSeconds``), watch again from the last version: no
   event is missed and none is repeated.
4. On ``410 Gone`` / ``Expired`` (the version was compacted away) go back to 1.  A relist makes
   the engine's view whole again; handlers are idempotent, so objects seen twice are harmless.
5. On connection errors, 429 and 5xx, back off exponentially (capped) and retry; if the version
   survives, the watch resumes where it left off, otherwise 410 sends us to 1.
6. An answer that cannot be used (``BadResponse``: an event over ``kube_max_response_mib``, one
   that is not JSON or not an event, a list page of the wrong shape) ends the watch with a logged
   reason; an event may have been lost, so after the backoff we go back to 1.

Every restart but a refusal (4xx other than 410) is recorded as a disruption of the API server
(:mod:`~airflow_k8s.executor.kube.disruption`): RBAC denials that follow one are retried.

:meth:`Watcher.stop` closes the open watch: a real server's watch may be silent for most of its
``timeoutSeconds`` (bookmarks come about once a minute), and a stop must not wait for it.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from typing import Any

from airflow_k8s.executor.contract.errors import BadResponse, Gone, KubeApiError, api_error
from airflow_k8s.executor.kube.client import KubeClient
from airflow_k8s.executor.kube.watchstream import WatchStream

log = logging.getLogger(__name__)

EventHandler = Callable[[str, dict[str, Any]], None]
RelistHandler = Callable[[list[dict[str, Any]], str], None]


class Watcher:
    def __init__(
        self,
        kube: KubeClient,
        namespace: str | None,
        label_selector: str,
        *,
        on_event: EventHandler,
        on_relist: RelistHandler,
        on_restart: Callable[[str], None] | None = None,
        timeout_seconds: int = 300,
        read_timeout: float = 360.0,
        max_backoff: float = 30.0,
    ) -> None:
        self.kube = kube
        self.namespace = namespace
        self.selector = label_selector
        self.on_event = on_event
        self.on_relist = on_relist
        self.on_restart = on_restart or (lambda reason: None)
        self.timeout_seconds = timeout_seconds
        self.read_timeout = read_timeout
        self.max_backoff = max_backoff
        self.resource_version: str | None = None
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._stream: WatchStream | None = None
        self._failures = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="pod-watcher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        stream = self._stream
        if stream is not None:
            stream.close()  # a quiet watch would otherwise hold the thread until its next event
        if self._thread is not None:
            self._thread.join(timeout)

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                if self.resource_version is None:
                    self._relist()
                self._watch_once()
                self._failures = 0
            except KubeApiError as error:
                self.connected.clear()
                if self._stop.is_set():
                    return
                if isinstance(error, Gone) or error.status == 0 or error.status >= 500:
                    self.kube.disruptions.note("watch restart")
                if isinstance(error, Gone):
                    log.info("watch expired, relisting", extra={"event": "watch_expired"})
                    self.resource_version = None
                    self.on_restart("expired")
                    continue
                self._failures += 1
                delay = min(self.max_backoff, 0.2 * 2 ** min(self._failures, 10)) * (0.5 + random.random() / 2)  # noqa: S311
                if error.retry_after is not None:
                    delay = min(max(delay, error.retry_after), 60.0)
                if isinstance(error, BadResponse):
                    self.resource_version = None  # an event may be lost: the relist makes the view whole
                    self.on_restart("bad_response")
                    log.warning(
                        "watch ended: %s; relisting in %.1fs", error, delay, extra={"event": "watch_bad_response"}
                    )
                else:
                    self.on_restart("error")
                    log.warning("watch failed (%s); retrying in %.1fs", error, delay, extra={"event": "watch_error"})
                self._stop.wait(delay)

    def _relist(self) -> None:
        listing = self.kube.list_pods(self.namespace, label_selector=self.selector)
        self.on_relist(listing.items, listing.resource_version)
        self.resource_version = listing.resource_version

    def _watch_once(self) -> None:
        assert self.resource_version is not None
        events = self.kube.watch_pods(
            self.namespace,
            label_selector=self.selector,
            resource_version=self.resource_version,
            timeout_seconds=self.timeout_seconds,
            read_timeout=self.read_timeout,
            slim=True,
        )
        self._stream = events
        if self._stop.is_set():  # stop() ran while the watch was being opened
            events.close()
        self.connected.set()
        for event in events:
            if self._stop.is_set():
                return
            kind, obj = event["type"], event["object"]  # the stream checked both
            if kind == "ERROR":
                code = obj.get("code") if isinstance(obj.get("code"), int) else 0
                reason = obj.get("reason") if isinstance(obj.get("reason"), str) else ""
                raise api_error(f"watch error: {str(obj.get('message'))[:500]}", status=code, reason=reason)
            metadata = obj.get("metadata")
            if not isinstance(metadata, dict):
                raise BadResponse(f"watch {self.selector}: a {kind} event's object has no metadata object", status=200)
            version = metadata.get("resourceVersion")
            if kind != "BOOKMARK":
                self.on_event(str(kind), obj)
            if version:
                self.resource_version = str(version)
        # A clean end of stream (server-side timeout): resume from the last version.
