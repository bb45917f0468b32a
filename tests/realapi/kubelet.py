"""A stand-in for kube-scheduler and the kubelet, through the API only (the real-apiserver tier has neither).

For the pods of one namespace it does what those components would write, and nothing else:

* registers Nodes (labels, taints, capacity, Ready) - one per pool it is given;
* with ``bind=True`` (no kube-scheduler running), binds each new pod to a Node whose labels match its
  ``nodeSelector``, with the ``pods/binding`` subresource (a pod no Node matches stays Pending, as unschedulable;
  :meth:`StandInKubelet.hold` keeps new pods Pending until :meth:`StandInKubelet.resume`, as a cluster without
  room would); with ``bind=False`` the real kube-scheduler (:mod:`tests.realapi.scheduler`) binds, and the
  stand-in only runs pods bound to its Nodes;
* writes the pod's status with ``pods/status``: Running with running container statuses, then - after the
  pod's ``fakekube/run-seconds`` annotation, default ``run_seconds`` - Succeeded, or Failed with the
  ``fakekube/exit-code`` annotation when ``fakekube/outcome`` is ``fail``, with terminated container statuses;
  restartPolicy Always pods (placeholders) stay Running;
* finishes graceful deletions as the kubelet does once the containers stopped: a bound pod carrying a
  ``deletionTimestamp`` is deleted with ``gracePeriodSeconds: 0`` and a UID precondition.

The annotations are the fake's (``tests.engine.conftest.behave``), so engine tests read the same on both.
It also observes: every incarnation (UID) of every pod name, so a test can count creates per pod from the
server's side, and every unexpected API error it met.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from airflow_k8s.executor.contract.errors import Conflict, Gone, KubeApiError, NotFound
from airflow_k8s.executor.kube.client import KubeClient
from airflow_k8s.executor.kube.retry import is_retryable
from airflow_k8s.executor.kube.watchstream import WatchStream

log = logging.getLogger(__name__)
_MERGE = {"Accept": "application/json", "Content-Type": "application/merge-patch+json"}


@dataclass(frozen=True)
class NodePool:
    name: str
    labels: dict[str, str]
    taints: tuple[dict[str, str], ...] = ()
    cpu: str = "64"
    memory: str = "256Gi"
    gpus: int = 0


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def node_manifest(pool: NodePool) -> dict[str, Any]:
    capacity = {"cpu": pool.cpu, "memory": pool.memory, "pods": "250", "ephemeral-storage": "100Gi"}
    if pool.gpus:
        capacity["nvidia.com/gpu"] = str(pool.gpus)
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": pool.name, "labels": {"kubernetes.io/hostname": pool.name, **pool.labels}},
        "spec": {"taints": [dict(t) for t in pool.taints]},
        "status": {
            "capacity": capacity,
            "allocatable": capacity,
            "conditions": [
                {"type": "Ready", "status": "True", "reason": "KubeletReady", "lastHeartbeatTime": now_rfc3339()}
            ],
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
        },
    }


@dataclass
class _PodState:
    bound: bool = False  # taken in hand (bind, then run)
    finished: bool = False
    finalizing: bool = False
    started_at: str = ""


@dataclass(order=True)
class _Action:
    due: float
    seq: int
    run: Callable[[], None] = field(compare=False)


class StandInKubelet:
    def __init__(
        self,
        admin: KubeClient,
        namespace: str,
        pools: list[NodePool],
        *,
        run_seconds: float = 0.2,
        start_delay: float = 0.05,
        stop_delay: float = 0.3,
        workers: int = 4,
        bind: bool = True,
    ) -> None:
        self.admin = admin
        self.bind = bind
        self.namespace = namespace
        self.pools = pools
        self.run_seconds = run_seconds
        self.start_delay = start_delay
        self.stop_delay = stop_delay
        self.uids: dict[str, list[str]] = defaultdict(list)  # pod name -> UIDs in order of appearance
        self.nodes: dict[str, str] = {}  # pod name -> the node it was bound to (by kube-scheduler or the stand-in)
        self.binds = self.status_writes = self.finalized = self.retries = 0
        self.errors: list[str] = []
        self._states: dict[str, _PodState] = {}
        self._lock = threading.Lock()
        self._actions: list[_Action] = []
        self._wake = threading.Condition(self._lock)
        self._seq = itertools.count()
        self._stop = threading.Event()
        self._scheduling = threading.Event()  # cleared by hold(): new pods stay Pending, as with no room on any node
        self._scheduling.set()
        self._stream: WatchStream | None = None
        self._threads = [threading.Thread(target=self._watch, name="standin-watch", daemon=True)]
        self._threads += [threading.Thread(target=self._work, name=f"standin-{i}", daemon=True) for i in range(workers)]

    # -- lifecycle ----------------------------------------------------------------------------------
    def start(self) -> StandInKubelet:
        for pool in self.pools:
            manifest = node_manifest(pool)
            try:
                self.admin.request("POST", "/api/v1/nodes", body=manifest)
            except KubeApiError as exc:
                if exc.status != 409:
                    raise
            # A create drops the status: capacity, allocatable and Ready are written as a kubelet writes them.
            path = f"/api/v1/nodes/{pool.name}/status"
            self.admin.request("PATCH", path, body={"status": manifest["status"]}, headers=_MERGE)
            # Admission taints a new Node node.kubernetes.io/not-ready until the node lifecycle controller (not run
            # here) sees it Ready: take the taint off as it would, keeping the pool's own.
            body = {"spec": {"taints": manifest["spec"]["taints"]}}
            self.admin.request("PATCH", f"/api/v1/nodes/{pool.name}", body=body, headers=_MERGE)
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        stream = self._stream
        if stream is not None:
            stream.close()
        with self._wake:
            self._wake.notify_all()
        for thread in self._threads:
            thread.join(5)
        for pool in self.pools:
            with contextlib.suppress(KubeApiError):
                self.admin.request("DELETE", f"/api/v1/nodes/{pool.name}", decode=False)

    def hold(self) -> None:
        """Bind or start no new pod until :meth:`resume` (running pods keep running, deletions still finish)."""
        self._scheduling.clear()

    def resume(self) -> None:
        """Bind again, the pods that stayed Pending meanwhile first."""
        self._scheduling.set()
        for pod in self.admin.list_pods(self.namespace).items:
            self._observe("MODIFIED", pod)

    # -- observations -------------------------------------------------------------------------------
    def creates(self) -> dict[str, int]:
        """Pod name -> how many incarnations (UIDs) of it the server had."""
        with self._lock:
            return {name: len(uids) for name, uids in self.uids.items()}

    # -- the watch ----------------------------------------------------------------------------------
    def _watch(self) -> None:
        rv: str | None = None
        while not self._stop.is_set():
            try:
                if rv is None:
                    listing = self.admin.list_pods(self.namespace)
                    for pod in listing.items:
                        self._observe("ADDED", pod)
                    rv = listing.resource_version
                stream = self.admin.watch_pods(
                    self.namespace, label_selector=None, resource_version=rv, timeout_seconds=60, read_timeout=90
                )
                self._stream = stream
                if self._stop.is_set():
                    stream.close()
                for event in stream:
                    obj = event.get("object") or {}
                    if event.get("type") == "ERROR":
                        if int(obj.get("code") or 0) == 410:
                            raise Gone("stand-in watch expired", status=410)
                        raise KubeApiError(
                            f"stand-in watch error: {obj.get('message')}", status=int(obj.get("code") or 0)
                        )
                    if event.get("type") != "BOOKMARK":
                        self._observe(str(event.get("type")), obj)
                    rv = (obj.get("metadata") or {}).get("resourceVersion") or rv
            except Gone:
                rv = None
            except KubeApiError as exc:
                if not self._stop.is_set():
                    log.info("stand-in kubelet watch failed: %s", exc)
                    self._stop.wait(0.2)

    def _observe(self, kind: str, pod: dict[str, Any]) -> None:
        metadata = pod.get("metadata") or {}
        name, uid = metadata.get("name", ""), metadata.get("uid", "")
        with self._lock:
            if uid and uid not in self.uids[name]:
                self.uids[name].append(uid)
            if kind == "DELETED":
                self._states.pop(uid, None)
                return
            state = self._states.setdefault(uid, _PodState())
        spec = pod.get("spec") or {}
        if metadata.get("deletionTimestamp"):
            if spec.get("nodeName") and not state.finalizing:
                state.finalizing = True
                self._later(self.stop_delay, lambda: self._finalize(name, uid))
            return
        if state.bound:
            return  # being bound and run by this stand-in already
        if spec.get("nodeName"):  # bound by the scheduler (or created with a nodeName): run it on its node
            if spec["nodeName"] not in {pool.name for pool in self.pools}:
                return  # another kubelet's
            if not self._scheduling.is_set():
                return  # held: no room to start it yet (resume() looks again)
            state.bound = True
            with self._lock:
                self.nodes[name] = spec["nodeName"]
            self._later(self.start_delay, lambda: self._run(pod, state))
            return
        if not self.bind:
            return  # kube-scheduler binds it (or leaves it Pending with its reason)
        state.bound = True
        node = self._node_for(spec) if self._scheduling.is_set() else None
        if node is None:
            state.bound = False  # unschedulable (or held): stays Pending
            return
        self._later(0.0, lambda: self._bind(pod, node, state))

    def _node_for(self, spec: dict[str, Any]) -> str | None:
        selector = spec.get("nodeSelector") or {}
        for pool in self.pools:
            if all(pool.labels.get(key) == value for key, value in selector.items()):
                return pool.name
        return None

    # -- actions ------------------------------------------------------------------------------------
    def _later(self, delay: float, run: Callable[[], None]) -> None:
        with self._wake:
            heapq.heappush(self._actions, _Action(time.monotonic() + delay, next(self._seq), run))
            self._wake.notify()

    def _work(self) -> None:
        while not self._stop.is_set():
            with self._wake:
                while not self._stop.is_set():
                    now = time.monotonic()
                    if self._actions and self._actions[0].due <= now:
                        action = heapq.heappop(self._actions)
                        break
                    self._wake.wait(min(0.5, self._actions[0].due - now) if self._actions else 0.5)
                else:
                    return
            try:
                action.run()
            except (NotFound, Conflict):
                pass  # the pod went away (or changed) meanwhile: nothing to do
            except KubeApiError as exc:
                if is_retryable(exc):  # the apiserver is restarting, or busy: a kubelet tries again
                    self.retries += 1
                    self._later(0.5, action.run)
                elif not self._stop.is_set():
                    self.errors.append(f"{type(exc).__name__}: {exc}")
            except Exception as exc:
                if not self._stop.is_set():
                    self.errors.append(f"{type(exc).__name__}: {exc}")

    def _bind(self, pod: dict[str, Any], node: str, state: _PodState) -> None:
        metadata = pod["metadata"]
        body = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": metadata["name"], "uid": metadata["uid"]},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        }
        try:
            self.admin.request(
                "POST", f"/api/v1/namespaces/{self.namespace}/pods/{metadata['name']}/binding", body=body
            )
        except KubeApiError as exc:
            if exc.status == 409:  # already bound (a relist saw it unbound)
                return
            raise
        with self._lock:
            self.binds += 1
            self.nodes[metadata["name"]] = node
        self._later(self.start_delay, lambda: self._run(pod, state))

    def _patch_status(self, name: str, status: dict[str, Any]) -> None:
        path = f"/api/v1/namespaces/{self.namespace}/pods/{name}/status"
        self.admin.request("PATCH", path, body={"status": status}, headers=_MERGE)
        with self._lock:
            self.status_writes += 1

    def _run(self, pod: dict[str, Any], state: _PodState) -> None:
        metadata, spec = pod["metadata"], pod.get("spec") or {}
        state.started_at = now_rfc3339()
        containers = [
            {
                "name": c["name"],
                "image": c.get("image", ""),
                "imageID": "",
                "containerID": f"containerd://{metadata['uid']}-{c['name']}",
                "ready": True,
                "started": True,
                "restartCount": 0,
                "state": {"running": {"startedAt": state.started_at}},
            }
            for c in spec.get("containers") or []
        ]
        self._patch_status(
            metadata["name"],
            {
                "phase": "Running",
                "startTime": state.started_at,
                "hostIP": "127.0.0.1",
                "podIP": "10.244.0.10",
                "conditions": self._conditions(ready=True),
                "containerStatuses": containers,
                "initContainerStatuses": self._init_statuses(pod, state.started_at),
            },
        )
        if spec.get("restartPolicy", "Always") == "Always":
            return  # a placeholder (pause): runs until deleted
        notes = metadata.get("annotations") or {}
        seconds = float(notes.get("fakekube/run-seconds", self.run_seconds))
        self._later(seconds, lambda: self._finish(pod, state))

    def _finish(self, pod: dict[str, Any], state: _PodState) -> None:
        if self._stop.is_set() or state.finalizing:
            return
        metadata, spec = pod["metadata"], pod.get("spec") or {}
        notes = metadata.get("annotations") or {}
        failed = notes.get("fakekube/outcome", "succeed") == "fail"
        exit_code = int(notes.get("fakekube/exit-code", "1")) if failed else 0
        finished = now_rfc3339()
        containers = [
            {
                "name": c["name"],
                "image": c.get("image", ""),
                "imageID": "",
                "containerID": f"containerd://{metadata['uid']}-{c['name']}",
                "ready": False,
                "started": False,
                "restartCount": 0,
                "state": {
                    "terminated": {
                        "exitCode": exit_code,
                        "reason": "Error" if failed else "Completed",
                        "startedAt": state.started_at,
                        "finishedAt": finished,
                        "containerID": f"containerd://{metadata['uid']}-{c['name']}",
                    }
                },
            }
            for c in spec.get("containers") or []
        ]
        state.finished = True
        self._patch_status(
            metadata["name"],
            {
                "phase": "Failed" if failed else "Succeeded",
                "conditions": self._conditions(ready=False),
                "containerStatuses": containers,
            },
        )

    def _finalize(self, name: str, uid: str) -> None:
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0, "preconditions": {"uid": uid}}
        self.admin.request("DELETE", f"/api/v1/namespaces/{self.namespace}/pods/{name}", body=body, decode=False)
        with self._lock:
            self.finalized += 1

    @staticmethod
    def _conditions(*, ready: bool) -> list[dict[str, Any]]:
        stamp = now_rfc3339()
        value = "True" if ready else "False"
        extra = {} if ready else {"reason": "PodCompleted"}
        return [
            {"type": "Initialized", "status": "True", "lastTransitionTime": stamp},
            {"type": "Ready", "status": value, "lastTransitionTime": stamp, **extra},
            {"type": "ContainersReady", "status": value, "lastTransitionTime": stamp, **extra},
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": stamp},
        ]

    @staticmethod
    def _init_statuses(pod: dict[str, Any], started: str) -> list[dict[str, Any]]:
        return [
            {
                "name": c["name"],
                "image": c.get("image", ""),
                "imageID": "",
                "ready": True,
                "restartCount": 0,
                "state": {
                    "terminated": {"exitCode": 0, "reason": "Completed", "startedAt": started, "finishedAt": started}
                },
            }
            for c in (pod.get("spec") or {}).get("initContainers") or []
        ]
