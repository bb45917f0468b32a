"""Namespace (PSS restricted, pinned, protected), quota, limits, and the Airflow 3 NetworkPolicies."""

from __future__ import annotations

from typing import Any

import pulumi
import pytest

from airflow_k8s.executor.pods.security import PSS_VERSION
from airflow_k8s.infra.config.network import without_database
from airflow_k8s.infra.render.offline import Evaluation

from .conftest import objects, one

NOT_A_TASK = {"key": "kubernetes_executor", "operator": "DoesNotExist"}
TASKS = {"matchLabels": {"kubernetes_executor": "True"}}
ROLE_LABEL = "app.kubernetes.io/component"


def test_namespace_enforces_restricted_at_a_pinned_version(default_eval: Evaluation) -> None:
    labels = one(default_eval, "Namespace")["metadata"]["labels"]
    assert PSS_VERSION == "v1.34"
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
        assert labels[f"pod-security.kubernetes.io/{mode}-version"] == "v1.34"


def test_quota_and_limit_range_from_config(stack) -> None:
    evaluation = stack(quotaRequestsCpu="30", quotaPods=30, quotaGpus=0, workerPodsMax=8, limitMaxMemory="20Gi")
    assert one(evaluation, "ResourceQuota")["spec"]["hard"] == {
        "limits.cpu": "42",
        "limits.memory": "96Gi",
        "pods": "30",
        "requests.cpu": "30",
        "requests.memory": "48Gi",
        "requests.nvidia.com/gpu": "0",
    }
    (limits,) = one(evaluation, "LimitRange")["spec"]["limits"]
    assert limits == {
        "default": {"cpu": "500m", "memory": "1Gi"},
        "defaultRequest": {"cpu": "250m", "memory": "512Mi"},
        "max": {"cpu": "4", "memory": "20Gi"},
        "type": "Container",
    }


def _policies(evaluation: Evaluation) -> dict[str, dict[str, Any]]:
    return {p["metadata"]["name"].removeprefix("airflow-"): p["spec"] for p in objects(evaluation, "NetworkPolicy")}


def _pod_labels(evaluation: Evaluation) -> dict[str, dict[str, str]]:
    """Pod labels of every control-plane role, as the Deployments and the Job give them."""
    out = {
        d["metadata"]["name"]: d["spec"]["template"]["metadata"]["labels"] for d in objects(evaluation, "Deployment")
    }
    out["airflow-db-migrate"] = one(evaluation, "Job", "airflow-db-migrate")["spec"]["template"]["metadata"]["labels"]
    return {name.removeprefix("airflow-"): labels for name, labels in out.items()}


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if not selector:
        return True
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator = expression["key"], expression["operator"]
        if operator == "In" and labels.get(key) not in expression["values"]:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def egress(evaluation: Evaluation, labels: dict[str, str]) -> list[dict[str, Any]]:
    """Every egress rule that applies to a pod with ``labels``."""
    return [
        rule
        for spec in _policies(evaluation).values()
        if "Egress" in spec["policyTypes"] and _selects(spec["podSelector"], labels)
        for rule in spec.get("egress", [])
    ]


def _cidrs(rules: list[dict[str, Any]], port: int | None = None) -> set[str]:
    return {
        peer["ipBlock"]["cidr"]
        for rule in rules
        if port is None or not rule.get("ports") or any(p["port"] == port for p in rule["ports"])
        for peer in rule.get("to", [])
        if "ipBlock" in peer
    }


TASK_POD = {"kubernetes_executor": "True", "app": "airflow-worker", ROLE_LABEL: "scheduler"}  # a task posing


def test_task_pods_reach_the_api_server_and_dns_never_the_database(stack) -> None:
    evaluation = stack(databaseCidr="10.1.2.0/24", apiServerCidr="10.0.0.0/16")
    rules = egress(evaluation, TASK_POD)
    assert _cidrs(rules) == set()  # no IP egress at all: not the database, not the Kubernetes API
    targets = [(peer, rule["ports"]) for rule in rules for peer in rule["to"]]
    api_server = _pod_labels(evaluation)["api-server"]
    assert [p for p, ports in targets if "podSelector" in p and _selects(p["podSelector"], api_server)] != []
    assert any(ports == [{"port": 8080, "protocol": "TCP"}] for p, ports in targets if "namespaceSelector" not in p)
    assert any(p.get("podSelector") == {"matchLabels": {"k8s-app": "kube-dns"}} for p, _ in targets)


