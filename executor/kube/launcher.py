"""Pod creation workers: rate-limited, concurrent, idempotent.

``workers`` threads take jobs from a priority queue (task pods before placeholders), take a
token from the shared bucket (``worker_pods_creation_qps`` / ``_burst``), build the pod and
create it, retrying 429/5xx/connection errors until the task's ``pod_creation_timeout``.  Many
creates are in flight at once - Airflow's default of one create per scheduler loop is what made
1,000 tasks take over 1,000 s - yet the API server never sees more than the configured rate.

Because pod names are deterministic, a retry after a lost response gets ``409 AlreadyExists``;
the worker then reads the pod and compares its task-key annotations: the same key means the
first attempt succeeded (adopt it), another key is a hard ``NameConflict`` error.
Outcomes go back to the engine's inbox; the engine owns all task state.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from airflow_k8s.executor.contract.errors import ExecutorError, KubeApiError, PodPolicyError
from airflow_k8s.executor.kube.client import KubeClient
from airflow_k8s.executor.kube.retry import RetryPolicy, RetryTimeout, TokenBucket, call_with_retry
from airflow_k8s.executor.tasks import identity
from airflow_k8s.executor.tasks.task import Task

log = logging.getLogger(__name__)
TASK_PRIORITY = 0
PLACEHOLDER_PRIORITY = 1


@dataclass(frozen=True)
class LaunchJob:
    """Create one pod.  ``build`` makes the manifest in the worker (CPU spread off the loop)."""

    name: str
    build: Callable[[], dict[str, Any]]
    task: Task | None  # None for placeholders
    deadline: float  # monotonic


class Launcher:
    def __init__(
        self,
        kube: KubeClient,
        namespace: str,
        *,
        workers: int,
        bucket: TokenBucket,
        post: Callable[..., None],
        on_api_error: Callable[[int, str], None],
        policy: RetryPolicy | None = None,
    ) -> None:
        self.kube = kube
        self.namespace = namespace
        self.bucket = bucket
        self.post = post
        self.on_api_error = on_api_error
        self.policy = policy or RetryPolicy()
        self._queue: queue.PriorityQueue[tuple[int, int, LaunchJob | None]] = queue.PriorityQueue()
        self._seq = itertools.count()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._work, name=f"pod-launcher-{i}", daemon=True) for i in range(workers)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        for _ in self._threads:
            self._queue.put((-1, next(self._seq), None))
        for thread in self._threads:
            thread.join(timeout)

    def submit(self, job: LaunchJob, priority: int = TASK_PRIORITY) -> None:
        self._queue.put((priority, next(self._seq), job))

    def _work(self) -> None:
        while True:
            _, _, job = self._queue.get()
            if job is None or self._stop.is_set():
                return
            if not self.bucket.acquire(self._stop):
                return
            try:
                self._launch(job)
            except Exception as exc:  # never let one job kill a worker thread
                log.exception("launcher crashed on %s", job.name)
                self.post("launch_failed", job.name, "InternalError", f"{type(exc).__name__}: {exc}")

    def _retry(self, fn: Callable[[], Any], job: LaunchJob, verb: str) -> Any:
        def on_retry(error: KubeApiError, wait: float) -> None:
            self.on_api_error(error.status, verb)
            log.info("retrying %s of %s in %.2fs after %s", verb, job.name, wait, error)

        return call_with_retry(
            fn,
            policy=self.policy,
            deadline=job.deadline,
            sleep=self._stop.wait,
            on_retry=on_retry,
            what=f"{verb} {job.name}",
        )

    def _launch(self, job: LaunchJob) -> None:
        try:
            pod = job.build()
        except PodPolicyError as exc:
            self.post("launch_failed", job.name, "PolicyViolation", str(exc))
            return
        except ExecutorError as exc:
            self.post("launch_failed", job.name, "InvalidTask", str(exc))
            return
        try:
            created = self._retry(lambda: self.kube.create_pod(self.namespace, pod), job, "create")
        except RetryTimeout as exc:
            self.on_api_error(exc.status, "create")
            self.post("launch_failed", job.name, "CreationTimeout", str(exc))
            return
        except KubeApiError as exc:
            if self._stop.is_set():
                return
            self.on_api_error(exc.status, "create")
            if exc.status == 409:
                self._already_exists(job)
                return
            reason = {403: "Forbidden", 422: "Invalid"}.get(exc.status, f"ApiError{exc.status}")
            self.post("launch_failed", job.name, reason, str(exc))
            return
        self.post("launched", job.name, created)

    def _already_exists(self, job: LaunchJob) -> None:
        try:
            existing = self._retry(lambda: self.kube.get_pod(self.namespace, job.name), job, "get")
        except KubeApiError as exc:
            if exc.status == 404:  # deleted between our create and get: let the engine retry later
                self.post("launch_failed", job.name, "CreationTimeout", f"pod {job.name} vanished after 409: {exc}")
            else:
                self.post("launch_failed", job.name, "CreationTimeout", str(exc))
            return
        annotations = (existing.get("metadata") or {}).get("annotations")
        if job.task is None or identity.key_from_annotations(annotations) == job.task.key:
            self.post("launched", job.name, existing)
            return
        owner = identity.key_from_annotations(annotations)
        self.post(
            "launch_failed",
            job.name,
            "NameConflict",
            f"pod {job.name} already exists for another task ({owner or 'no task annotations'})",
        )
