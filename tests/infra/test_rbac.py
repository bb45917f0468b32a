"""RBAC allow-list: the complete set of granted (apiGroup, resource, verb, scope) tuples is exact."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_k8s.infra.render.offline import Evaluation

from .conftest import objects

NS = "airflow"
SCHEDULER = {
    ("", "pods", verb, f"namespace:{NS}") for verb in ("create", "get", "list", "watch", "patch", "delete")
} | {("", "pods/log", "get", f"namespace:{NS}"), ("", "events", "list", f"namespace:{NS}")}
NODES = {("", "nodes", "get", "cluster"), ("", "nodes", "list", "cluster")}
METRICS = {("metrics.k8s.io", "pods", "get", f"namespace:{NS}"), ("metrics.k8s.io", "pods", "list", f"namespace:{NS}")}
RULE_FIELDS = {"apiGroups", "resources", "verbs"}


def grants(evaluation: Evaluation) -> set[tuple[str, str, str, str]]:
    """Normalized tuples of every rule of every Role and ClusterRole."""
    out: set[tuple[str, str, str, str]] = set()
    for kind, scope_of in (
        ("Role", lambda o: f"namespace:{o['metadata']['namespace']}"),
        ("ClusterRole", lambda o: "cluster"),
    ):
        for role in objects(evaluation, kind):
            for rule in role["rules"]:
                assert set(rule) == RULE_FIELDS, rule  # no resourceNames/nonResourceURLs surprises
                for group in rule["apiGroups"]:
                    for resource in rule["resources"]:
                        for verb in rule["verbs"]:
                            out.add((group, resource, verb, scope_of(role)))
    return out


@pytest.mark.parametrize(
    ("capacity", "metrics", "expected"),
    [
        (True, True, SCHEDULER | NODES | METRICS),
        (True, False, SCHEDULER | NODES),
        (False, True, SCHEDULER | METRICS),
        (False, False, SCHEDULER),
    ],
)
def test_exact_allow_list(stack, capacity: bool, metrics: bool, expected: set) -> None:
    evaluation = stack(capacityAwareTiers=capacity, utilizationMetrics=metrics)
    granted = grants(evaluation)
    assert granted == expected
    assert not any("*" in part for grant in granted for part in grant)


def test_roles_are_separately_named_and_bound_only_to_the_scheduler(default_eval: Evaluation) -> None:
    roles = {o["metadata"]["name"]: o for o in objects(default_eval, "Role")}
    cluster_roles = {o["metadata"]["name"]: o for o in objects(default_eval, "ClusterRole")}
    assert set(roles) == {"airflow-scheduler", "airflow-pod-metrics-reader"}
    assert set(cluster_roles) == {"airflow-node-reader"}
    bindings = objects(default_eval, "RoleBinding") + objects(default_eval, "ClusterRoleBinding")
    assert len(bindings) == 3
    for binding in bindings:
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "airflow-scheduler", "namespace": NS}]
        ref: dict[str, Any] = binding["roleRef"]
        assert ref["apiGroup"] == "rbac.authorization.k8s.io"
        target = roles if ref["kind"] == "Role" else cluster_roles
        assert ref["name"] in target
        assert ref["name"] == binding["metadata"]["name"]


def test_service_accounts(default_eval: Evaluation) -> None:
    accounts = {o["metadata"]["name"]: o for o in objects(default_eval, "ServiceAccount")}
    assert accounts["airflow-scheduler"]["automountServiceAccountToken"] is True
    assert accounts["airflow-worker"]["automountServiceAccountToken"] is False
    for binding in objects(default_eval, "RoleBinding") + objects(default_eval, "ClusterRoleBinding"):
        assert all(s["name"] != "airflow-worker" for s in binding["subjects"])  # the worker has no Role