def test_the_control_plane_reaches_the_database_and_only_scheduler_and_api_server_the_kubernetes_api(stack) -> None:
    evaluation = stack(databaseCidr="10.1.2.0/24", databasePort=6432, apiServerCidr="10.0.0.0/16")
    for role, labels in _pod_labels(evaluation).items():
        rules = egress(evaluation, labels)
        assert "10.1.2.0/24" in _cidrs(rules, 6432), role
        kubernetes_api = "10.0.0.0/16" in _cidrs(rules, 443) and "10.0.0.0/16" in _cidrs(rules, 6443)
        assert kubernetes_api is (role in ("scheduler", "api-server")), role


def test_the_api_server_admits_task_pods_and_the_ui_ingress_namespace(stack, default_eval: Evaluation) -> None:
    ingress = _policies(default_eval)["api-server-ingress"]
    assert ingress["ingress"] == [{"from": [{"podSelector": TASKS}], "ports": [{"port": 8080, "protocol": "TCP"}]}]
    with_ui = _policies(stack(uiIngressNamespace="ingress-nginx"))["api-server-ingress"]["ingress"]
    assert with_ui[1]["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}
    ]


def test_deferred_task_logs_flow_from_the_triggerer_to_the_api_server_only(stack, default_eval: Evaluation) -> None:
    policies = _policies(default_eval)
    labels = _pod_labels(default_eval)
    assert _selects(policies["trigger-logs"]["podSelector"], labels["triggerer"])
    (rule,) = policies["trigger-logs"]["ingress"]
    assert rule["ports"] == [{"port": 8794, "protocol": "TCP"}]
    assert _selects(rule["from"][0]["podSelector"], labels["api-server"])
    assert not _selects(rule["from"][0]["podSelector"], TASK_POD)
    assert "trigger-logs" not in _policies(stack(triggererEnabled=False))


OPEN_EXCEPT = {"cidr": "0.0.0.0/0", "except": ["10.1.2.0/24", "10.0.0.0/16", "169.254.0.0/16"]}


def test_extra_task_egress_never_includes_the_database_the_kubernetes_api_or_link_local(stack) -> None:
    evaluation = stack(
        databaseCidr="10.1.2.0/24",
        apiServerCidr="10.0.0.0/16",
        taskEgressCidrs=["0.0.0.0/0", "192.168.0.0/16"],
        allowOpenTaskEgress=True,
    )
    # the default databaseCidr 0.0.0.0/0 would swallow any extra egress: refused, not silently dropped
    with pytest.raises(pulumi.RunError, match=r"taskEgressCidrs = '192\.168\.0\.0/16': lies inside"):
        stack(taskEgressCidrs=["192.168.0.0/16"])
    blocks = [
        peer["ipBlock"] for rule in egress(evaluation, TASK_POD) for peer in rule.get("to", []) if "ipBlock" in peer
    ]
    assert blocks == [OPEN_EXCEPT, {"cidr": "192.168.0.0/16"}]
    triggerer = _pod_labels(evaluation)["triggerer"]
    assert OPEN_EXCEPT in [
        peer["ipBlock"] for rule in egress(evaluation, triggerer) for peer in rule.get("to", []) if "ipBlock" in peer
    ]


@pytest.mark.parametrize(
    ("cidr", "expected"),
    [
        ("0.0.0.0/0", {"cidr": "0.0.0.0/0", "except": ["10.1.2.0/24"]}),
        ("10.1.2.0/25", None),  # inside the database range: nothing left to allow
        ("172.16.0.0/12", {"cidr": "172.16.0.0/12"}),
        ("::/0", {"cidr": "::/0"}),
    ],
)
def test_without_database(cidr: str, expected: dict[str, Any] | None) -> None:
    assert without_database(cidr, "10.1.2.0/24") == expected


def test_remote_logging_opens_https_for_task_pods_and_the_api_server_only(stack, default_eval: Evaluation) -> None:
    assert not any("remote-logs" in name for name in _policies(default_eval))
    evaluation = stack(remoteBaseLogFolder="s3://logs/airflow", remoteLogConnId="aws_logs", remoteLogCidr="52.0.0.0/8")
    policies = _policies(evaluation)
    assert sorted(name for name in policies if "remote-logs" in name) == ["api-server-remote-logs", "task-remote-logs"]
    assert "52.0.0.0/8" in _cidrs(egress(evaluation, TASK_POD), 443)
    assert "52.0.0.0/8" in _cidrs(egress(evaluation, _pod_labels(evaluation)["api-server"]), 443)
    assert "52.0.0.0/8" not in _cidrs(egress(evaluation, _pod_labels(evaluation)["scheduler"]))


def test_metrics_are_scraped_from_the_monitoring_namespace_only(stack) -> None:
    policies = _policies(stack(monitoringNamespace="prom", metricsPort=9200))
    assert policies["scheduler-metrics"]["ingress"] == [
        {
            "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "prom"}}}],
            "ports": [{"port": 9200, "protocol": "TCP"}],
        }
    ]


