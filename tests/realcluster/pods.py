"""Every pod event of the platform's namespace, recorded from a watch, and what tests read from pods.

:class:`PodRecorder` runs ``kubectl get pods --watch --output-watch-events -o json`` for the whole session and
keeps each pod's first-seen and last-seen object by UID, so a test can say how often a pod *name* was created
(a name created twice has two UIDs) even after the executor deleted the pod, and read its latency: created
(``creationTimestamp``), scheduled (``PodScheduled`` condition), running (the base container's ``startedAt``),
done (its ``finishedAt``) - the kubelet's and API server's own timestamps, whole seconds.
"""

from __future__ import annotations

import json
import subprocess
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tests.realcluster.kit import Kit, wait_for


@dataclass
class PodRecorder:
    kit: Kit
    namespace: str
    by_uid: dict[str, dict[str, Any]] = field(default_factory=dict)
    names: dict[str, list[str]] = field(default_factory=dict)  # name -> UIDs in order of creation
    deleted: set[str] = field(default_factory=set)
    _process: subprocess.Popen[str] | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stopping: bool = False

    def start(self) -> PodRecorder:
        self._thread = threading.Thread(target=self._run, name="pod-recorder", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stopping:  # a watch ends now and then (server timeout): resume; events are idempotent
            argv = [str(self.kit.bin / "kubectl"), "--kubeconfig", str(self.kit.kubeconfig), "get", "pods",
                    "-n", self.namespace, "--watch", "--output-watch-events", "-o", "json"]  # fmt: skip
            self._process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            decoder = json.JSONDecoder()
            buffer = ""
            assert self._process.stdout is not None
            for line in self._process.stdout:
                buffer += line
                stripped = buffer.lstrip()
                try:
                    event, end = decoder.raw_decode(stripped)
                except json.JSONDecodeError:
                    continue
                buffer = stripped[end:]
                self._record(event)
            self._process.wait()

    def _record(self, event: dict[str, Any]) -> None:
        pod = event.get("object") or {}
        meta = pod.get("metadata") or {}
        uid, name = meta.get("uid"), meta.get("name")
        if not uid:
            return
        with self._lock:
            if uid not in self.by_uid:
                self.names.setdefault(name, []).append(uid)
            self.by_uid[uid] = pod
            if event.get("type") == "DELETED":
                self.deleted.add(uid)

    def stop(self) -> None:
        self._stopping = True
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            self._process.wait(timeout=30)

    # -- reading ---------------------------------------------------------------------------------------------------
    def task_pods(self, dag_id: str, run_id: str) -> dict[tuple[str, int], list[dict[str, Any]]]:
        """(task id, try number) -> every pod (by UID) ever created for it, last known state."""
        with self._lock:
            pods = list(self.by_uid.values())
        found: dict[tuple[str, int], list[dict[str, Any]]] = {}
        for pod in pods:
            notes = pod["metadata"].get("annotations") or {}
            if notes.get("dag_id") == dag_id and notes.get("run_id") == run_id:
                found.setdefault((notes["task_id"], int(notes["try_number"])), []).append(pod)
        return found

    def creations(self, name: str) -> int:
        with self._lock:
            return len(self.names.get(name, []))


def ended_pods(recorder: PodRecorder, dag_id: str, run_id: str) -> dict[tuple[str, int], list[dict[str, Any]]]:
    """The run's pods once each has ended (a task reports its state before its process exits) or is gone."""

    def ended() -> dict[tuple[str, int], list[dict[str, Any]]] | None:
        pods = recorder.task_pods(dag_id, run_id)
        done = all(
            p["status"].get("phase") in ("Succeeded", "Failed") or p["metadata"]["uid"] in recorder.deleted
            for found in pods.values()
            for p in found
        )
        return pods if pods and done else None

    return wait_for(ended, what=f"the pods of {dag_id} {run_id} to end", timeout=600)


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def base_container_status(pod: dict[str, Any]) -> dict[str, Any]:
    for status in pod.get("status", {}).get("containerStatuses") or []:
        if status.get("name") == "base":
            return dict(status)
    return {}


def latency(pod: dict[str, Any]) -> dict[str, float | None]:
    """Seconds from the pod's creation to scheduled, running (container started) and done (container ended)."""
    created = _time(pod["metadata"]["creationTimestamp"])
    assert created is not None
    scheduled = next(
        (_time(c.get("lastTransitionTime")) for c in pod.get("status", {}).get("conditions") or []
         if c["type"] == "PodScheduled" and c["status"] == "True"),
        None,
    )  # fmt: skip
    state = base_container_status(pod).get("state") or {}
    started = (state.get("running") or state.get("terminated") or {}).get("startedAt")
    finished = (state.get("terminated") or {}).get("finishedAt")

    def since(moment: datetime | None) -> float | None:
        return None if moment is None else (moment - created).total_seconds()

    return {"scheduled": since(scheduled), "running": since(_time(started)), "done": since(_time(finished))}


def exit_code(pod: dict[str, Any]) -> int | None:
    terminated = (base_container_status(pod).get("state") or {}).get("terminated")
    return None if terminated is None else int(terminated["exitCode"])
