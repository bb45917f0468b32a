"""The render's reachability check: the NetworkPolicy evaluator, and the design it holds the policies to."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from airflow_k8s.infra.config.stack_config import parse_stack_config, to_raw
from airflow_k8s.infra.render.manifests import manifests
from airflow_k8s.infra.render.netpolicy import Pod, PolicySet, Target, selects
from airflow_k8s.infra.render.reachability import reachability_problems

from .conftest import run_stack

NAMED = {"databaseCidr": "10.1.0.0/16", "apiServerCidr": "10.0.0.0/16"}


def rendered(**overrides: Any) -> tuple[list[dict[str, Any]], Any]:
    objects = [m.obj for m in manifests(run_stack(**overrides))]
    raw = {key: to_raw(value) for key, value in overrides.items()}
    return objects, parse_stack_config(raw, secrets_set={"databaseUrl"}).platform


def policy(name: str, spec: dict[str, Any], namespace: str = "airflow") -> dict[str, Any]:
    return {"kind": "NetworkPolicy", "metadata": {"name": name, "namespace": namespace}, "spec": spec}


# -- the evaluator: standard NetworkPolicy semantics --------------------------------------------

WEB = Pod("app", {"role": "web"}, "web")
DB = Pod("app", {"role": "db"}, "db")
OTHER = Pod("other", {"role": "web"}, "other web")


def test_a_pod_no_policy_selects_is_not_isolated() -> None:
    assert PolicySet([]).reachable(WEB, Target("x", ip="8.8.8.8"), "TCP", 443)


def test_isolation_then_policies_add_up_by_port_and_peer() -> None:
    deny = policy("deny", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}, "app")
    to_db = policy(
        "to-db",
        {
            "podSelector": {"matchLabels": {"role": "web"}},
            "policyTypes": ["Egress"],
            "egress": [{"to": [{"podSelector": {"matchLabels": {"role": "db"}}}], "ports": [{"port": 5432}]}],
        },
        "app",
    )
    db_in = policy(
        "db-in",
        {"podSelector": {"matchLabels": {"role": "db"}}, "policyTypes": ["Ingress"], "ingress": [{"from": []}]},
        "app",
    )
    assert not PolicySet([deny, to_db]).reachable(WEB, Target("db", pod=DB), "TCP", 5432)  # db ingress isolated
    policies = PolicySet([deny, to_db, db_in])
    assert policies.reachable(WEB, Target("db", pod=DB), "TCP", 5432)
    assert not policies.reachable(WEB, Target("db", pod=DB), "TCP", 5433)
    assert not policies.reachable(WEB, Target("db", pod=DB), "UDP", 5432)  # protocol defaults to TCP
    assert not policies.reachable(DB, Target("web", pod=WEB), "TCP", 80)


def test_peers_ip_blocks_namespaces_and_port_ranges() -> None:
    spec = {
        "podSelector": {},
        "policyTypes": ["Egress"],
        "egress": [
            {
                "to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}],
                "ports": [{"port": 8000, "endPort": 8100}],
            },
            {
                "to": [
                    {
                        "namespaceSelector": {"matchLabels": {"team": "a"}},
                        "podSelector": {"matchLabels": {"role": "web"}},
                    }
                ]
            },
        ],
    }
    policies = PolicySet([policy("p", spec, "app")], {"other": {"team": "a"}})
    assert policies.reachable(WEB, Target("x", ip="10.2.0.1"), "TCP", 8050)
    assert not policies.reachable(WEB, Target("x", ip="10.1.0.1"), "TCP", 8050)  # except
    assert not policies.reachable(WEB, Target("x", ip="10.2.0.1"), "TCP", 8101)  # outside endPort
    assert not policies.reachable(WEB, Target("x", ip="11.0.0.1"), "TCP", 8050)
    assert policies.reachable(WEB, Target("o", pod=OTHER), "TCP", 1)
    assert not policies.reachable(WEB, Target("o", pod=Pod("other", {"role": "db"}, "o")), "TCP", 1)
    assert not PolicySet([policy("p", spec, "app")]).reachable(WEB, Target("o", pod=OTHER), "TCP", 1)


def test_selectors_with_expressions() -> None:
    selector = {
        "matchExpressions": [{"key": "a", "operator": "In", "values": ["1"]}, {"key": "t", "operator": "DoesNotExist"}]
    }
    assert selects(selector, {"a": "1"}) and not selects(selector, {"a": "1", "t": "x"}) and not selects(selector, {})
    assert selects({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {})
    assert not selects({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {"b": "1"})


# -- the platform's policies against the design ------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        NAMED,
        {**NAMED, "nodeLocalDnsIps": ["169.254.20.10"], "dnsPodLabels": ["k8s-app=coredns"]},
        {**NAMED, "taskEgressCidrs": ["192.168.0.0/16"], "triggererEnabled": False},
        {
            **NAMED,
            "remoteBaseLogFolder": "s3://b/l",
            "remoteLogConnId": "aws",
            "remoteLogCidr": "0.0.0.0/0",
            "allowOpenTaskEgress": True,
        },
    ],
)
def test_the_rendered_policies_implement_the_design(overrides: dict[str, Any]) -> None:
    objects, config = rendered(**overrides)
    wrong, checked = reachability_problems(objects, config)
    assert wrong == [] and checked > 100


def _with(objects: list[dict[str, Any]], *extra: dict[str, Any]) -> list[dict[str, Any]]:
    return [*copy.deepcopy(objects), *extra]


def test_the_check_catches_the_old_https_to_anywhere_rule_for_task_pods() -> None:
    """Issue 14 item 3: remoteLogCidr 0.0.0.0/0 opened 443 to the internet and the Kubernetes API."""
    objects, config = rendered(**NAMED)
    namespace = config.namespace
    old_rule = policy(
        "airflow-task-remote-logs",
        {
            "podSelector": {"matchLabels": {"kubernetes_executor": "True"}},
            "policyTypes": ["Egress"],
            "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"protocol": "TCP", "port": 443}]}],
        },
        namespace,
    )
    wrong, _ = reachability_problems(_with(objects, old_rule), config)
    assert any("task pod (default_template.yaml) -> public address 8.8.8.8 TCP/443: allowed" in w for w in wrong)
    assert any("-> the Kubernetes API 10.0.0.1 TCP/443: allowed" in w for w in wrong)
    assert any("-> cloud metadata 169.254.169.254 TCP/443" in w for w in wrong)


def test_the_check_catches_dns_denied_under_node_local_dns_cache() -> None:
    """Issue 14 item 4: a kube-dns pod selector does not match NodeLocal DNSCache's host-network pods."""
    objects, config = rendered(**NAMED, nodeLocalDnsIps=["169.254.20.10"])
    stripped = copy.deepcopy(objects)
    for obj in stripped:
        if obj["kind"] == "NetworkPolicy" and obj["metadata"]["name"] == "airflow-allow-dns":
            obj["spec"]["egress"][0]["to"] = obj["spec"]["egress"][0]["to"][:1]  # the pod selector only
    wrong, _ = reachability_problems(stripped, config)
    assert any(
        "-> NodeLocal DNSCache 169.254.20.10 UDP/53: blocked by the policies but must be reachable" in w for w in wrong
    )


def test_the_check_catches_a_control_plane_allowance_leaking_to_task_pods() -> None:
    objects, config = rendered(**NAMED)
    leaky = copy.deepcopy(objects)
    for obj in leaky:
        if obj["kind"] == "NetworkPolicy" and obj["metadata"]["name"] == "airflow-kubernetes-api":
            obj["spec"]["podSelector"] = {}  # every pod, tasks included
    wrong, _ = reachability_problems(leaky, config)
    assert any(w.startswith("task pod (") and "the Kubernetes API 10.0.0.1 TCP/6443: allowed" in w for w in wrong)
    assert any(w.startswith("dag-processor -> the Kubernetes API") for w in wrong)
