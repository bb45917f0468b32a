"""RBAC allow-list: the complete set of (service account, apiGroup, resource, verb, scope) grants is exact."""

from __future__ import annotations

import pytest

from airflow_k8s.infra.render.offline import Evaluation

from .conftest import objects, one

NS = "airflow"
SCOPE = f"namespace:{NS}"
POD_VERBS = ("create", "get", "list", "watch", "patch", "delete")
SCHEDULER = {("airflow-scheduler", "", "pods", verb, SCOPE) for verb in POD_VERBS} | {
    ("airflow-scheduler", "", "pods/log", "get", SCOPE),
    ("airflow-scheduler", "", "events", "list", SCOPE),
}
API_SERVER = {("airflow-api-server", "", "pods/log", "get", SCOPE)}  # a running task's log, by pod name
NODES = {("airflow-scheduler", "", "nodes", "get", "cluster"), ("airflow-scheduler", "", "nodes", "list", "cluster")}
METRICS = {
    ("airflow-scheduler", "metrics.k8s.io", "pods", "get", SCOPE),
    ("airflow-scheduler", "metrics.k8s.io", "pods", "list", SCOPE),
}
RULE_FIELDS = {"apiGroups", "resources", "verbs"}


def grants(evaluation: Evaluation) -> set[tuple[str, str, str, str, str]]:
    """Every (subject, group, resource, verb, scope) that some binding grants."""
    roles = {("Role", o["metadata"]["name"]): o for o in objects(evaluation, "Role")}
    roles |= {("ClusterRole", o["metadata"]["name"]): o for o in objects(evaluation, "ClusterRole")}
    out: set[tuple[str, str, str, str, str]] = set()
    for binding in objects(evaluation, "RoleBinding") + objects(evaluation, "ClusterRoleBinding"):
        role = roles[(binding["roleRef"]["kind"], binding["roleRef"]["name"])]
        scope = f"namespace:{binding['metadata']['namespace']}" if binding["kind"] == "RoleBinding" else "cluster"
        for subject in binding["subjects"]:
            assert subject["kind"] == "ServiceAccount" and subject["namespace"] == NS
            for rule in role["rules"]:
                assert set(rule) == RULE_FIELDS, rule  # no resourceNames/nonResourceURLs surprises
                for group in rule["apiGroups"]:
                    for resource in rule["resources"]:
                        for verb in rule["verbs"]:
                            out.add((subject["name"], group, resource, verb, scope))
    return out


@pytest.mark.parametrize(
    ("capacity", "metrics", "expected"),
    [
        (True, True, SCHEDULER | API_SERVER | NODES | METRICS),
        (True, False, SCHEDULER | API_SERVER | NODES),
        (False, True, SCHEDULER | API_SERVER | METRICS),
        (False, False, SCHEDULER | API_SERVER),
    ],
)
def test_exact_allow_list(stack, capacity: bool, metrics: bool, expected: set) -> None:
    evaluation = stack(capacityAwareTiers=capacity, utilizationMetrics=metrics)
    granted = grants(evaluation)
    assert granted == expected
    assert not any("*" in part for grant in granted for part in grant)


def test_every_role_is_bound_and_named_after_its_binding(default_eval: Evaluation) -> None:
    roles = {o["metadata"]["name"] for o in objects(default_eval, "Role")}
    assert roles == {"airflow-scheduler", "airflow-api-server-logs", "airflow-pod-metrics-reader"}
    assert {o["metadata"]["name"] for o in objects(default_eval, "ClusterRole")} == {"airflow-node-reader"}
    for binding in objects(default_eval, "RoleBinding") + objects(default_eval, "ClusterRoleBinding"):
        assert binding["roleRef"]["apiGroup"] == "rbac.authorization.k8s.io"
        assert binding["roleRef"]["name"] == binding["metadata"]["name"]


def test_only_the_scheduler_and_api_server_mount_a_token(default_eval: Evaluation) -> None:
    accounts = {
        o["metadata"]["name"]: o["automountServiceAccountToken"] for o in objects(default_eval, "ServiceAccount")
    }
    assert accounts == {
        "airflow-scheduler": True,
        "airflow-api-server": True,
        "airflow-control-plane": False,
        "airflow-worker": False,
    }
    pods = {d["metadata"]["name"]: d["spec"]["template"]["spec"] for d in objects(default_eval, "Deployment")}
    pods["airflow-db-migrate"] = one(default_eval, "Job", "airflow-db-migrate")["spec"]["template"]["spec"]
    assert {name: (pod["serviceAccountName"], pod["automountServiceAccountToken"]) for name, pod in pods.items()} == {
        "airflow-scheduler": ("airflow-scheduler", True),
        "airflow-api-server": ("airflow-api-server", True),
        "airflow-dag-processor": ("airflow-control-plane", False),
        "airflow-triggerer": ("airflow-control-plane", False),
        "airflow-db-migrate": ("airflow-control-plane", False),
    }
    subjects = {
        s["name"]
        for b in objects(default_eval, "RoleBinding") + objects(default_eval, "ClusterRoleBinding")
        for s in b["subjects"]
    }
    assert subjects == {"airflow-scheduler", "airflow-api-server"}  # workers and the rest have no Role
