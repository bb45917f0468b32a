"""The pods API: create, get, list/watch, patch, put, delete (one and collection), status and log subresources."""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING, Any

from .defaults import SYSTEM_PRIORITY_CLASSES, apply_server_defaults, check_priority_class
from .errors import ApiError, bad_request, conflict, invalid, not_found
from .listing import list_or_watch, object_filter
from .patch import SUPPORTED, PatchError, apply_patch
from .pods import apply_pod_defaults, container_names, is_terminal, new_metadata, rfc3339
from .routes import Request, Response, StreamResponse, WatchResponse
from .updates import finalize_update
from .validation import validate_pod
from .watchers import Stored

if TYPE_CHECKING:
    from .cluster import Cluster

_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # what apiserver's name generator draws from
_rng = random.Random()


def apply_request_patch(req: Request, current: dict[str, Any]) -> Any:
    content_type = req.headers.get("content-type", "")
    try:
        return apply_patch(content_type, current, req.json())
    except LookupError as exc:
        raise ApiError(
            415,
            f"the body of the request was in an unknown format - accepted media types include: {', '.join(SUPPORTED)}",
            "UnsupportedMediaType",
            details={},
        ) from exc
    except PatchError as exc:
        raise ApiError(
            422, f"the server rejected our request due to an error in our request: {exc}", "Invalid"
        ) from exc


