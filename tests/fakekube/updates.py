"""Rules for PUT/PATCH on existing objects, as the API server applies them.

* ``metadata.resourceVersion`` in the new object, if present, must equal the current one (else 409 Conflict):
  optimistic concurrency.
* Name/namespace must match the URL (400); uid, creationTimestamp, deletion fields are server-owned and kept.
* ``status`` cannot be changed through the main resource (only through ``/status``); ``spec`` cannot be changed
  through ``/status``.
* Pods: only ``containers[*].image``, ``initContainers[*].image``, ``activeDeadlineSeconds``, ``tolerations`` and
  ``terminationGracePeriodSeconds`` may change in the spec (422 otherwise).
* An update that changes nothing is a no-op: no new resourceVersion, no watch event.
"""

from __future__ import annotations

from typing import Any

from .errors import Cause, bad_request, invalid, stale_conflict
from .validation import validate_metadata

_SERVER_OWNED = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation")
_POD_SPEC_FORBIDDEN = (
    "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,"
    "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),"
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"
)


def _pod_spec_frozen_view(spec: dict[str, Any]) -> dict[str, Any]:
    view = {
        k: v
        for k, v in spec.items()
        if k not in ("activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds")
    }
    for section in ("containers", "initContainers"):
        if section in view:
            view[section] = [{k: v for k, v in c.items() if k != "image"} for c in view[section] or []]
    return view


def finalize_update(
    resource: str,
    kind: str,
    current: dict[str, Any],
    new: Any,
    *,
    status_only: bool = False,
) -> dict[str, Any] | None:
    """Validate ``new`` against ``current`` and return the object to store (None: nothing changed)."""
    if not isinstance(new, dict) or not isinstance(new.get("metadata", {}), dict):
        raise bad_request("the object provided is unrecognized")
    cur_meta = current["metadata"]
    meta = dict(new.get("metadata") or {})
    name = cur_meta["name"]
    requested_rv = meta.get("resourceVersion")
    if requested_rv not in (None, "") and str(requested_rv) != cur_meta["resourceVersion"]:
        raise stale_conflict(resource, name)
    if meta.get("name", name) != name:
        raise bad_request(f"the name of the object ({meta['name']}) does not match the name on the URL ({name})")
    if meta.get("namespace", cur_meta.get("namespace")) != cur_meta.get("namespace"):
        raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
    if status_only:
        result = {**current, "status": new.get("status", current.get("status"))}
    else:
        result = {**new, "kind": current["kind"], "apiVersion": current["apiVersion"]}
        for key in ("name", "namespace", *_SERVER_OWNED):
            if key in cur_meta:
                meta[key] = cur_meta[key]
            else:
                meta.pop(key, None)
        meta["resourceVersion"] = cur_meta["resourceVersion"]
        result["metadata"] = meta
        if "status" in current:
            result["status"] = current["status"]
        causes = validate_metadata(meta, namespaced=resource != "nodes")
        if resource == "pods" and _pod_spec_frozen_view(result.get("spec") or {}) != _pod_spec_frozen_view(
            current.get("spec") or {}
        ):
            causes.append(Cause("spec", "FieldValueForbidden", f"Forbidden: {_POD_SPEC_FORBIDDEN}"))
        if causes:
            raise invalid(kind, name, causes)
    if result == current:
        return None
    return result
