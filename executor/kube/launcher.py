"""Pod creation workers: concurrent, flow-controlled, idempotent.

``workers`` threads take jobs from a priority queue (task pods before placeholders), build the
pod and create it in the namespace the pod names, retrying 429/5xx/connection errors and 409
``Conflict`` (a race on a ResourceQuota: nothing was created) until the job's deadline.  Every
request passes the engine's :class:`~airflow_k8s.executor.kube.flowcontrol.FlowControl` gate:
unpaced while the API server keeps up, held and paced when it pushes back (429, rising latency,
5xx), and never above an operator's explicit ``worker_pods_creation_qps``.  Many creates are in
flight at once - Airflow's default of one create per scheduler loop is what made 1,000 tasks
take over 1,000 s.

Because pod names are deterministic, a retry after a lost response gets ``409 AlreadyExists``;
only that reason means a pod of that name exists.  The worker then reads it and compares its
task-key annotations: the same key means the first attempt succeeded (adopt it); the same key on
a pod that is being deleted (a revoked or relaunched try) means wait for it to go and create
again; for a relaunch (``replace``) a finished pod of the same task is deleted first, and so is a
pod of the same key but another Airflow task instance id (a cleared and re-queued task instance);
another key is a hard ``NameConflict``.  An RBAC 403 within the disruption window of the client
(a lost connection, a 5xx or a watch restart shortly before: a restarted API server whose
authorizer has not synced yet) is retried with backoff until the window closes; after it, or with
no disruption, it fails the task at once.  A ResourceQuota refusal is reported as such
(``quota=True``): the engine treats it as backpressure.  Outcomes go to a
:class:`LaunchListener`; the engine owns all task state.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from airflow_k8s.executor.contract.errors import (
    AlreadyExists,
    ExecutorError,
    KubeApiError,
    NotFound,
    PodPolicyError,
    QuotaExceeded,
)
from airflow_k8s.executor.kube.client import KubeClient
from airflow_k8s.executor.kube.flowcontrol import FlowControl
from airflow_k8s.executor.kube.retry import RetryPolicy, RetryTimeout, call_with_retry, is_rbac_denial
from airflow_k8s.executor.tasks import identity
from airflow_k8s.executor.tasks.key import TaskKey

log = logging.getLogger(__name__)
TASK_PRIORITY = 0
PLACEHOLDER_PRIORITY = 1


@dataclass(frozen=True)
class LaunchJob:
    """Create one pod.  ``build`` makes the manifest in the worker (CPU spread off the loop)."""

    name: str
    build: Callable[[], dict[str, Any]]
    key: TaskKey | None  # None for placeholders
    deadline: float  # monotonic
    replace: bool = False  # a relaunch: a finished pod of the same task is deleted, then created anew
    ti_id: str | None = None  # Airflow's task instance id: a pod of another one is superseded


class LaunchListener(Protocol):
    """Where a launcher reports each job's outcome (the engine posts them to its inbox)."""

    def launched(self, name: str, pod: dict[str, Any]) -> None: ...

    def launch_failed(
        self, name: str, reason: str, message: str, *, namespace: str | None = None, quota: bool = False
    ) -> None: ...


class _Terminating(KubeApiError):
    """The pod of this name is being deleted: retry the create once it is gone."""


class NameConflict(ExecutorError):
    """A pod of this name exists for another task: retrying cannot help."""


