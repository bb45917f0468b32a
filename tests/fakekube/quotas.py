"""ResourceQuota objects in the store: admission (check, then charge at CREATE), the quota controller's
recalculation, and a deterministic 409 Conflict knob.

How usage moves, as on a real server (arithmetic and wording in :mod:`.quota`):

* **Admission** reads each quota's ``status.used``; if the new pod would take a tracked resource past
  ``status.hard`` the create is refused with 403 Forbidden, otherwise ``used + the pod's usage`` is written to the
  quota (new resourceVersion, MODIFIED event) atomically with the pod create.  Refusals charge nothing.
* **Nothing gives usage back but a recalculation** (:meth:`Quotas.resync`): ``used`` becomes the sum over the
  namespace's pods that still count.  The quota controller recalculates ``quota_release_delay`` seconds after a
  pod in the namespace was deleted or finished (the cluster runs that timer on the kubelet's clock, so pause and
  flush apply to it); tests call ``cluster.resync_quotas()`` or ``POST /_fake/quotas/resync`` to do it now.
* ``quota_release_delay == 0`` keeps the fake kind: admission recalculates before every check, so a finished pod
  frees its share at once.
* **Conflicts**: with ``quota_conflict_every = N`` every Nth create that passes the quota check in a namespace is
  answered 409 Conflict on the quota and not stored; :meth:`Quotas.conflict_next` forces the next K.  Creates that
  charge no quota (no tracked resource) never conflict, as they write no quota.

Quota ``scopes``/``scopeSelector`` are not evaluated: every quota applies to every pod of its namespace.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from .config import ClusterConfig
from .errors import Cause, forbidden, invalid, stale_conflict
from .pods import new_metadata
from .quantity import QUANTITY_REGEX_TEXT, is_quantity
from .quota import Qty, add, exceeded_message, mask, missing_resources, parse_list, pod_usage, render_list, tracked
from .store import Store
from .watchers import DELETED, MODIFIED, WatchEvent

KIND = "resourcequotas"
CallLater = Callable[[float, Callable[[], None]], None]


def canonical_hard(quota: dict[str, Any]) -> dict[str, str]:
    """``spec.hard`` validated (422 like the API server) and printed canonically, as it is stored."""
    hard = (quota.get("spec") or {}).get("hard") or {}
    causes = [
        Cause(
            f"spec.hard[{name}]",
            "FieldValueInvalid",
            f"Invalid value: \"{value}\": quantities must match the regular expression '{QUANTITY_REGEX_TEXT}'",
        )
        for name, value in hard.items()
        if not is_quantity(value)
    ]
    if causes:
        raise invalid("ResourceQuota", quota["metadata"].get("name", ""), causes)
    return render_list(parse_list(hard))


class Quotas:
    def __init__(self, store: Store, config: Callable[[], ClusterConfig]) -> None:
        self.store = store
        self._config = config
        self._lock = threading.Lock()
        self._admitted: Counter[str] = Counter()  # namespace -> creates that passed the quota check
        self._forced: Counter[str] = Counter()  # namespace ("" = any) -> conflicts still to inject

    # ------------------------------------------------------------ objects
    def prepare(self, quota: dict[str, Any]) -> dict[str, Any]:
        """Normalise a ResourceQuota being written: canonical ``spec.hard``, ``status`` computed from the pods (what
        the quota controller does right after a quota is created or its limits change)."""
        hard = canonical_hard(quota)
        quota.setdefault("spec", {})["hard"] = hard
        quota["status"] = self._status(quota["metadata"]["namespace"], hard)
        return quota

    def _status(self, namespace: str, hard: dict[str, str]) -> dict[str, Any]:
        total: dict[str, Qty] = {}
        for stored in self.store.items("pods", namespace):
            total = add(total, pod_usage(stored.obj))
        used = {name: total.get(name, Qty(Decimal(0))) for name in hard}
        return {"hard": dict(hard), "used": render_list(used)}

    def set_pod_quota(self, namespace: str, pods: int | None, name: str = "pod-quota") -> None:
        """Shorthand: a quota with only ``hard.pods`` (``None`` removes it)."""
        with self.store.lock:
            exists = self.store.get(KIND, namespace, name) is not None
            if pods is None:
                if exists:
                    self.store.delete(KIND, namespace, name)
                return
            if exists:

                def change(quota: dict[str, Any]) -> dict[str, Any]:
                    quota["spec"] = {"hard": {"pods": str(pods)}}
                    return self.prepare(quota)

                self.store.update(KIND, namespace, name, change)
                return
            obj = {"kind": "ResourceQuota", "apiVersion": "v1", "spec": {"hard": {"pods": str(pods)}}}
            obj["metadata"] = new_metadata({"name": name}, namespace)
            self.store.create(KIND, self.prepare(obj))

    def describe(self) -> dict[str, dict[str, Any]]:
        """``{namespace: {quota name: status}}``."""
        out: dict[str, dict[str, Any]] = {}
        for stored in self.store.items(KIND):
            meta = stored.obj["metadata"]
            out.setdefault(meta["namespace"], {})[meta["name"]] = stored.obj.get("status") or {}
        return out

    # --------------------------------------------------------- controller
    def resync(self, namespace: str | None = None) -> int:
        """Recalculate ``status.used`` of every quota (in ``namespace``) from the pods; returns how many changed."""
        changed = 0
        with self.store.lock:
            for stored in self.store.items(KIND, namespace):
                meta = stored.obj["metadata"]
                hard = canonical_hard(stored.obj)
                status = self._status(meta["namespace"], hard)

                def write(quota: dict[str, Any], status: dict[str, Any] = status) -> dict[str, Any] | None:
                    if quota.get("status") == status:
                        return None
                    quota["status"] = status
                    return quota

                if self.store.update(KIND, meta["namespace"], meta["name"], write) is not stored:
                    changed += 1
        return changed

    def has_quota(self, namespace: str) -> bool:
        return bool(self.store.items(KIND, namespace))

    # ---------------------------------------------------------- conflicts
    def conflict_next(self, times: int = 1, namespace: str | None = None) -> None:
        """Answer the next ``times`` quota-charging creates (in ``namespace``, or anywhere) with 409 Conflict."""
        with self._lock:
            self._forced[namespace or ""] += times

    def _conflict_due(self, namespace: str) -> bool:
        every = self._config().quota_conflict_every
        with self._lock:
            self._admitted[namespace] += 1
            for key in (namespace, ""):
                if self._forced[key] > 0:
                    self._forced[key] -= 1
                    return True
            return bool(every) and self._admitted[namespace] % every == 0

    # ---------------------------------------------------------- admission
    def admit(self, namespace: str, name: str, pod: dict[str, Any]) -> Callable[[Store], None] | None:
        """A callback for :meth:`Store.create` (runs under the store lock), or None if no quota applies."""
        if not self.has_quota(namespace):
            return None

        def check_and_charge(store: Store) -> None:
            if self._config().quota_release_delay <= 0:
                self.resync(namespace)
            delta = {res: qty for res, qty in pod_usage(pod).items() if qty.value != 0}
            charges: list[tuple[str, dict[str, str]]] = []
            for stored in store.items(KIND, namespace):
                quota_name, status = stored.obj["metadata"]["name"], stored.obj.get("status") or {}
                hard = parse_list(status.get("hard") or (stored.obj.get("spec") or {}).get("hard"))
                names = tracked(hard)
                if not names:
                    continue
                missing = missing_resources(names, pod)
                if missing:
                    raise forbidden("pods", name, f"failed quota: {quota_name}: must specify {','.join(missing)}")
                requested = mask(delta, names)
                if not requested:
                    continue
                used = parse_list(status.get("used"))
                refusal = exceeded_message(quota_name, hard, used, requested)
                if refusal is not None:
                    raise forbidden("pods", name, refusal)
                charges.append((quota_name, render_list(add(used, requested))))
            if not charges:
                return
            if self._conflict_due(namespace):
                raise stale_conflict(KIND, charges[0][0])
            for quota_name, new_used in charges:
                store.update(KIND, namespace, quota_name, _set_used(new_used))

        return check_and_charge


class QuotaController:
    """Releases quota usage the way the quota controller's replenishment does: ``quota_release_delay`` seconds
    after a pod in a namespace with quotas is deleted or finishes, that namespace's quotas are recalculated.
    ``observe`` is a kubelet pod hook; ``call_later`` puts the recalculation on the simulation's clock."""

    def __init__(self, quotas: Quotas, config: Callable[[], ClusterConfig], call_later: CallLater) -> None:
        self.quotas = quotas
        self._config = config
        self._call_later = call_later
        self._pending: set[str] = set()  # namespaces with a recalculation queued

    def observe(self, event: WatchEvent) -> None:
        namespace = event.new.obj["metadata"].get("namespace", "")
        ended = event.type == DELETED or (
            event.type == MODIFIED
            and event.prev is not None
            and (event.new.obj.get("status") or {}).get("phase") in ("Succeeded", "Failed")
            and (event.prev.obj.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
        )
        delay = self._config().quota_release_delay
        if not ended or math.isinf(delay) or namespace in self._pending or not self.quotas.has_quota(namespace):
            return
        self._pending.add(namespace)

        def release() -> None:
            self._pending.discard(namespace)
            self.quotas.resync(namespace)

        self._call_later(delay, release)


def _set_used(used: dict[str, str]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def mutate(quota: dict[str, Any]) -> dict[str, Any]:
        quota.setdefault("status", {})["used"] = used
        return quota

    return mutate