def test_default_deny_and_dns_cover_every_pod(default_eval: Evaluation) -> None:
    policies = _policies(default_eval)
    assert policies["default-deny"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    assert policies["allow-dns"]["podSelector"] == {}


def test_a_task_labelled_like_the_control_plane_gets_none_of_its_allowances(default_eval: Evaluation) -> None:
    for name, spec in _policies(default_eval).items():
        selector = spec["podSelector"]
        if selector and NOT_A_TASK not in selector.get("matchExpressions", []):
            assert selector == TASKS, name


def test_dags_claim_from_config(stack) -> None:
    claim = one(
        stack(dagsStorageSize="5Gi", dagsStorageClass="efs-sc", dagsAccessMode="ReadOnlyMany"),
        "PersistentVolumeClaim",
        "airflow-dags",
    )
    assert claim["spec"] == {
        "accessModes": ["ReadOnlyMany"],
        "resources": {"requests": {"storage": "5Gi"}},
        "storageClassName": "efs-sc",
    }
    assert claim["metadata"]["annotations"] == {"pulumi.com/skipAwait": "true"}


def _dns_rule(evaluation: Evaluation) -> dict[str, Any]:
    (rule,) = _policies(evaluation)["allow-dns"]["egress"]
    assert rule["ports"] == [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]
    return rule


def test_dns_selects_kube_dns_by_default_and_any_coredns_flavour_by_key(stack, default_eval: Evaluation) -> None:
    assert _dns_rule(default_eval)["to"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }
    ]
    coredns = _dns_rule(stack(dnsNamespace="dns", dnsPodLabels=["app.kubernetes.io/name=coredns"]))
    assert coredns["to"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "dns"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "coredns"}},
        }
    ]


def test_node_local_dns_cache_is_reached_by_address_not_by_pod_selector(stack) -> None:
    """Its pods use the host network: only an ipBlock matches them (GKE, kubeadm's nodelocaldns)."""
    rule = _dns_rule(stack(nodeLocalDnsIps=["169.254.20.10", "10.96.0.10"]))
    assert rule["to"][1:] == [{"ipBlock": {"cidr": "169.254.20.10/32"}}, {"ipBlock": {"cidr": "10.96.0.10/32"}}]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"dnsPodLabels": []}, "dnsPodLabels = '\\[\\]': needs at least one label"),
        ({"dnsPodLabels": ["k8s-app"]}, 'expected "<label key>=<label value>"'),
        ({"nodeLocalDnsIps": ["169.254.20.10/32"]}, "expected an IP address"),
        (
            {"remoteBaseLogFolder": "s3://b/l", "remoteLogConnId": "aws"},
            "remoteLogCidr = '': is needed with airflow-k8s:remoteBaseLogFolder",
        ),
        (
            {"remoteBaseLogFolder": "s3://b/l", "remoteLogConnId": "aws", "remoteLogCidr": "0.0.0.0/0"},
            "remoteLogCidr = '0.0.0.0/0': opens task pods to every address",
        ),
        ({"databaseCidr": "10.1.0.0/16", "taskEgressCidrs": ["::/0"]}, "taskEgressCidrs = '::/0': opens task pods"),
        (
            {"databaseCidr": "10.1.0.0/16", "apiServerCidr": "10.0.0.0/16", "taskEgressCidrs": ["10.0.4.0/24"]},
            "taskEgressCidrs = '10.0.4.0/24': lies inside airflow-k8s:apiServerCidr",
        ),
    ],
)
def test_task_egress_names_its_destinations(overrides: dict[str, Any], message: str) -> None:
    from airflow_k8s.infra.config.stack_config import StackConfigError, parse_stack_config, to_raw

    raw = {key: to_raw(value) for key, value in overrides.items()}
    with pytest.raises(StackConfigError, match=message):
        parse_stack_config(raw, secrets_set={"databaseUrl"})


def test_open_task_egress_only_when_the_stack_says_so_and_never_to_metadata(stack) -> None:
    evaluation = stack(
        remoteBaseLogFolder="s3://b/l",
        remoteLogConnId="aws",
        remoteLogCidr="0.0.0.0/0",
        allowOpenTaskEgress=True,
        databaseCidr="10.1.0.0/16",
        apiServerCidr="10.0.0.0/16",
    )
    (rule,) = _policies(evaluation)["task-remote-logs"]["egress"]
    assert rule["to"] == [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/16", "169.254.0.0/16"]}}]
    assert any("remoteLogCidr is 0.0.0.0/0 (allowOpenTaskEgress)" in w for w in evaluation.warnings)
