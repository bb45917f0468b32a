"""Opt-in: what Kubernetes itself does with the platform's rendered objects (``-m realapi``, 1.20 with its controllers).

The production example stack (``Pulumi.prod.yaml``) is rendered offline; its Deployments, disruption budgets,
migration Job and db-clean CronJob are created in the test's namespace of a real kube-apiserver running its
controller-manager (deployment, replicaset, disruption, job controllers), with the stand-in kubelet running pods:

* the api-server's budget **blocks** the second eviction while a replacement is not ready, and lets the next
  one through once it is; with one replica it blocks nothing - why production runs two;
* HA schedulers roll one at a time: during a rollout there are never more than two scheduler pods;
* a template-only change rolls the scheduler, not the api-server (only the scheduler's Deployment gets a new
  ReplicaSet);
* a failed migration Job is what ``pulumi.com/replaceUnready`` replaces: its real status is "unready";
* the db-clean CronJob is accepted by the API server's validation.

Adaptations to 1.20, in this file only: ``policy/v1`` PodDisruptionBudget -> ``policy/v1beta1`` (without
``unhealthyPodEvictionPolicy``, 1.26+), ``batch/v1`` CronJob -> ``batch/v1beta1`` (without ``timeZone``, 1.27+),
and the failing Job's pod carries the stand-in kubelet's ``fakekube/outcome: fail`` (its container "fails").
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from airflow_k8s.executor.contract.errors import Conflict, KubeApiError
from airflow_k8s.infra.render.replacement import unready_replacement
from tests.realapi import platform as plat
from tests.realapi.conftest import Platform
from tests.realapi.kubelet import NodePool, StandInKubelet

pytestmark = pytest.mark.realapi

PATHS = {
    "Deployment": "/apis/apps/v1/namespaces/{ns}/deployments",
    "PodDisruptionBudget": "/apis/policy/v1beta1/namespaces/{ns}/poddisruptionbudgets",
    "Job": "/apis/batch/v1/namespaces/{ns}/jobs",
    "CronJob": "/apis/batch/v1beta1/namespaces/{ns}/cronjobs",
}
TIMEOUT = 180.0


@pytest.fixture(scope="module")
def prod(tmp_path_factory: pytest.TempPathFactory) -> plat.Rendered:
    return plat.render(tmp_path_factory.mktemp("render-prod"), stack="prod")


@pytest.fixture
def nodes(platform: Platform) -> Iterator[StandInKubelet]:
    """A stand-in kubelet for the platform nodes the production example pins its pods to."""
    client = platform.kas.admin(pool_size=8)
    pool = NodePool(
        f"kas-platform-{platform.suffix}",
        {"node-role.example.com/platform": "true"},
        ({"key": "dedicated", "value": "platform", "effect": "NoSchedule"},),
    )
    standin = StandInKubelet(client, platform.namespace, [pool]).start()
    yield standin
    standin.stop()
    client.close()
    assert standin.errors == [], standin.errors[:5]


def the(rendered: plat.Rendered, kind: str, name: str) -> dict[str, Any]:
    (found,) = [o for o in rendered.objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return copy.deepcopy(found)


def for_120(obj: dict[str, Any], namespace: str) -> dict[str, Any]:
    """The object in ``namespace``, in the API versions Kubernetes 1.20 serves (module docstring)."""
    obj = copy.deepcopy(obj)
    obj["metadata"]["namespace"] = namespace
    if obj["kind"] == "PodDisruptionBudget":
        obj["apiVersion"] = "policy/v1beta1"
        obj["spec"].pop("unhealthyPodEvictionPolicy", None)
    if obj["kind"] == "CronJob":
        obj["apiVersion"] = "batch/v1beta1"
        obj["spec"].pop("timeZone", None)
    return obj


def create(platform: Platform, obj: dict[str, Any]) -> dict[str, Any]:
    path = PATHS[obj["kind"]].format(ns=platform.namespace)
    return dict(platform.admin.request("POST", path, body=for_120(obj, platform.namespace)))


def replace(platform: Platform, obj: dict[str, Any]) -> None:
    """PUT ``obj`` over the live object, read-modify-write: the controllers update its status meanwhile."""
    path = PATHS[obj["kind"]].format(ns=platform.namespace) + f"/{obj['metadata']['name']}"
    body = for_120(obj, platform.namespace)
    for _ in range(20):
        body["metadata"]["resourceVersion"] = platform.admin.request("GET", path)["metadata"]["resourceVersion"]
        try:
            platform.admin.request("PUT", path, body=body)
            return
        except Conflict:
            continue  # a status update slipped in between: read again
    raise AssertionError(f"could not replace {path}: 20 conflicts in a row")


def wait(predicate: Callable[[], Any], what: str, timeout: float = TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.2)


def pods(platform: Platform, component: str) -> list[dict[str, Any]]:
    selector = f"app.kubernetes.io/component={component}"
    return list(platform.admin.list_pods(platform.namespace, label_selector=selector).items)


def ready(pod: dict[str, Any]) -> bool:
    if pod["metadata"].get("deletionTimestamp"):
        return False
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def budget_allows(platform: Platform, name: str, allowed: int) -> bool:
    path = PATHS["PodDisruptionBudget"].format(ns=platform.namespace) + f"/{name}"
    status = platform.admin.request("GET", path).get("status") or {}
    return status.get("disruptionsAllowed") == allowed and status.get("observedGeneration") is not None


def evict(platform: Platform, pod: dict[str, Any]) -> int:
    name = pod["metadata"]["name"]
    body = {
        "apiVersion": "policy/v1beta1",
        "kind": "Eviction",
        "metadata": {"name": name, "namespace": platform.namespace},
    }
    try:
        platform.admin.request("POST", f"/api/v1/namespaces/{platform.namespace}/pods/{name}/eviction", body=body)
    except KubeApiError as exc:
        return exc.status
    return 201


def test_the_api_server_budget_blocks_a_drain_until_the_replacement_is_ready(
    platform: Platform, nodes: StandInKubelet, prod: plat.Rendered
) -> None:
    deployment, budget = (
        the(prod, "Deployment", "airflow-api-server"),
        the(prod, "PodDisruptionBudget", "airflow-api-server"),
    )
    assert deployment["spec"]["replicas"] == 2
    create(platform, budget)
    create(platform, deployment)
    wait(lambda: sum(map(ready, pods(platform, "api-server"))) == 2, "two ready api-servers")
    wait(lambda: budget_allows(platform, "airflow-api-server", 1), "the budget to allow one disruption")
    nodes.hold()  # a drained cluster: the replacement cannot start yet
    first, second = pods(platform, "api-server")
    assert evict(platform, first) == 201
    assert evict(platform, second) == 429  # the UI and the Execution API stay up
    assert ready(
        platform.admin.request("GET", f"/api/v1/namespaces/{platform.namespace}/pods/{second['metadata']['name']}")
    )
    nodes.resume()  # the replacement starts and becomes ready: the drain may go on
    wait(lambda: sum(map(ready, pods(platform, "api-server"))) == 2, "the replacement to be ready")
    wait(lambda: evict(platform, second) == 201, "the budget to let the next eviction through")


def test_one_api_server_is_evicted_without_resistance(
    platform: Platform, nodes: StandInKubelet, prod: plat.Rendered
) -> None:
    deployment, budget = (
        the(prod, "Deployment", "airflow-api-server"),
        the(prod, "PodDisruptionBudget", "airflow-api-server"),
    )
    deployment["spec"]["replicas"] = 1
    create(platform, budget)
    create(platform, deployment)
    wait(lambda: sum(map(ready, pods(platform, "api-server"))) == 1, "a ready api-server")
    wait(lambda: budget_allows(platform, "airflow-api-server", 1), "the budget's status")
    nodes.hold()
    (only,) = pods(platform, "api-server")
    assert evict(platform, only) == 201  # the only pod goes: nothing serves the Execution API now
    assert not any(map(ready, pods(platform, "api-server")))
    nodes.resume()


def test_ha_schedulers_roll_one_at_a_time_and_a_template_change_leaves_the_api_server_alone(
    platform: Platform, nodes: StandInKubelet, prod: plat.Rendered
) -> None:
    scheduler, api = the(prod, "Deployment", "airflow-scheduler"), the(prod, "Deployment", "airflow-api-server")
    create(platform, scheduler)
    create(platform, api)
    wait(lambda: sum(map(ready, pods(platform, "scheduler"))) == 2, "two ready schedulers")
    wait(lambda: sum(map(ready, pods(platform, "api-server"))) == 2, "two ready api-servers")
    before = {p["metadata"]["labels"]["pod-template-hash"] for p in pods(platform, "api-server")}
    # a pod template changed: the render changes the scheduler's config digest and nothing of the api-server's
    # (tests/infra/test_rollout.py); here Kubernetes acts on exactly that
    new_scheduler = copy.deepcopy(scheduler)
    annotations = new_scheduler["spec"]["template"]["metadata"]["annotations"]
    annotations["airflow-k8s/config-sha256"] = "0" * 64  # what a template-only change does to the scheduler
    replace(platform, new_scheduler)
    replace(platform, api)  # unchanged: a no-op for the Deployment controller
    peak = 0
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        current = [p for p in pods(platform, "scheduler") if not p["metadata"].get("deletionTimestamp")]
        peak = max(peak, len(current))
        hashes = {p["metadata"]["annotations"].get("airflow-k8s/config-sha256") for p in current}
        if hashes == {"0" * 64} and sum(map(ready, current)) == 2:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the schedulers did not roll")
    assert peak <= 2  # maxSurge 0: never a third scheduler, never its quota
    assert {p["metadata"]["labels"]["pod-template-hash"] for p in pods(platform, "api-server")} == before


def test_a_failed_migration_job_is_unready_and_replaced_by_the_next_up(
    platform: Platform, nodes: StandInKubelet, prod: plat.Rendered
) -> None:
    job = the(prod, "Job", "airflow-db-migrate")
    assert job["metadata"]["annotations"]["pulumi.com/replaceUnready"] == "true"
    failing = copy.deepcopy(job)
    failing["spec"]["template"]["metadata"].setdefault("annotations", {})["fakekube/outcome"] = "fail"
    create(platform, failing)
    path = PATHS["Job"].format(ns=platform.namespace) + "/airflow-db-migrate"

    def failed() -> dict[str, Any] | None:
        live = platform.admin.request("GET", path)
        conditions = (live.get("status") or {}).get("conditions") or []
        return live if any(c["type"] == "Failed" and c["status"] == "True" for c in conditions) else None

    live = wait(failed, "the Job to fail after its retries (backoffLimit 2)", timeout=300)
    assert unready_replacement(job, live) is not None
    assert "BackoffLimitExceeded" in unready_replacement(job, live)


def test_the_db_clean_cronjob_is_valid_for_the_api_server(platform: Platform, prod: plat.Rendered) -> None:
    cronjob = the(prod, "CronJob", "airflow-db-clean")
    created = create(platform, cronjob)
    assert created["spec"]["schedule"] == cronjob["spec"]["schedule"]
    assert created["spec"]["concurrencyPolicy"] == "Forbid"
    bad = copy.deepcopy(cronjob)
    bad["metadata"]["name"] = "airflow-db-clean-bad"
    bad["spec"]["schedule"] = "every night"
    with pytest.raises(KubeApiError) as info:
        create(platform, bad)
    assert info.value.status == 422
