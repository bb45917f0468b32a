"""What a chart user brings to the control plane's pods: extras and placement per role, hardened or refused."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest

from airflow_k8s.executor.pods import security
from airflow_k8s.infra.config.stack_config import StackConfigError, parse_stack_config, to_raw
from airflow_k8s.infra.render.manifests import manifests

from .conftest import objects, one

STATSD = {
    "name": "statsd",
    "image": "quay.io/prometheus/statsd-exporter:v0.28.0",
    "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"cpu": "100m", "memory": "64Mi"}},
}


def pod(evaluation, name: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    if name == "airflow-db-migrate":
        return one(evaluation, "Job", "airflow-db-migrate")["spec"]["template"]["spec"]
    return one(evaluation, "Deployment", name)["spec"]["template"]["spec"]


def main(spec: dict[str, Any]) -> dict[str, Any]:
    return spec["containers"][0]


def test_extra_env_envfrom_volumes_and_mounts_reach_only_the_named_role(stack) -> None:
    evaluation = stack(
        extraEnv=["scheduler:TEAM=data", "all:TZ=UTC"],
        extraEnvFrom=["apiServer:configMap:ui-settings", "dagProcessor:secret:git-creds"],
        extraVolumes=["dagProcessor:plugins=configMap:airflow-plugins", "triggerer:scratch=emptyDir:256Mi"],
        extraVolumeMounts=["dagProcessor:plugins=/opt/airflow/plugins", "triggerer:scratch=/scratch:rw"],
    )
    scheduler = main(pod(evaluation, "airflow-scheduler"))
    assert {"name": "TEAM", "value": "data"} in scheduler["env"] and {"name": "TZ", "value": "UTC"} in scheduler["env"]
    migrate = main(pod(evaluation, "airflow-db-migrate"))
    assert {"name": "TZ", "value": "UTC"} in migrate["env"] and all(e["name"] != "TEAM" for e in migrate["env"])
    assert main(pod(evaluation, "airflow-api-server"))["envFrom"] == [{"configMapRef": {"name": "ui-settings"}}]
    dag_processor = pod(evaluation, "airflow-dag-processor")
    assert main(dag_processor)["envFrom"] == [{"secretRef": {"name": "git-creds"}}]
    assert {"name": "plugins", "configMap": {"name": "airflow-plugins"}} in dag_processor["volumes"]
    assert {"mountPath": "/opt/airflow/plugins", "name": "plugins", "readOnly": True} in main(dag_processor)[
        "volumeMounts"
    ]
    triggerer = pod(evaluation, "airflow-triggerer")
    assert {"name": "scratch", "emptyDir": {"sizeLimit": "256Mi"}} in triggerer["volumes"]
    assert {"mountPath": "/scratch", "name": "scratch", "readOnly": False} in main(triggerer)["volumeMounts"]


def test_a_sidecar_and_an_init_container_are_hardened_and_counted_by_the_quota(stack) -> None:
    init = {**STATSD, "name": "fetch-plugins", "image": "busybox:1.36", "args": ["true"]}
    evaluation = stack(
        extraContainers=[f"scheduler:{json.dumps(STATSD)}"], extraInitContainers=[f"apiServer:{json.dumps(init)}"]
    )
    scheduler = pod(evaluation, "airflow-scheduler")
    (sidecar,) = [c for c in scheduler["containers"] if c["name"] == "statsd"]
    assert sidecar["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
    }
    api = pod(evaluation, "airflow-api-server")
    assert [c["name"] for c in api["initContainers"]] == ["wait-for-migrations", "admin-password", "fetch-plugins"]
    for deployment in objects(evaluation, "Deployment"):
        assert security.restricted_violations(deployment) == []
    from airflow_k8s.infra.config.quota import pod_resources

    config = parse_stack_config(
        {"extraContainers": to_raw([f"scheduler:{json.dumps(STATSD)}"])}, secrets_set={"databaseUrl"}
    )
    requests, _ = pod_resources(config.platform, "scheduler")
    # 500m scheduler + 10m log-groomer + 10m sidecar
    assert str(requests["cpu"].normalize()) == "0.52"


@pytest.mark.parametrize(
    ("context", "refusal"),
    [
        ({"privileged": True}, "securityContext.privileged: true"),
        ({"allowPrivilegeEscalation": True}, "securityContext.allowPrivilegeEscalation: true"),
        ({"runAsUser": 0}, "securityContext.runAsUser: 0 (root)"),
        ({"readOnlyRootFilesystem": False}, "securityContext.readOnlyRootFilesystem: false"),
        ({"capabilities": {"add": ["SYS_ADMIN"]}}, "securityContext.capabilities.add: ['SYS_ADMIN']"),
        ({"seccompProfile": {"type": "Unconfined"}}, "securityContext.seccompProfile: Unconfined"),
    ],
)
def test_a_sidecar_asking_for_less_is_refused_naming_the_key(stack, context: dict, refusal: str) -> None:
    container = {**STATSD, "securityContext": context}
    with pytest.raises(pulumi.RunError) as info:
        stack(extraContainers=[f"triggerer:{json.dumps(container)}"])
    assert "airflow-k8s:extraContainers: container 'statsd' of triggerer is refused" in str(info.value)
    assert refusal in str(info.value)


def test_containers_without_resources_or_mounting_missing_volumes_are_refused(stack) -> None:
    bare = {"name": "x", "image": "busybox:1.36"}
    with pytest.raises(pulumi.RunError, match=r"resources\.requests without cpu, memory \(the quota check"):
        stack(extraInitContainers=[f"migration:{json.dumps(bare)}"])
    mounting = {**STATSD, "volumeMounts": [{"name": "secrets-vol", "mountPath": "/s"}]}
    with pytest.raises(pulumi.RunError, match=r"volumeMounts of volumes the pod does not have: \['secrets-vol'\]"):
        stack(extraContainers=[f"scheduler:{json.dumps(mounting)}"])


@pytest.mark.parametrize(
    ("key", "item", "message"),
    [
        ("extraEnv", "webserver:A=b", "unknown role 'webserver'"),
        ("extraEnv", "scheduler:1A=b", "valid variable name"),
        ("extraEnvFrom", "scheduler:vault:x", 'expected "<role>:secret:<name>"'),
        ("extraVolumes", "scheduler:v=hostPath:/etc", "kind one of"),
        ("extraVolumeMounts", "scheduler:v=relative/path", "absolute path"),
        ("extraContainers", 'scheduler:{"name": "x"', "not JSON"),
        ("extraContainers", 'scheduler:{"name": "x", "image": "a", "bogus": 1}', "bogus"),
        ("tolerations", "scheduler:dedicated=infra:Sometimes", "effect must be one of"),
        ("priorityClassNames", "scheduler:system-cluster-critical", "system-* PriorityClasses"),
        ("affinities", 'scheduler:{"nodeAffinity": {"wrong": 1}}', "wrong"),
    ],
)
def test_bad_items_name_the_key_and_the_item(key: str, item: str, message: str) -> None:
    with pytest.raises(StackConfigError) as info:
        parse_stack_config({key: to_raw([item])}, secrets_set={"databaseUrl"})
    text = str(info.value)
    assert f"airflow-k8s:{key} = {item!r}" in text and message in text


def test_platform_env_and_volumes_cannot_be_overridden(stack) -> None:
    for name in (
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
        "AIRFLOW__CORE__EXECUTOR",
        "AIRFLOW__KUBERNETES_EXECUTOR__NAMESPACE",
        "AIRFLOW__CORE__DAGS_FOLDER",
        "AIRFLOW__API_AUTH__JWT_SECRET_CMD",
    ):
        with pytest.raises(pulumi.RunError, match=rf"extraEnv: {name} of scheduler would override"):
            stack(extraEnv=[f"scheduler:{name}=x"])
    evaluation = stack(extraEnv=["all:AIRFLOW__SCHEDULER__PARSING_PROCESSES=4"])  # Airflow's own settings: yours
    env = one(evaluation, "Deployment", "airflow-scheduler")["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "AIRFLOW__SCHEDULER__PARSING_PROCESSES", "value": "4"} in env
    with pytest.raises(pulumi.RunError, match=r"extraEnv: PYTHONUNBUFFERED of scheduler is set by the platform"):
        stack(extraEnv=["scheduler:PYTHONUNBUFFERED=0"])
    with pytest.raises(pulumi.RunError, match=r"extraVolumes: volume 'logs' of apiServer is already a volume"):
        stack(extraVolumes=["apiServer:logs=emptyDir:1Gi"])


def test_placement_per_role(stack) -> None:
    term = {
        "topologyKey": "kubernetes.io/hostname",
        "labelSelector": {"matchLabels": {"app.kubernetes.io/component": "api-server"}},
    }
    affinity = {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 100, "podAffinityTerm": term}]}}  # fmt: skip
    evaluation = stack(
        nodeSelectors=["all:node-role=platform", "migration:node-role=batch"],
        tolerations=["all:dedicated=platform:NoSchedule", "scheduler:spot"],
        affinities=[f"apiServer:{json.dumps(affinity)}"],
        priorityClassNames=["scheduler:airflow-critical", "apiServer:airflow-critical"],
    )
    scheduler, api = pod(evaluation, "airflow-scheduler"), pod(evaluation, "airflow-api-server")
    assert scheduler["nodeSelector"] == {"node-role": "platform"}
    assert pod(evaluation, "airflow-db-migrate")["nodeSelector"] == {"node-role": "batch"}  # the role's wins
    assert scheduler["tolerations"] == [
        {"effect": "NoSchedule", "key": "dedicated", "operator": "Equal", "value": "platform"},
        {"key": "spot", "operator": "Exists"},
    ]
    assert api["affinity"] == affinity and "affinity" not in scheduler
    assert scheduler["priorityClassName"] == api["priorityClassName"] == "airflow-critical"
    # a role not named keeps the platform's own class, which no task pod can preempt
    assert pod(evaluation, "airflow-triggerer")["priorityClassName"] == "airflow-control-plane"
    # task pods are shaped by their templates only
    templates = one(evaluation, "ConfigMap", "airflow-pod-templates")["data"]
    assert all("node-role" not in text and "airflow-critical" not in text for text in templates.values())


def test_image_pull_secrets_go_on_every_service_account_task_pods_included(stack, default_eval) -> None:
    evaluation = stack(imagePullSecrets=["registry-creds"])
    accounts = objects(evaluation, "ServiceAccount")
    assert len(accounts) == 4
    assert all(a["imagePullSecrets"] == [{"name": "registry-creds"}] for a in accounts)
    assert all("imagePullSecrets" not in a for a in objects(default_eval, "ServiceAccount"))
    assert all(not m.leaks for m in manifests(evaluation))
