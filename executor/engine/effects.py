"""Slow pod side effects, run off the loop thread: read a failed pod's log, say why a pod was deleted,
clean up, delete placeholders, look up a pod that left the watch.

Each job runs on a small thread pool and reports back by posting a message (``Finished``,
``Cleaned``, ``PlaceholderGone``, ``OwnerChecked``), so the loop thread never waits on the API.
Cleanup retries transient errors (and RBAC 403s shortly after a disruption of the API server: a
restarted server refuses valid credentials for a moment, see
:mod:`~airflow_k8s.executor.kube.disruption`) and treats 404 as done: deleting or labelling a pod
twice is harmless, which is what makes the engine's cleanup idempotent across restarts.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from airflow_k8s.executor.contract.errors import KubeApiError, NotFound
from airflow_k8s.executor.engine.messages import Cleaned, Finished, Message, OwnerChecked, PlaceholderGone
from airflow_k8s.executor.engine.metrics import EngineMetrics
from airflow_k8s.executor.kube.client import KubeClient
from airflow_k8s.executor.kube.flowcontrol import FlowControl
from airflow_k8s.executor.kube.retry import RetryPolicy, call_with_retry, is_rbac_denial
from airflow_k8s.executor.pods.podstate import deletion_event
from airflow_k8s.executor.tasks import identity
from airflow_k8s.executor.tasks.results import TaskResult

log = logging.getLogger(__name__)
# The scheduler's Preempted event on current releases names the preemptor by UID only.
_PREEMPTOR_UID = re.compile(r"^Preempted by pod ([0-9a-fA-F-]{36})( on node \S+)?")


class PodEffects:
    def __init__(
        self,
        kube: KubeClient,
        *,
        post: Callable[[Message], None],
        metrics: EngineMetrics,
        retry: RetryPolicy,
        stop: threading.Event,
        workers: int,
        flow: FlowControl | None = None,
        delete_options: Mapping[str, int | str] | None = None,
    ) -> None:
        self.kube = kube
        self.flow = flow or FlowControl()
        self.post = post
        self.metrics = metrics
        self.retry = retry
        self.stop_event = stop
        self.delete_options = dict(delete_options or {})
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pod-aux")

    def shutdown(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    # -- jobs --------------------------------------------------------------------------------
    def read_log_then_finish(self, namespace: str, result: TaskResult, tail: int) -> None:
        """Attach the last ``tail`` log lines of the base container to a failed result."""
        self.pool.submit(self._read_log, namespace, result, tail)

    def explain_deletion_then_finish(self, namespace: str, result: TaskResult, uid: str | None) -> None:
        """Put the reason the cluster gave for deleting the pod (its events) into a failed result.

        A preempted pod then reads "preempted by <namespace>/<pod> on node <node>" - the scheduler's
        own event - rather than only "deleted".
        """
        self.pool.submit(self._explain_deletion, namespace, result, uid)

    def cleanup(self, namespace: str, name: str, *, delete: bool) -> None:
        """Delete the pod, or label it done so no scheduler processes it again."""
        self.pool.submit(self._cleanup, namespace, name, delete)

    def delete_placeholder(self, namespace: str, name: str) -> None:
        self.pool.submit(self._delete_placeholder, namespace, name)

    def check_owner(self, namespace: str, name: str) -> None:
        """GET a pod that left the watch; the answer (None: it is gone) comes as ``OwnerChecked``."""
        self.pool.submit(self._check_owner, namespace, name)

    def retry_later(self, name: str, result: TaskResult, delay: float = 1.0) -> None:
        """Post the outcome again after ``delay`` seconds (the sink failed to record it)."""
        timer = threading.Timer(delay, self.post, args=(Finished(name, result),))
        timer.daemon = True
        timer.start()

    # -- workers -----------------------------------------------------------------------------
    def _read_log(self, namespace: str, result: TaskResult, tail: int) -> None:
        try:
            text = self.kube.read_pod_log(namespace, result.pod_name, tail_lines=tail)
            lines = tuple(text.splitlines()[-tail:])
        except KubeApiError as exc:
            self.metrics.api_error(exc.status, "log")
            lines = (f"(logs unavailable: {exc})",)
        self.post(Finished(result.pod_name, replace(result, log_tail=lines)))

    def _explain_deletion(self, namespace: str, result: TaskResult, uid: str | None) -> None:
        try:
            found = deletion_event(self.kube.pod_events(namespace, result.pod_name, uid))
            if found is not None:
                reason, message = found
                result = replace(result, reason=reason, message=self._named_preemptor(namespace, message))
        except KubeApiError as exc:
            self.metrics.api_error(exc.status, "events")
            log.info("cannot read the events of pod %s: %s", result.pod_name, exc)
        except Exception:  # the outcome must reach the engine whatever happened here
            log.exception("explaining the deletion of pod %s failed", result.pod_name)
        finally:
            self.post(Finished(result.pod_name, result))

    def _named_preemptor(self, namespace: str, message: str) -> str:
        """ "Preempted by pod <uid> on node n" as "preempted by <namespace>/<name> on node n" when the pod is found."""
        match = _PREEMPTOR_UID.match(message)
        if match is None:
            return message[:1].lower() + message[1:]
        for pod in self.kube.list_pods(namespace).items:
            metadata = pod.get("metadata") or {}
            if metadata.get("uid") == match.group(1):
                return f"preempted by {namespace}/{metadata.get('name')}{match.group(2) or ''}"
        return message[:1].lower() + message[1:]

    def _cleanup(self, namespace: str, name: str, delete: bool) -> None:
        def call() -> None:
            if delete:
                options = self.delete_options
                self.flow.call(lambda: self.kube.delete_pod(namespace, name, options=options), self.stop_event)
            else:
                labels = {identity.LABEL_DONE: "True"}
                self.flow.call(lambda: self.kube.patch_pod_metadata(namespace, name, labels=labels), self.stop_event)

        try:
            call_with_retry(
                call,
                policy=self.retry,
                sleep=self.stop_event.wait,
                what=f"cleanup {name}",
                retryable=lambda error: is_rbac_denial(error) and self.kube.disruptions.recent(),
            )
        except NotFound:
            pass
        except KubeApiError as exc:
            if not self.stop_event.is_set():
                self.metrics.api_error(exc.status, "delete" if delete else "patch")
                log.error("cleanup of pod %s failed: %s", name, exc)
        self.post(Cleaned(name))

    def _check_owner(self, namespace: str, name: str) -> None:
        found: dict[str, Any] | None = None
        try:
            found = call_with_retry(
                lambda: self.kube.get_pod(namespace, name),
                policy=self.retry,
                sleep=self.stop_event.wait,
                what=f"get {name}",
            )
        except NotFound:
            pass
        except KubeApiError as exc:  # cannot tell: treat it as gone, as before ownership was checked
            if self.stop_event.is_set():
                return
            self.metrics.api_error(exc.status, "get")
            log.warning("cannot look up pod %s that left the watch: %s", name, exc)
        self.post(OwnerChecked(name, found))

    def _delete_placeholder(self, namespace: str, name: str) -> None:
        try:
            self.kube.delete_pod(namespace, name, grace_period=0)
        except NotFound:
            pass
        except KubeApiError as exc:
            log.warning("cannot delete placeholder %s: %s", name, exc)
        self.post(PlaceholderGone(name))
