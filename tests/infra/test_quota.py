"""The ResourceQuota must hold what may run at once - on requests AND limits - or nothing deploys."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pulumi
import pytest

from airflow_k8s.infra.config.args import ExecutorSettings, PlatformConfig, QuotaSpec
from airflow_k8s.infra.config.quota import demand, pod_demand, quota_problems
from airflow_k8s.infra.config.stack_config import StackConfigError, parse_stack_config, to_raw

GI = Decimal(1024**3)
MI = Decimal(1024**2)


def config(**quota: object) -> PlatformConfig:
    base = PlatformConfig()
    return replace(base, quota=replace(base.quota, **quota))


def test_the_default_quota_holds_the_default_platform() -> None:
    c = PlatformConfig()
    assert quota_problems(c) == []
    # 8 heavy pods (2/4 CPU, 4Gi/8Gi) with one of them on the GPU tier (8Gi/16Gi) + control plane, whose
    # 5 long-running pods (scheduler, 2 api-server, dag-processor, triggerer) each run a log-groomer too
    groomers = 5
    assert demand(c, "cpu", "requests")[0] == Decimal("16") + Decimal("1.75") + groomers * Decimal("0.01")
    assert demand(c, "memory", "requests")[0] == (7 * 4 + 8 + 5) * GI + groomers * 64 * MI
    assert demand(c, "cpu", "limits")[0] == Decimal("32") + Decimal("5.5") + groomers * Decimal("0.1")
    assert demand(c, "memory", "limits")[0] == (7 * 8 + 16 + 10) * GI + groomers * 128 * MI
    assert pod_demand(c)[0] == 8 + 0 + 6  # scheduler, 2 api-server (rolling), dag-processor, triggerer, migration


def test_limits_are_charged_too() -> None:
    (problem,) = quota_problems(config(limits_cpu="30"))
    assert problem.key == "quotaLimitsCpu" and problem.value == "30"
    assert problem.reason.startswith("ResourceQuota limits.cpu 30 cannot hold 38 = task pods 32 (")
    assert "workerPodsMax 8 x 4 of tier 'heavy'" in problem.reason
    assert (
        "control plane 6 (scheduler 1 x 1.1, apiServer 2 x 1.1, dagProcessor 1 x 1.1, triggerer 1 x 0.6"
        in problem.reason
    )


@pytest.mark.parametrize(
    ("gpus", "expected_gi"),
    [(0, 8 * 8 + 10), (1, 7 * 8 + 16 + 10), (2, 6 * 8 + 2 * 16 + 10), (50, 8 * 16 + 10)],
)
def test_a_gpu_tier_counts_only_up_to_the_quotas_gpus(gpus: int, expected_gi: int) -> None:
    """quotaGpus 0: GPU tasks are not allowed, the GPU tier never runs; N GPUs: at most N GPU pods."""
    groomers = 5 * 128 * MI  # the control plane's log-groomers
    assert demand(config(gpus=gpus), "memory", "limits")[0] == expected_gi * GI + groomers


def test_placeholders_take_the_default_tiers_requests_as_requests_and_limits() -> None:
    c = replace(PlatformConfig(), executor=ExecutorSettings(worker_pods_min=4))
    medium = Decimal(1)  # medium: 1 CPU requested
    assert demand(c, "cpu", "requests")[0] == demand(PlatformConfig(), "cpu", "requests")[0] + 4 * medium
    assert demand(c, "cpu", "limits")[0] == demand(PlatformConfig(), "cpu", "limits")[0] + 4 * medium
    assert pod_demand(c)[0] == 18
    big = QuotaSpec(requests_cpu="22", requests_memory="50Gi", limits_cpu="42", pods=17)
    (problem,) = quota_problems(replace(c, quota=big))
    assert problem.key == "quotaPods"
    assert "workerPodsMin 4" in problem.reason


def test_the_control_plane_counts_the_api_server_surge_and_only_an_enabled_triggerer() -> None:
    c = PlatformConfig()
    two = replace(c, control_plane=replace(c.control_plane, api_server_replicas=2))
    assert pod_demand(two)[0] == pod_demand(c)[0] + 1
    off = replace(c, control_plane=replace(c.control_plane, triggerer=False))
    assert pod_demand(off)[0] == pod_demand(c)[0] - 1
    assert demand(off, "memory", "requests")[0] == demand(c, "memory", "requests")[0] - GI / 2 - 64 * MI  # + groomer


def test_stack_config_names_every_key_that_is_too_small() -> None:
    raw = {"workerPodsMax": "16", "quotaRequestsCpu": "20"}
    with pytest.raises(StackConfigError) as info:
        parse_stack_config({k: to_raw(v) for k, v in raw.items()}, secrets_set={"databaseUrl"})
    keys = [p.key for p in info.value.problems]
    assert keys == ["quotaRequestsCpu", "quotaRequestsMemory", "quotaLimitsCpu", "quotaLimitsMemory", "quotaPods"]
    assert "cannot hold 33.8 = task pods 32 (workerPodsMax 16 x 2 of tier 'heavy')" in str(info.value)


def test_the_stack_program_and_the_render_fail_before_deploying(stack) -> None:
    with pytest.raises(
        pulumi.RunError, match=r"airflow-k8s:quotaRequestsMemory = '16Gi': ResourceQuota requests\.memory"
    ):
        stack(quotaRequestsMemory="16Gi")


def test_a_platform_built_from_another_stack_is_checked_too() -> None:
    """Preflight runs the same check for a PlatformConfig constructed without stack config."""
    from airflow_k8s.infra.components.platform import PlatformArgs, PreflightError, preflight

    with pytest.raises(PreflightError, match=r"airflow-k8s:quotaPods = 10: ResourceQuota pods 10 < 14"):
        preflight("team", PlatformArgs(config(pods=10), {}, secrets=None))  # type: ignore[arg-type]
