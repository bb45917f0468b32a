"""Namespace (PSS restricted, pinned), quota, limits, and the NetworkPolicies."""

from __future__ import annotations

from airflow_k8s.executor.pods.security import PSS_VERSION
from airflow_k8s.infra.render.offline import Evaluation

from .conftest import objects, one

NOT_A_TASK = {"key": "kubernetes_executor", "operator": "DoesNotExist"}


def test_namespace_enforces_restricted_at_a_pinned_version(default_eval: Evaluation) -> None:
    labels = one(default_eval, "Namespace")["metadata"]["labels"]
    assert PSS_VERSION == "v1.34"
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
        assert labels[f"pod-security.kubernetes.io/{mode}-version"] == "v1.34"


def test_quota_and_limit_range_from_config(stack) -> None:
    evaluation = stack(quotaRequestsCpu="10", quotaPods=12, quotaGpus=0, workerPodsMax=8, limitMaxMemory="20Gi")
    assert one(evaluation, "ResourceQuota")["spec"]["hard"] == {
        "limits.cpu": "32",
        "limits.memory": "64Gi",
        "pods": "12",
        "requests.cpu": "10",
        "requests.memory": "32Gi",
        "requests.nvidia.com/gpu": "0",
    }
    (limits,) = one(evaluation, "LimitRange")["spec"]["limits"]
    assert limits == {
        "default": {"cpu": "500m", "memory": "1Gi"},
        "defaultRequest": {"cpu": "250m", "memory": "512Mi"},
        "max": {"cpu": "4", "memory": "20Gi"},
        "type": "Container",
    }


def test_network_policies(default_eval: Evaluation) -> None:
    policies = {p["metadata"]["name"]: p["spec"] for p in objects(default_eval, "NetworkPolicy")}
    scheduler = {
        "matchExpressions": [NOT_A_TASK],
        "matchLabels": {
            "app.kubernetes.io/component": "scheduler",
            "app.kubernetes.io/instance": "airflow",
            "app.kubernetes.io/name": "airflow-k8s",
        },
    }
    tasks = {"matchLabels": {"kubernetes_executor": "True"}}
    assert policies == {
        "airflow-default-deny": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
        "airflow-allow-dns": {
            "egress": [
                {
                    "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
                    "to": [
                        {
                            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                        }
                    ],
                }
            ],
            "podSelector": {},
            "policyTypes": ["Egress"],
        },
        "airflow-scheduler-api": {
            "egress": [
                {
                    "ports": [{"port": 443, "protocol": "TCP"}, {"port": 6443, "protocol": "TCP"}],
                    "to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}],
                }
            ],
            "podSelector": scheduler,
            "policyTypes": ["Egress"],
        },
        "airflow-worker-database": {
            "egress": [{"ports": [{"port": 5432, "protocol": "TCP"}], "to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}],
            "podSelector": tasks,
            "policyTypes": ["Egress"],
        },
        "airflow-scheduler-metrics": {
            "ingress": [
                {
                    "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}],
                    "ports": [{"port": 9102, "protocol": "TCP"}],
                }
            ],
            "podSelector": scheduler,
            "policyTypes": ["Ingress"],
        },
        "airflow-worker-logs": {
            "ingress": [
                {
                    "from": [
                        {
                            "podSelector": {
                                "matchExpressions": [
                                    {"key": "component", "operator": "In", "values": ["scheduler", "webserver"]},
                                    NOT_A_TASK,
                                ]
                            }
                        }
                    ],
                    "ports": [{"port": 8793, "protocol": "TCP"}],
                }
            ],
            "podSelector": tasks,
            "policyTypes": ["Ingress"],
        },
    }


def test_network_allowances_from_config(stack) -> None:
    evaluation = stack(
        apiServerCidr="10.0.0.0/16", databaseCidr="10.1.2.0/24", databasePort=6432, monitoringNamespace="prom"
    )
    policies = {p["metadata"]["name"]: p["spec"] for p in objects(evaluation, "NetworkPolicy")}
    assert policies["airflow-scheduler-api"]["egress"][0]["to"] == [{"ipBlock": {"cidr": "10.0.0.0/16"}}]
    assert policies["airflow-worker-database"]["egress"][0] == {
        "ports": [{"port": 6432, "protocol": "TCP"}],
        "to": [{"ipBlock": {"cidr": "10.1.2.0/24"}}],
    }
    assert policies["airflow-scheduler-metrics"]["ingress"][0]["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "prom"}}}
    ]


def test_scheduler_pods_match_the_scheduler_policies_and_task_templates_do_not(default_eval: Evaluation) -> None:
    labels = one(default_eval, "Deployment")["spec"]["template"]["metadata"]["labels"]
    policy = one(default_eval, "NetworkPolicy", "airflow-scheduler-api")["spec"]["podSelector"]
    assert policy["matchLabels"].items() <= labels.items()
    assert "kubernetes_executor" not in labels
    dags = one(default_eval, "PersistentVolumeClaim", "airflow-dags")
    assert dags["spec"] == {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "10Gi"}}}
    assert dags["metadata"]["annotations"] == {"pulumi.com/skipAwait": "true"}


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