class PodApi:
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.store = cluster.store

    # ------------------------------------------------------------- collection
    def list(self, req: Request) -> Response | WatchResponse:
        ns = req.params.get("namespace")
        return list_or_watch(self.store, self.cluster.config, req, "pods", "Pod", ns)

    def create(self, req: Request) -> Response:
        ns = req.params["namespace"]
        body = req.json()
        if not isinstance(body, dict):
            raise bad_request("the object provided is unrecognized (not a JSON object)")
        meta = dict(body.get("metadata") or {})
        if meta.get("namespace") not in (None, "", ns):
            raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
        generated = not meta.get("name") and bool(meta.get("generateName"))
        for attempt in range(8):
            if generated:
                suffix = "".join(_rng.choice(_GENERATE_ALPHABET) for _ in range(5))
                meta["name"] = str(meta["generateName"])[:58] + suffix
            pod = {**body, "metadata": new_metadata(meta, ns)}
            causes = validate_pod(pod)
            if causes:
                raise invalid("Pod", str(meta.get("name") or ""), causes)
            self._default_and_admit(pod)
            if req.query.get("dryRun"):
                return Response.of(pod, 201)
            try:
                stored = self.store.create("pods", pod, admit=self.cluster.admission.quota_check(pod))
            except ApiError as exc:
                if generated and exc.reason == "AlreadyExists" and attempt < 7:
                    continue
                raise
            return Response(201, stored.raw)
        raise AssertionError("unreachable")  # pragma: no cover

    def _default_and_admit(self, pod: dict[str, Any]) -> None:
        """Defaulting and the mutating/validating admission a create goes through (quota comes at the write)."""
        config, cluster = self.cluster.config, self.cluster
        priorities = cluster.priorities
        if config.server_defaults or config.reject_unknown_priority_class:
            priorities = {**SYSTEM_PRIORITY_CLASSES, **priorities}  # the Priority plugin knows the system classes
        apply_pod_defaults(pod, priorities)
        if config.reject_unknown_priority_class:
            check_priority_class(pod, priorities)
        if config.server_defaults:
            apply_server_defaults(pod, cluster.preemption_policies)
        cluster.admission.check_pod(pod)

    def delete_collection(self, req: Request) -> Response:
        ns = req.params["namespace"]
        flt = object_filter(req, "pods", ns)
        options = self._delete_options(req)
        items = [
            self._delete(ns, s.obj["metadata"]["name"], options)
            for s in self.store.items("pods", ns)
            if flt.matches(s.obj)
        ]
        body = b'{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"%d"},"items":[' % self.store.rv
        return Response(200, body + b",".join(s.raw for s in items if s is not None) + b"]}")

    # ----------------------------------------------------------------- object
    def _get(self, req: Request) -> Stored:
        ns, name = req.params["namespace"], req.params["name"]
        stored = self.store.get("pods", ns, name)
        if stored is None:
            raise not_found("pods", name)
        return stored

    def get(self, req: Request) -> Response:
        return Response(200, self._get(req).raw)

    def patch(self, req: Request, *, status_only: bool = False) -> Response:
        ns, name = req.params["namespace"], req.params["name"]
        return self._update(
            ns,
            name,
            lambda cur: finalize_update("pods", "Pod", cur, apply_request_patch(req, cur), status_only=status_only),
        )

    def patch_status(self, req: Request) -> Response:
        return self.patch(req, status_only=True)

    def put(self, req: Request, *, status_only: bool = False) -> Response:
        ns, name = req.params["namespace"], req.params["name"]
        body = req.json()
        return self._update(ns, name, lambda cur: finalize_update("pods", "Pod", cur, body, status_only=status_only))

    def put_status(self, req: Request) -> Response:
        return self.put(req, status_only=True)

    def _update(self, ns: str, name: str, mutate: Any) -> Response:
        stored = self.store.update("pods", ns, name, mutate)
        return Response(200, stored.raw)

    def delete(self, req: Request) -> Response:
        ns, name = req.params["namespace"], req.params["name"]
        stored = self._delete(ns, name, self._delete_options(req))
        if stored is None:
            raise not_found("pods", name)
        return Response(200, stored.raw)

    @staticmethod
    def _delete_options(req: Request) -> dict[str, Any]:
        options = req.json(default={}) if req.body.strip() else {}
        if not isinstance(options, dict):
            raise bad_request("the DeleteOptions body is not a JSON object")
        grace = req.int_param("gracePeriodSeconds")
        if grace is not None:
            options["gracePeriodSeconds"] = grace
        return options

    def _delete(self, ns: str, name: str, options: dict[str, Any]) -> Stored | None:
        """Delete with the API server's pod rules: unbound or terminal pods and gracePeriodSeconds=0 are removed at
        once; otherwise the pod is marked with deletionTimestamp/deletionGracePeriodSeconds (grace: the request's,
        else the pod's terminationGracePeriodSeconds) and the kubelet removes it when its containers have stopped.
        A second DELETE may only shorten the grace period.  With no deletion delay configured (and no real processes
        to stop) the kubelet would finish at once, so the pod is removed at once."""
        pre = options.get("preconditions") or {}
        grace = options.get("gracePeriodSeconds")
        with self.store.lock:
            current = self.store.get("pods", ns, name)
            if current is None:
                return None
            cur_meta = current.obj["metadata"]
            if pre.get("resourceVersion") not in (None, cur_meta["resourceVersion"]):
                raise conflict(
                    "pods",
                    name,
                    f"Precondition failed: ResourceVersion in precondition: {pre['resourceVersion']}, "
                    f"ResourceVersion in object meta: {cur_meta['resourceVersion']}",
                )
            uid = pre.get("uid")
            immediate = (
                grace == 0
                or not current.obj["spec"].get("nodeName")
                or is_terminal(current.obj)
                or (self.cluster.config.deletion_delay <= 0 and not self.cluster.kubelet.runs_processes)
            )
            if immediate:
                return self.store.delete("pods", ns, name, uid=uid)
            seconds = int(grace if grace is not None else current.obj["spec"].get("terminationGracePeriodSeconds", 30))
            if "deletionTimestamp" in cur_meta and seconds >= int(cur_meta.get("deletionGracePeriodSeconds", 0)):
                return current

            def mark(pod: dict[str, Any]) -> dict[str, Any]:
                pod["metadata"]["deletionTimestamp"] = rfc3339(time.time() + seconds)
                pod["metadata"]["deletionGracePeriodSeconds"] = seconds
                return pod

            if uid is not None and uid != current.uid:
                return self.store.delete("pods", ns, name, uid=uid)  # raises the precondition Conflict
            return self.store.update("pods", ns, name, mark)

    # -------------------------------------------------------------------- log
    def log(self, req: Request) -> Response | StreamResponse:
        """``tailLines``, ``limitBytes`` and ``container``; ``follow=true`` streams a process-mode pod's output until
        its process exits (for simulated pods the log is complete at once, so it is answered whole)."""
        stored = self._get(req)
        pod, name = stored.obj, req.params["name"]
        names = container_names(pod)
        all_names = names + [c.get("name", "") for c in pod["spec"].get("initContainers") or []]
        container = req.query.get("container")
        if not container:
            if len(names) > 1:
                raise bad_request(
                    f"a container name must be specified for pod {name}, choose one of: [{' '.join(names)}]"
                )
            container = names[0]
        elif container not in all_names:
            raise bad_request(f"container {container} is not valid for pod {name}")
        if req.flag("follow") and (followed := self.cluster.kubelet.follow_log(stored.uid, req.int_param("tailLines"))):
            return StreamResponse(followed)
        lines = self.cluster.logs(req.params["namespace"], name)
        if lines is None:
            waiting = [
                (cs.get("state") or {}).get("waiting", {}).get("reason", "ContainerCreating")
                for cs in pod["status"].get("containerStatuses") or []
                if cs.get("name") == container
            ]
            reason = waiting[0] if waiting else "ContainerCreating"
            if reason in ("ErrImagePull", "ImagePullBackOff"):
                reason = "trying and failing to pull image"
            raise bad_request(f'container "{container}" in pod "{name}" is waiting to start: {reason}')
        tail = req.int_param("tailLines")
        if tail is not None:
            lines = lines[-tail:] if tail > 0 else []
        text = "".join(line + "\n" for line in lines).encode()
        limit = req.int_param("limitBytes")
        if limit:
            text = text[:limit]
        return Response(200, text, "text/plain")