class Launcher:
    def __init__(
        self,
        kube: KubeClient,
        *,
        workers: int,
        flow: FlowControl,
        listener: LaunchListener,
        on_api_error: Callable[[int, str], None],
        policy: RetryPolicy | None = None,
        seen: Callable[[str], bool] = lambda name: False,
    ) -> None:
        self.kube = kube
        self.flow = flow
        self.seen = seen  # the engine already saw this pod (the watch was quicker than our answer)
        self.listener = listener
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
        """Tell the workers to stop and wait for them, ``timeout`` seconds in all."""
        deadline = time.monotonic() + timeout
        if not self._stop.is_set():
            self._stop.set()
            for _ in self._threads:
                self._queue.put((-1, next(self._seq), None))
        for thread in self._threads:
            if thread.ident is not None:
                thread.join(max(0.0, deadline - time.monotonic()))

    def submit(self, job: LaunchJob, priority: int = TASK_PRIORITY) -> None:
        self._queue.put((priority, next(self._seq), job))

    def _work(self) -> None:
        while True:
            _, _, job = self._queue.get()
            if job is None or self._stop.is_set():
                return
            try:
                self._launch(job)
            except Exception as exc:  # never let one job kill a worker thread
                log.exception("launcher crashed on %s", job.name)
                self.listener.launch_failed(job.name, "InternalError", f"{type(exc).__name__}: {exc}")

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
            retryable=lambda error: isinstance(error, _Terminating) or self._unsynced_rbac(error),
        )

    def _unsynced_rbac(self, error: KubeApiError) -> bool:
        return is_rbac_denial(error) and self.kube.disruptions.recent()

    def _launch(self, job: LaunchJob) -> None:
        try:
            pod = job.build()
        except PodPolicyError as exc:
            self.listener.launch_failed(job.name, "PolicyViolation", str(exc))
            return
        except ExecutorError as exc:
            self.listener.launch_failed(job.name, "InvalidTask", str(exc))
            return
        namespace = pod["metadata"]["namespace"]
        try:
            created = self._retry(lambda: self._create(job, namespace, pod), job, "create")
        except RetryTimeout as exc:
            self.on_api_error(exc.status, "create")
            self.listener.launch_failed(job.name, "CreationTimeout", str(exc), namespace=namespace)
            return
        except NameConflict as exc:
            self.listener.launch_failed(job.name, "NameConflict", str(exc), namespace=namespace)
            return
        except QuotaExceeded as exc:
            self.on_api_error(exc.status, "create")
            self.listener.launch_failed(job.name, "QuotaExceeded", str(exc), namespace=namespace, quota=True)
            return
        except KubeApiError as exc:
            if self._stop.is_set():
                return
            self.on_api_error(exc.status, "create")
            reason = {403: "Forbidden", 422: "Invalid"}.get(exc.status, f"ApiError{exc.status}")
            self.listener.launch_failed(job.name, reason, str(exc), namespace=namespace)
            return
        self.listener.launched(job.name, created)

    def _create(self, job: LaunchJob, namespace: str, pod: dict[str, Any]) -> dict[str, Any]:
        """Create the pod; on AlreadyExists return the existing pod if it is ours, else raise.

        A retry after a lost answer is not sent once the engine has seen the pod on its watch: the
        first attempt did create it, and that pod may already have finished and been deleted, so a
        second create would start the task again.  ``{}`` then reports the launch as done.
        """
        if self.seen(job.name):
            return {}
        try:
            created: dict[str, Any] = self.flow.call(
                lambda: self.kube.create_pod(namespace, pod, slim=True), self._stop
            )
            return created
        except AlreadyExists:
            pass
        try:
            existing: dict[str, Any] = self.kube.get_pod(namespace, job.name)
        except NotFound as exc:  # deleted between our create and get: create again
            raise _Terminating(f"pod {job.name} vanished after AlreadyExists", status=409) from exc
        metadata = existing.get("metadata") or {}
        owner = identity.key_from_annotations(metadata.get("annotations"))
        if job.key is not None and owner != job.key:
            raise NameConflict(f"pod {job.name} already exists for another task ({owner or 'no task annotations'})")
        if metadata.get("deletionTimestamp"):
            raise _Terminating(f"pod {job.name} of this task is still being deleted", status=409)
        finished = (existing.get("status") or {}).get("phase") in ("Succeeded", "Failed")
        done = finished or (metadata.get("labels") or {}).get(identity.LABEL_DONE) == "True"
        pod_ti_id = (metadata.get("annotations") or {}).get(identity.ANNOTATION_TI_ID)
        superseded = bool(job.ti_id and pod_ti_id and pod_ti_id != job.ti_id)
        if superseded or (job.replace and done):
            with contextlib.suppress(NotFound):
                self.flow.call(lambda: self.kube.delete_pod(namespace, job.name, grace_period=0), self._stop)
            why = "a superseded task instance" if superseded else "an earlier launch of this task"
            raise _Terminating(f"pod {job.name} of {why} is being replaced", status=409)
        return existing
