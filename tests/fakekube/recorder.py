"""Writes the Event objects the simulation emits, keeping at most ``max_events`` of them (oldest pruned)."""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Callable

from . import lifecycle
from .config import ClusterConfig
from .errors import ApiError
from .scheduler import PodState
from .store import Store


class EventRecorder:
    def __init__(self, store: Store, config: Callable[[], ClusterConfig]) -> None:
        self.store = store
        self._config = config
        self._event_keys: deque[tuple[str, str]] = deque()

    def emit(
        self, state: PodState, reason: str, message: str, *, warning: bool = False, component: str = "kubelet"
    ) -> None:
        """Record ``reason``/``message`` about the pod (a no-op when ``emit_events`` is off)."""
        config = self._config()
        if not config.emit_events:
            return
        stored = self.store.get("pods", state.namespace, state.name)
        involved = (
            stored.obj
            if stored is not None and stored.uid == state.uid
            else {
                "kind": "Pod",
                "metadata": {"name": state.name, "namespace": state.namespace, "uid": state.uid},
            }
        )
        event = self.store.create(
            "events", lifecycle.event_object(involved, reason, message, warning=warning, component=component)
        )
        self._event_keys.append((state.namespace, event.obj["metadata"]["name"]))
        while len(self._event_keys) > config.max_events:
            ns, name = self._event_keys.popleft()
            with contextlib.suppress(ApiError):
                self.store.delete("events", ns, name)
