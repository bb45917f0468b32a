"""Highly available control plane: 2+ api-servers and active-active schedulers (infra side).

What Kubernetes does with these objects - the disruption budget refusing the second eviction,
the Deployment rolling schedulers one at a time - is checked against a real kube-apiserver and
its controllers in ``tests/realapi/test_platform_objects.py``.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from airflow_k8s.executor.contract.config_loader import parse_config
from airflow_k8s.infra.config.args import ControlPlaneSpec, ExecutorSettings, PlatformConfig
from airflow_k8s.infra.config.quota import demand, pod_demand, quota_problems
from airflow_k8s.infra.config.stack_config import StackConfigError, parse_stack_config

from .conftest import objects, one

ONE_AT_A_TIME = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}
SURGE = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
DB = {"databaseUrl"}
ROOMY = {"quotaRequestsCpu": "32", "quotaLimitsCpu": "64", "quotaRequestsMemory": "96Gi", "quotaLimitsMemory": "192Gi"}


def ha(schedulers: int = 2, api_servers: int = 2, **executor: int) -> PlatformConfig:
    base = PlatformConfig()
    return replace(
        base,
        control_plane=replace(base.control_plane, scheduler_replicas=schedulers, api_server_replicas=api_servers),
        executor=replace(base.executor, **executor),
    )


def test_ha_schedulers_roll_one_at_a_time_and_a_single_one_is_recreated(stack) -> None:
    single = one(stack(), "Deployment", "airflow-scheduler")
    assert single["spec"]["replicas"] == 1 and single["spec"]["strategy"] == {"type": "Recreate"}
    evaluation = stack(schedulerReplicas=3, apiServerReplicas=2, quotaPods=24, **ROOMY)
    scheduler = one(evaluation, "Deployment", "airflow-scheduler")
    assert scheduler["spec"]["replicas"] == 3
    assert scheduler["spec"]["strategy"] == ONE_AT_A_TIME  # never a 4th scheduler, never a surge pod's quota
    api = one(evaluation, "Deployment", "airflow-api-server")
    assert api["spec"]["replicas"] == 2 and api["spec"]["strategy"] == SURGE  # the Execution API never goes away
    for name in ("airflow-dag-processor", "airflow-triggerer"):
        assert one(evaluation, "Deployment", name)["spec"]["strategy"] == {"type": "Recreate"}


def test_every_role_has_a_budget_that_evicts_one_pod_at_a_time(stack) -> None:
    evaluation = stack(schedulerReplicas=2, apiServerReplicas=2, **ROOMY)
    deployments = {d["metadata"]["name"]: d for d in objects(evaluation, "Deployment")}
    budgets = {p["metadata"]["name"]: p["spec"] for p in objects(evaluation, "PodDisruptionBudget")}
    assert set(budgets) == set(deployments)
    for name, spec in budgets.items():
        assert spec["maxUnavailable"] == 1 and spec["selector"] == deployments[name]["spec"]["selector"]


@pytest.mark.parametrize(("schedulers", "share_max", "share_min"), [(1, 8, 3), (2, 4, 3), (3, 3, 3)])
def test_schedulers_share_workerpodsmax_not_min(stack, schedulers: int, share_max: int, share_min: int) -> None:
    """airflow.cfg is shared and each executor caps its own pods: each gets ceil(N_max / k); N_min is the
    namespace's, kept once by the keeper scheduler (docs/executor.md), so it is never split."""
    evaluation = stack(schedulerReplicas=schedulers, workerPodsMin=3, quotaPods=30, **ROOMY)
    cfg = one(evaluation, "ConfigMap", "airflow-config")["data"]["airflow.cfg"]
    config = parse_config(cfg, environ={})
    assert (config.worker_pods_max, config.worker_pods_min) == (share_max, share_min)


def test_the_quota_counts_every_scheduler_and_their_shares() -> None:
    one_scheduler, three = PlatformConfig(), ha(schedulers=3, api_servers=1)
    scheduler_cpu = Decimal("0.51")  # 500m + its log-groomer's 10m
    # 8 task pods become 3 x ceil(8/3) = 9: one more heavy pod (2 CPU requested), two more schedulers
    assert demand(three, "cpu", "requests")[0] - demand(one_scheduler, "cpu", "requests")[0] == 2 + 2 * scheduler_cpu
    assert pod_demand(three)[0] == pod_demand(one_scheduler)[0] + 1 + 2
    assert "schedulerReplicas 3 x 3 (workerPodsMax 8 shared)" in pod_demand(three)[1]
    problems = {p.key: p.reason for p in quota_problems(three)}
    assert "scheduler 3 x" in problems["quotaRequestsCpu"] and "quotaPods" not in problems


def test_an_api_server_per_replica_plus_its_surge_pod_is_counted() -> None:
    two = ha(schedulers=1, api_servers=2)
    assert pod_demand(two)[0] == pod_demand(PlatformConfig())[0] + 1
    assert "apiServer 3" in pod_demand(two)[1]


def test_scheduler_replicas_are_bounded_and_need_a_task_pod_each() -> None:
    for bad in ("0", "11"):
        with pytest.raises(
            StackConfigError, match=f"airflow-k8s:schedulerReplicas = '{bad}': must be between 1 and 10"
        ):
            parse_stack_config({"schedulerReplicas": bad}, secrets_set=DB)
    with pytest.raises(StackConfigError, match=r"airflow-k8s:workerPodsMax = 2: is shared by .*= 3 schedulers"):
        parse_stack_config({"schedulerReplicas": "3", "workerPodsMax": "2"}, secrets_set=DB)


def test_one_api_server_is_allowed_with_a_warning_naming_the_key() -> None:
    (warning,) = [w for w in parse_stack_config({}, secrets_set=DB).warnings if "apiServerReplicas" in w]
    assert "production stacks run 2 or more" in warning
    two = parse_stack_config({"apiServerReplicas": "2", "quotaPods": "21"}, secrets_set=DB)
    assert not [w for w in two.warnings if "apiServerReplicas" in w]


def test_per_scheduler_share_rounds_up() -> None:
    assert [ExecutorSettings.per_scheduler(8, k) for k in (1, 2, 3, 4, 8)] == [8, 4, 3, 2, 1]
    assert ExecutorSettings.per_scheduler(0, 3) == 0
    assert ControlPlaneSpec().scheduler_replicas == 1


def test_airflows_limits_follow_each_schedulers_share_and_the_databases_total(stack) -> None:
    """parallelism is per scheduler; the default pool and max_active_tasks_per_dag are counted across all."""
    import configparser

    evaluation = stack(schedulerReplicas=2, workerPodsMax=8, **ROOMY)
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read_string(one(evaluation, "ConfigMap", "airflow-config")["data"]["airflow.cfg"])
    assert cfg["core"]["parallelism"] == "4" and cfg["scheduler"]["max_tis_per_query"] == "4"
    assert cfg["core"]["default_pool_task_slot_count"] == cfg["core"]["max_active_tasks_per_dag"] == "8"
