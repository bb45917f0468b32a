"""Plain namespaced objects: ResourceQuotas, ConfigMaps and Secrets (create, get, list/watch, put, patch, delete).

They have no controllers of their own beyond what the API server does on write:

* **ResourceQuota**: ``spec.hard`` is validated and printed canonically, and ``status`` (``hard`` and ``used``) is
  computed at once from the namespace's pods (see :mod:`.quotas` for how usage moves afterwards).  ``/status``
  is served; writing it by hand is allowed, as for a real quota controller.
* **Secret**: ``stringData`` is merged into base64 ``data`` and dropped, ``type`` defaults to ``Opaque``; ``data``
  values must be base64 (422 otherwise).
* **ConfigMap**: stored as given.

Deletes are immediate (no finalizers) and answer what the real server does: the deleted ResourceQuota, a
``Success`` Status for ConfigMaps and Secrets.
The process kubelet mode reads Secrets and ConfigMaps for ``env``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .api_pods import apply_request_patch
from .errors import Cause, bad_request, invalid, not_found
from .listing import list_or_watch
from .pods import new_metadata
from .routes import Request, Response, Router, WatchResponse
from .updates import finalize_update
from .validation import validate_metadata

if TYPE_CHECKING:
    from .cluster import Cluster

Prepare = Callable[[dict[str, Any]], dict[str, Any]]


def prepare_secret(secret: dict[str, Any]) -> dict[str, Any]:
    data = dict(secret.get("data") or {})
    bad = []
    for key, value in data.items():
        try:
            base64.b64decode(str(value), validate=True)
        except (binascii.Error, ValueError):
            bad.append(Cause(f"data[{key}]", "FieldValueInvalid", "Invalid value: illegal base64 data"))
    if bad:
        raise invalid("Secret", secret["metadata"].get("name", ""), bad)
    for key, value in (secret.pop("stringData", None) or {}).items():
        data[key] = base64.b64encode(str(value).encode()).decode()
    secret["data"] = data
    secret.setdefault("type", "Opaque")
    return secret


class ObjectApi:
    """CRUD for one namespaced resource; ``prepare`` normalises every object written through the main resource."""

    def __init__(
        self,
        cluster: Cluster,
        resource: str,
        kind: str,
        prepare: Prepare | None = None,
        *,
        returns_deleted: bool = False,
    ) -> None:
        self.cluster, self.store = cluster, cluster.store
        self.returns_deleted = returns_deleted
        self.resource, self.kind = resource, kind
        self._prepare = prepare or (lambda obj: obj)

    def register(self, router: Router) -> None:
        base = f"/api/v1/namespaces/{{namespace}}/{self.resource}"
        router.add(base, self.resource, GET=self.list, POST=self.create)
        router.add(f"{base}/{{name}}", self.resource, GET=self.get, PUT=self.put, PATCH=self.patch, DELETE=self.delete)
        router.add(f"/api/v1/{self.resource}", self.resource, GET=self.list)

    def register_status(self, router: Router) -> None:
        base = f"/api/v1/namespaces/{{namespace}}/{self.resource}/{{name}}/status"
        status = f"{self.resource}/status"
        router.add(base, status, GET=self.get, PUT=self.put_status, PATCH=self.patch_status)

    def list(self, req: Request) -> Response | WatchResponse:
        ns = req.params.get("namespace")
        return list_or_watch(self.store, self.cluster.config, req, self.resource, self.kind, ns)

    def create(self, req: Request) -> Response:
        ns, body = req.params["namespace"], req.json()
        if not isinstance(body, dict):
            raise bad_request("the object provided is unrecognized (not a JSON object)")
        meta = dict(body.get("metadata") or {})
        if meta.get("namespace") not in (None, "", ns):
            raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
        obj = {**body, "kind": self.kind, "apiVersion": "v1", "metadata": new_metadata(meta, ns)}
        causes = validate_metadata(obj["metadata"])
        if causes:
            raise invalid(self.kind, str(meta.get("name") or ""), causes)
        with self.store.lock:
            return Response(201, self.store.create(self.resource, self._prepare(obj)).raw)

    def get(self, req: Request) -> Response:
        stored = self.store.get(self.resource, req.params["namespace"], req.params["name"])
        if stored is None:
            raise not_found(self.resource, req.params["name"])
        return Response(200, stored.raw)

    def _update(self, req: Request, new: Callable[[dict[str, Any]], Any], *, status_only: bool) -> Response:
        def mutate(current: dict[str, Any]) -> dict[str, Any] | None:
            result = finalize_update(self.resource, self.kind, current, new(current), status_only=status_only)
            return result if result is None or status_only else self._prepare(result)

        with self.store.lock:
            stored = self.store.update(self.resource, req.params["namespace"], req.params["name"], mutate)
        return Response(200, stored.raw)

    def put(self, req: Request) -> Response:
        body = req.json()
        return self._update(req, lambda current: body, status_only=False)

    def patch(self, req: Request) -> Response:
        return self._update(req, lambda current: apply_request_patch(req, current), status_only=False)

    def put_status(self, req: Request) -> Response:
        body = req.json()
        return self._update(req, lambda current: body, status_only=True)

    def patch_status(self, req: Request) -> Response:
        return self._update(req, lambda current: apply_request_patch(req, current), status_only=True)

    def delete(self, req: Request) -> Response:
        ns, name = req.params["namespace"], req.params["name"]
        if self.store.get(self.resource, ns, name) is None:
            raise not_found(self.resource, name)
        gone = self.store.delete(self.resource, ns, name)
        if self.returns_deleted:
            return Response(200, gone.raw)
        details = {"name": name, "kind": self.resource, "uid": gone.uid}
        status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}
        return Response.of(status)


def register_objects(router: Router, cluster: Cluster) -> None:
    quotas = ObjectApi(
        cluster, "resourcequotas", "ResourceQuota", cluster.admission.quotas.prepare, returns_deleted=True
    )
    quotas.register(router)
    quotas.register_status(router)
    ObjectApi(cluster, "configmaps", "ConfigMap").register(router)
    ObjectApi(cluster, "secrets", "Secret", prepare_secret).register(router)
