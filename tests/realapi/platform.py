"""The platform's objects, as the infra offline render writes them, applied to the real apiserver.

``render()`` runs ``python -m airflow_k8s.infra render --stack dev`` (one YAML file per object).  ``select()`` keeps
what gives the API server its behaviour for the scheduler - picked **by kind**, so objects the render gains or
loses do not matter:

========================================  =====================================================================
applied                                   Namespace, ResourceQuota, LimitRange, ServiceAccount, Role,
                                          RoleBinding, ClusterRole, ClusterRoleBinding, PriorityClass
skipped: no controller or kubelet here    Deployment (the tests run the scheduler themselves), Job, Service,
                                          NetworkPolicy (no network plugin), ConfigMap and Secret (read from
                                          the render, not the server)
applied by the fixture, bound             PersistentVolumeClaim (no provisioner: pre-bound to a volume of its
                                          own, :mod:`tests.realapi.nodes`)
turned into Nodes                         karpenter.sh NodePool (:mod:`tests.realapi.nodes`)
skipped: not served by this server       any apiVersion its discovery lacks: policy/v1 PodDisruptionBudget
                                          (Kubernetes 1.21+), and CRDs not installed here (karpenter.sh
                                          NodePool, monitoring.coreos.com PodMonitor)
========================================  =====================================================================

``relocate()`` moves the objects into a namespace of the test's own and gives cluster-scoped RBAC objects a
matching suffix, so runs (and other users of a shared server) never collide; PriorityClasses keep their names
(pods name them) and are applied idempotently.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from airflow_k8s.executor.contract.errors import AlreadyExists, KubeApiError, NotFound
from airflow_k8s.executor.kube.client import KubeClient

ROOT = Path(__file__).resolve().parents[2]

#: kind -> (API path prefix, plural, namespaced) of what is applied.
APPLIED: dict[str, tuple[str, str, bool]] = {
    "Namespace": ("/api/v1", "namespaces", False),
    "ResourceQuota": ("/api/v1", "resourcequotas", True),
    "LimitRange": ("/api/v1", "limitranges", True),
    "ServiceAccount": ("/api/v1", "serviceaccounts", True),
    "Role": ("/apis/rbac.authorization.k8s.io/v1", "roles", True),
    "RoleBinding": ("/apis/rbac.authorization.k8s.io/v1", "rolebindings", True),
    "ClusterRole": ("/apis/rbac.authorization.k8s.io/v1", "clusterroles", False),
    "ClusterRoleBinding": ("/apis/rbac.authorization.k8s.io/v1", "clusterrolebindings", False),
    "PriorityClass": ("/apis/scheduling.k8s.io/v1", "priorityclasses", False),
}
NOT_NEEDED = {
    "Deployment": "the tests run the scheduler process themselves",
    "Service": "no kube-proxy or endpoints controller needed",
    "PersistentVolumeClaim": "bound to a volume of its own by the fixture (no provisioner): tests/realapi/nodes.py",
    "NetworkPolicy": "no network plugin",
    "ConfigMap": "airflow.cfg and templates are read from the render",
    "Secret": "task pods never run a real container here",
    "Job": "the migration Job needs a real Airflow and database",
}


@dataclass
class Rendered:
    objects: list[dict[str, Any]]
    outputs: dict[str, Any]
    airflow_cfg: str
    templates: dict[str, str]


@dataclass
class Selection:
    apply: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, name, why)


def render(out: Path, stack: str = "dev") -> Rendered:
    """A stack (the dev one by default), rendered offline into ``out``."""
    completed = subprocess.run(
        [sys.executable, "-m", "airflow_k8s.infra", "render", "--stack", stack, "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"infra render failed:\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}")
    objects = [yaml.safe_load(path.read_text()) for path in sorted(out.glob("*.yaml"))]
    objects = [obj for obj in objects if isinstance(obj, dict) and obj.get("kind")]
    outputs = yaml.safe_load((out / "stack-outputs.json").read_text())
    config_map = _config_map(objects, outputs["airflowConfigMapName"])
    templates = _config_map(objects, outputs["podTemplatesConfigMapName"])
    return Rendered(objects, outputs, config_map["airflow.cfg"], templates)


def _config_map(objects: list[dict[str, Any]], name: str) -> dict[str, str]:
    for obj in objects:
        if obj["kind"] == "ConfigMap" and obj["metadata"]["name"] == name:
            return dict(obj.get("data") or {})
    raise LookupError(f"the render has no ConfigMap {name!r}")


def served_versions(admin: KubeClient) -> set[str]:
    """Every group/version the server serves (``v1``, ``apps/v1``, ...)."""
    versions = set(admin.request("GET", "/api").get("versions") or [])
    for group in admin.request("GET", "/apis").get("groups") or []:
        versions.update(v["groupVersion"] for v in group.get("versions") or [])
    return versions


def select(objects: list[dict[str, Any]], served: set[str]) -> Selection:
    selection = Selection()
    for obj in objects:
        kind, name = obj["kind"], obj["metadata"].get("name", "")
        if obj.get("apiVersion") not in served:
            selection.skipped.append((kind, name, f"{obj.get('apiVersion')} is not served by this server"))
        elif kind in APPLIED:
            selection.apply.append(obj)
        else:
            selection.skipped.append((kind, name, NOT_NEEDED.get(kind, "not needed for API behaviour")))
    return selection


def relocate(objects: list[dict[str, Any]], old: str, new: str, suffix: str) -> list[dict[str, Any]]:
    """Copies of ``objects`` moved from namespace ``old`` to ``new``; cluster RBAC names get ``-<suffix>``."""
    moved = []
    for original in objects:
        obj = copy.deepcopy(original)
        metadata = obj["metadata"]
        if obj["kind"] == "Namespace" and metadata["name"] == old:
            metadata["name"] = new
        if metadata.get("namespace") == old:
            metadata["namespace"] = new
        for subject in obj.get("subjects") or []:
            if subject.get("namespace") == old:
                subject["namespace"] = new
        if obj["kind"] in ("ClusterRole", "ClusterRoleBinding"):
            metadata["name"] = f"{metadata['name']}-{suffix}"
        if obj["kind"] == "ClusterRoleBinding" and obj["roleRef"]["kind"] == "ClusterRole":
            obj["roleRef"]["name"] = f"{obj['roleRef']['name']}-{suffix}"
        moved.append(obj)
    order = list(APPLIED)
    return sorted(moved, key=lambda o: order.index(o["kind"]) if o["kind"] in order else len(order))


def object_path(obj: dict[str, Any], *, collection: bool = False) -> str:
    prefix, plural, namespaced = APPLIED[obj["kind"]]
    metadata = obj["metadata"]
    base = f"{prefix}/namespaces/{metadata['namespace']}/{plural}" if namespaced else f"{prefix}/{plural}"
    return base if collection else f"{base}/{metadata['name']}"


def apply(admin: KubeClient, obj: dict[str, Any]) -> dict[str, Any]:
    """Create ``obj``, or replace the existing one (kept resourceVersion)."""
    try:
        return dict(admin.request("POST", object_path(obj, collection=True), body=obj))
    except AlreadyExists:
        existing = admin.request("GET", object_path(obj))
        body = copy.deepcopy(obj)
        body["metadata"]["resourceVersion"] = existing["metadata"]["resourceVersion"]
        return dict(admin.request("PUT", object_path(obj), body=body))


def delete(admin: KubeClient, obj: dict[str, Any]) -> None:
    with contextlib.suppress(NotFound):
        admin.request("DELETE", object_path(obj), body={"propagationPolicy": "Background"}, decode=False)


def service_account_token(admin: KubeClient, namespace: str, name: str, seconds: int = 3600) -> str:
    """A bound token of the ServiceAccount (TokenRequest; 1.20 also has the legacy token Secret)."""
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": seconds}}
    try:
        answer = admin.request("POST", f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token", body=body)
        return str(answer["status"]["token"])
    except KubeApiError as exc:
        if exc.status not in (404, 405):
            raise
    account = admin.request("GET", f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}")
    secret_name = (account.get("secrets") or [{}])[0]["name"]
    secret = admin.request("GET", f"/api/v1/namespaces/{namespace}/secrets/{secret_name}")
    return base64.b64decode(secret["data"]["token"]).decode()


def token_kubeconfig(path: Path, server: str, ca_file: Path, token: str, namespace: str) -> Path:
    """A kubeconfig that authenticates with ``token`` only (what the scheduler's pod would have)."""
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "kas", "cluster": {"server": server, "certificate-authority": str(ca_file)}}],
                "users": [{"name": "scheduler", "user": {"token": token}}],
                "contexts": [
                    {"name": "kas", "context": {"cluster": "kas", "user": "scheduler", "namespace": namespace}}
                ],
                "current-context": "kas",
            }
        )
    )
    path.chmod(0o600)
    return path
