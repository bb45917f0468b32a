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


def test_the_default_quota_also_holds_the_two_api_servers_production_stacks_run() -> None:
    """The one-api-server warning tells production stacks to run two: the default quota must not then refuse them."""
    base = PlatformConfig()
    two = replace(base, control_plane=replace(base.control_plane, api_server_replicas=2))
    assert quota_problems(two) == []


def test_the_default_quota_holds_the_default_platform() -> None:
    c = PlatformConfig()
    assert quota_problems(c) == []
    # 8 heavy pods (2/4 CPU, 4Gi/8Gi) with one of them on the GPU tier (8Gi/16Gi) + control plane, whose
    # 5 long-running pods (scheduler, 2 api-server, dag-processor, triggerer) each run a log-groomer too,
    # + the 2 image-check Jobs' pods (100m/512Mi requested, 500m/512Mi limits each) an up runs beside them
    groomers, checks = 5, 2
    assert demand(c, "cpu", "requests")[0] == (
        Decimal("16") + Decimal("1.75") + groomers * Decimal("0.01") + checks * Decimal("0.1")
    )
    assert demand(c, "memory", "requests")[0] == (7 * 4 + 8 + 5) * GI + groomers * 64 * MI + checks * 512 * MI
    assert demand(c, "cpu", "limits")[0] == (
        Decimal("32") + Decimal("5.5") + groomers * Decimal("0.1") + checks * Decimal("0.5")
    )
    assert demand(c, "memory", "limits")[0] == (7 * 8 + 16 + 10) * GI + groomers * 128 * MI + checks * 512 * MI
    # scheduler, 2 api-server (rolling), dag-processor, triggerer, migration, 2 image checks
    assert pod_demand(c)[0] == 8 + 0 + 6 + checks


def test_limits_are_charged_too() -> None:
    (problem,) = quota_problems(config(limits_cpu="30"))
    assert problem.key == "quotaLimitsCpu" and problem.value == "30"
    assert problem.reason.startswith("ResourceQuota limits.cpu 30 cannot hold 39 = task pods 32 (")
    assert "workerPodsMax 8 x 4 of tier 'heavy'" in problem.reason
    assert (
        "control plane 7 (scheduler 1 x 1.1, apiServer 2 x 1.1, dagProcessor 1 x 1.1, triggerer 1 x 0.6, "
        "migration 1 x 1, imageChecks 2 x 0.5)" in problem.reason
    )


@pytest.mark.parametrize(
    ("gpus", "expected_gi"),
    [(0, 8 * 8 + 10), (1, 7 * 8 + 16 + 10), (2, 6 * 8 + 2 * 16 + 10), (50, 8 * 16 + 10)],
)
def test_a_gpu_tier_counts_only_up_to_the_quotas_gpus(gpus: int, expected_gi: int) -> None:
    """quotaGpus 0: GPU tasks are not allowed, the GPU tier never runs; N GPUs: at most N GPU pods."""
    groomers = 5 * 128 * MI  # the control plane's log-groomers
    checks = 2 * 512 * MI  # the image-check Jobs' pods
    assert demand(config(gpus=gpus), "memory", "limits")[0] == expected_gi * GI + groomers + checks


def test_placeholders_take_the_default_tiers_requests_as_requests_and_limits() -> None:
    c = replace(PlatformConfig(), executor=ExecutorSettings(worker_pods_min=4))
    medium = Decimal(1)  # medium: 1 CPU requested
    assert demand(c, "cpu", "requests")[0] == demand(PlatformConfig(), "cpu", "requests")[0] + 4 * medium
    assert demand(c, "cpu", "limits")[0] == demand(PlatformConfig(), "cpu", "limits")[0] + 4 * medium
    assert pod_demand(c)[0] == 20
    big = QuotaSpec(requests_cpu="22", requests_memory="51Gi", limits_cpu="43", pods=19)
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
    assert "cannot hold 34 = task pods 32 (workerPodsMax 16 x 2 of tier 'heavy')" in str(info.value)


def test_the_stack_program_and_the_render_fail_before_deploying(stack) -> None:
    with pytest.raises(
        pulumi.RunError, match=r"airflow-k8s:quotaRequestsMemory = '16Gi': ResourceQuota requests\.memory"
    ):
        stack(quotaRequestsMemory="16Gi")


def test_a_platform_built_from_another_stack_is_checked_too() -> None:
    """Preflight runs the same check for a PlatformConfig constructed without stack config."""
    from airflow_k8s.infra.components.platform import PlatformArgs, PreflightError, preflight

    with pytest.raises(PreflightError, match=r"airflow-k8s:quotaPods = 10: ResourceQuota pods 10 < 16"):
        preflight("team", PlatformArgs(config(pods=10), {}, secrets=None))  # type: ignore[arg-type]


def test_the_image_checks_are_counted_only_when_the_image_preflight_runs() -> None:
    """An up runs the 2 image-check Jobs beside the old control plane and the task pods: a quota one pod
    short of holding them too refuses a check pod and the up hangs, so it fails here - unless
    imagePreflight is off, when no check pod ever runs."""
    short = {"quotaPods": "15"}  # 8 task pods + 6 control-plane pods + 2 checks = 16
    with pytest.raises(StackConfigError) as info:
        parse_stack_config(short, secrets_set={"databaseUrl"})
    (problem,) = info.value.problems
    assert problem.key == "quotaPods"
    assert "ResourceQuota pods 15 < 16" in str(info.value) and "imageChecks 2)" in str(info.value)
    off = parse_stack_config({**short, "imagePreflight": "false"}, secrets_set={"databaseUrl"}).platform
    assert not off.image_preflight.enabled and quota_problems(off) == []
    assert pod_demand(off)[0] == 14 and "imageChecks" not in pod_demand(off)[1]
    on = replace(off, image_preflight=replace(off.image_preflight, enabled=True))
    # 2 pods x 100m/512Mi requested, 2 x 500m/512Mi limits
    checks = {("cpu", "requests"): Decimal("0.2"), ("memory", "requests"): GI, ("cpu", "limits"): Decimal(1)}
    checks[("memory", "limits")] = GI
    for (resource, kind), amount in checks.items():
        assert demand(on, resource, kind)[0] - demand(off, resource, kind)[0] == amount, (resource, kind)
    assert "imageChecks 2 x 0.5" in demand(on, "cpu", "limits")[1]
    assert "imageChecks" not in demand(off, "cpu", "limits")[1]
