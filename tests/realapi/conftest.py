"""Fixtures of the real-apiserver tier: the server, the real kube-scheduler, the platform's rendered objects in a
namespace of the test's own (the DAGs claim bound to a volume), Nodes built from the rendered NodePools, a token
of the scheduler's ServiceAccount, and a stand-in kubelet that runs what kube-scheduler binds.

The tier is opt-in (``pytest -m realapi``) and skips, saying why, when the server is not built.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from airflow_k8s.executor.contract import quantity
from airflow_k8s.executor.contract.config import ExecutorConfig
from airflow_k8s.executor.contract.config_loader import parse_config
from airflow_k8s.executor.contract.config_render import render_config
from airflow_k8s.executor.kube.client import KubeClient
from tests.realapi import nodes
from tests.realapi import platform as plat
from tests.realapi.apiserver import RealApiServer
from tests.realapi.kubelet import NodePool, StandInKubelet
from tests.realapi.scheduler import KubeScheduler


@pytest.fixture(scope="session")
def kas() -> Iterator[RealApiServer]:
    server = RealApiServer.from_environment()
    why = server.missing()
    if why is not None:
        pytest.skip(why)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def kube_scheduler(kas: RealApiServer) -> Iterator[KubeScheduler]:
    scheduler = KubeScheduler(kas)
    why = scheduler.missing()
    if why is not None:
        pytest.skip(why)
    scheduler.start()
    yield scheduler
    scheduler.stop()


@pytest.fixture(scope="session")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> plat.Rendered:
    if importlib.util.find_spec("pulumi") is None:
        pytest.skip("the infra render needs Pulumi: run this tier with the project's .venv (make .venv/.installed)")
    return plat.render(tmp_path_factory.mktemp("render"))


@dataclass
class Platform:
    """The platform's objects, applied in ``namespace``; what a test needs to run the scheduler there."""

    kas: RealApiServer
    admin: KubeClient
    namespace: str
    suffix: str
    applied: list[dict[str, Any]]
    skipped: list[tuple[str, str, str]]
    scheduler_account: str
    scheduler_kubeconfig: Path
    templates_dir: Path
    config: ExecutorConfig
    tmp: Path
    node_pools: list[NodePool]

    def quota(self) -> dict[str, Any]:
        """The platform's ResourceQuota (the first the render has), as the server holds it now."""
        for obj in self.applied:
            if obj["kind"] == "ResourceQuota":
                return dict(self.admin.request("GET", plat.object_path(obj)))
        raise LookupError("the render has no ResourceQuota")

    def set_quota(self, hard: dict[str, str]) -> dict[str, Any]:
        quota = self.quota()
        quota["spec"]["hard"] = dict(hard)
        return dict(self.admin.request("PUT", plat.object_path(quota), body=quota))

    def room_for(self, pods: int, tier: str | None = None) -> dict[str, str]:
        """Quota limits that hold exactly ``pods`` pods of ``tier`` (default: the default tier) at once."""
        shape = self.config.tier(tier or self.config.default_tier)
        hard = {"pods": str(pods + 2)}  # pods never the limit: the compute resources are
        for key, value in (
            ("requests.cpu", shape.request_cpu),
            ("limits.cpu", shape.limit_cpu),
            ("requests.memory", shape.request_memory),
            ("limits.memory", shape.limit_memory),
        ):
            if value is not None:
                name = key.split(".", 1)[1]
                hard[key] = quantity.format_for_resource(name, quantity.for_resource(name, value) * pods)
        return hard

    def write_config(self, **changes: Any) -> Path:
        path = self.tmp / f"airflow-{uuid.uuid4().hex[:6]}.cfg"
        path.write_text(render_config(dataclasses.replace(self.config, **changes)))
        return path

    def pools(self) -> list[NodePool]:
        """One Node per rendered NodePool (its template's labels and taints, its limits as capacity)."""
        return list(self.node_pools)


@pytest.fixture
def platform(kas: RealApiServer, rendered: plat.Rendered, tmp_path: Path) -> Iterator[Platform]:
    admin = kas.admin(pool_size=16)
    suffix = uuid.uuid4().hex[:6]
    old = rendered.outputs["namespace"]
    namespace = f"{old}-{suffix}"[:63]
    selection = plat.select(rendered.objects, plat.served_versions(admin))
    objects = plat.relocate(selection.apply, old, namespace, suffix)
    for obj in objects:
        plat.apply(admin, obj)
    claims = plat.relocate(
        [o for o in rendered.objects if o["kind"] == "PersistentVolumeClaim"], old, namespace, suffix
    )
    volumes = []
    for claim in claims:  # the DAGs claim every task pod mounts, bound as a volume binder would bind it
        bound, volume = nodes.bound_claim(claim, suffix)
        nodes.bind(admin, bound, volume)
        volumes.append(volume)
    account = rendered.outputs["schedulerServiceAccountName"]
    token = plat.service_account_token(admin, namespace, account)
    kubeconfig = plat.token_kubeconfig(tmp_path / "scheduler.kubeconfig", kas.url, kas.ca_file, token, namespace)
    templates = tmp_path / "templates"
    templates.mkdir()
    for name, text in rendered.templates.items():
        (templates / name).write_text(text)
    base = parse_config(rendered.airflow_cfg, source="rendered airflow.cfg", environ={})
    config = dataclasses.replace(
        base,
        namespace=namespace,
        in_cluster=False,  # the scheduler runs here, with the ServiceAccount's token in a kubeconfig
        task_intake_dir=str(tmp_path / "spool"),
        worker_pods_max=8,
        pod_creation_timeout=120,
        max_pod_pending_timeout=120,
        watch_timeout_seconds=30,
        kube_request_timeout=30,
    )
    pools = nodes.pools_from_render(rendered.objects, suffix)
    yield Platform(
        kas, admin, namespace, suffix, objects, selection.skipped, account, kubeconfig, templates, config, tmp_path,
        pools,
    )  # fmt: skip
    for volume in volumes:
        nodes.unbind(admin, volume)
    for obj in reversed(objects):
        if obj["kind"] in ("Namespace", "ClusterRole", "ClusterRoleBinding"):  # the namespace takes the rest
            plat.delete(admin, obj)
    admin.close()


@pytest.fixture
def kubelet(platform: Platform, kube_scheduler: KubeScheduler) -> Iterator[StandInKubelet]:
    """Runs the pods kube-scheduler binds to the Nodes of the rendered NodePools (it binds none itself)."""
    client = platform.kas.admin(pool_size=8)
    standin = StandInKubelet(client, platform.namespace, platform.pools(), bind=False).start()
    yield standin
    standin.stop()
    client.close()
    assert standin.errors == [], standin.errors[:5]
    assert kube_scheduler.alive(), "kube-scheduler died during the test"
