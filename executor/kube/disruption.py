"""When the API server was last seen disrupted, for the errors that follow a disruption.

Right after a kube-apiserver (re)starts, its RBAC authorizer has not yet loaded the Roles and
bindings, and for a moment (0.1-0.6 s measured on kube-apiserver 1.20) it refuses requests made
with perfectly valid credentials: ``403 pods is forbidden: User ... cannot create resource
"pods"``.  Managed clusters restart API servers on every upgrade.  Such a 403 is only worth
retrying when it follows a disruption, so the client records one whenever a call loses its
connection, misses its deadline or gets a 5xx, or finds that the server closed its idle keep-alive
connection (a restart closes them all), and the watcher whenever its watch restarts; the launcher
reads :meth:`Disruptions.recent` (see :func:`~airflow_k8s.executor.kube.retry.is_rbac_denial`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

WINDOW = 30.0


class Disruptions:
    """The time of the last disruption; reads and writes are single assignments (thread-safe enough)."""

    def __init__(self, window: float = WINDOW, clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self.clock = clock
        self.last = -math.inf
        self.cause = ""

    def note(self, cause: str) -> None:
        self.last = self.clock()
        self.cause = cause

    def recent(self) -> bool:
        """A disruption happened within the last ``window`` seconds."""
        return self.clock() - self.last <= self.window
