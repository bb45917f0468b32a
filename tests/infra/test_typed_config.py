"""Consumers build the config with real types; the component holds it to the stack keys' rules."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pulumi
import pytest
import yaml

from airflow_k8s.infra import AirflowK8sPlatform, PlatformArgs, PlatformConfig, PlatformSecrets, shipped_templates
from airflow_k8s.infra.components.preflight import PreflightError
from airflow_k8s.infra.config.args import ControlPlaneSpec, ExecutorSettings, NetworkSpec
from airflow_k8s.infra.config.stack_config import parse_stack_config
from airflow_k8s.infra.config.stack_keys import to_raw
from airflow_k8s.infra.config.typed import config_problems, stack_values
from airflow_k8s.infra.render.offline import evaluate

from .conftest import PROVIDER_FLAGS

ROOT = Path(__file__).resolve().parents[2]


def _stack_file(stack: str) -> dict[str, str]:
    config = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    return {k.split(":", 1)[1]: str(to_raw(v)) for k, v in config.items() if k.startswith("airflow-k8s:")}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_a_config_round_trips_through_its_stack_values(stack: str) -> None:
    parsed = parse_stack_config(_stack_file(stack), secrets_set={"databaseUrl"})
    again = parse_stack_config(stack_values(parsed.platform, parsed.platform_name), secrets_set={"databaseUrl"})
    assert again.platform == parsed.platform
    assert parse_stack_config(stack_values(PlatformConfig()), secrets_set={"databaseUrl"}).platform == PlatformConfig()


def test_a_typed_config_with_bad_values_is_refused_naming_the_stack_keys() -> None:
    bad = replace(PlatformConfig(), namespace="kube-system", control_plane=ControlPlaneSpec(scheduler_replicas=12))
    assert {p.key for p in config_problems(bad)} == {"namespace", "schedulerReplicas"}  # each key on its own
    open_egress = replace(
        PlatformConfig(), network=NetworkSpec(task_egress_cidrs=("0.0.0.0/0",), database_cidr="10.1.0.0/16")
    )
    (problem,) = config_problems(open_egress)  # then the rules across keys
    assert problem.key == "taskEgressCidrs" and "allowOpenTaskEgress" in problem.reason


def _program(config: PlatformConfig, secrets: PlatformSecrets) -> None:
    platform = AirflowK8sPlatform("typed", PlatformArgs(config, shipped_templates(), secrets))
    pulumi.export("ns", platform.namespace)


def test_the_component_runs_the_same_checks_on_a_typed_config() -> None:
    good = replace(
        PlatformConfig(namespace="team-a"),
        executor=ExecutorSettings(worker_pods_max=4),
        control_plane=ControlPlaneSpec(api_server_replicas=2),
    )
    secrets = PlatformSecrets(database_url=pulumi.Output.secret("postgresql://x"))
    evaluation = evaluate(dict(PROVIDER_FLAGS), program=lambda: _program(good, secrets))
    assert evaluation.plain_outputs() == {"ns": "team-a"}
    bad = replace(good, executor=ExecutorSettings(worker_pods_max=0))
    with pytest.raises(PreflightError, match=r"airflow-k8s:workerPodsMax = '0': must be >= 1"):
        evaluate(dict(PROVIDER_FLAGS), program=lambda: _program(bad, secrets))
    with pytest.raises(PreflightError, match=r"airflow-k8s:databaseUrl: is not set"):
        evaluate(dict(PROVIDER_FLAGS), program=lambda: _program(good, PlatformSecrets(database_url=None)))
