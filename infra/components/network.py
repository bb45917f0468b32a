"""NetworkPolicies: default deny in both directions, then the few flows the platform needs.

=========================  ===========  ==================================================
policy                     direction    what
=========================  ===========  ==================================================
``<name>-default-deny``    in + out     every pod of the namespace: nothing is allowed
``<name>-allow-dns``       out          every pod -> kube-dns in kube-system, UDP/TCP 53
``<name>-scheduler-api``   out          scheduler -> Kubernetes API, TCP 443 and 6443
``<name>-worker-database`` out          task pods -> the database CIDR, TCP database port
``<name>-scheduler-metrics`` in         monitoring namespace -> scheduler metrics port
``<name>-worker-logs``     in           scheduler/webserver pods -> task pods, TCP 8793
=========================  ===========  ==================================================

Why both 443 and 6443 for the API: depending on the CNI, policies see either the
``kubernetes`` Service port (443) or, after DNAT, the API server endpoints' port (often 6443).
The API CIDR defaults to 0.0.0.0/0 only because it differs per cluster: narrow it.

Task pods are selected by the executor's identity label (``kubernetes_executor: "True"``): the
executor sets it on every pod it creates, after all task overrides, so a task cannot shed it.
The scheduler side and the peers allowed into the log port additionally require that label to
be *absent*: tasks may set their own labels, and a task labelled ``component: scheduler`` must
not inherit the scheduler's API egress or reach other tasks' logs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from airflow_k8s.infra.components.k8s import TOKEN_PREFIX, child, metadata, raw
from airflow_k8s.infra.components.names import EXECUTOR_POD_LABEL, ROLE_LABEL, PlatformNames
from airflow_k8s.infra.config.args import NetworkSpec

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
API_PORTS = (443, 6443)
_NOT_A_TASK = {"key": EXECUTOR_POD_LABEL, "operator": "DoesNotExist"}


def _ports(protocol: str, *numbers: int) -> list[dict[str, Any]]:
    return [{"protocol": protocol, "port": number} for number in numbers]


def scheduler_pods(names: PlatformNames) -> dict[str, Any]:
    return {"matchLabels": names.scheduler_selector(), "matchExpressions": [_NOT_A_TASK]}


def task_pods() -> dict[str, Any]:
    return {"matchLabels": {EXECUTOR_POD_LABEL: "True"}}


def policy_specs(names: PlatformNames, spec: NetworkSpec, metrics_port: int) -> dict[str, dict[str, Any]]:
    """NetworkPolicy specs by purpose (the object name is ``<platform>-<purpose>``)."""
    log_readers = {
        "matchExpressions": [{"key": ROLE_LABEL, "operator": "In", "values": ["scheduler", "webserver"]}, _NOT_A_TASK]
    }
    return {
        "default-deny": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
        "allow-dns": {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [
                {
                    "to": [
                        {
                            "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: "kube-system"}},
                            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                        }
                    ],
                    "ports": _ports("UDP", 53) + _ports("TCP", 53),
                }
            ],
        },
        "scheduler-api": {
            "podSelector": scheduler_pods(names),
            "policyTypes": ["Egress"],
            "egress": [{"to": [{"ipBlock": {"cidr": spec.api_server_cidr}}], "ports": _ports("TCP", *API_PORTS)}],
        },
        "worker-database": {
            "podSelector": task_pods(),
            "policyTypes": ["Egress"],
            "egress": [{"to": [{"ipBlock": {"cidr": spec.database_cidr}}], "ports": _ports("TCP", spec.database_port)}],
        },
        "scheduler-metrics": {
            "podSelector": scheduler_pods(names),
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [{"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: spec.monitoring_namespace}}}],
                    "ports": _ports("TCP", metrics_port),
                }
            ],
        },
        "worker-logs": {
            "podSelector": task_pods(),
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"podSelector": log_readers}], "ports": _ports("TCP", spec.worker_log_port)}],
        },
    }


@dataclass(frozen=True)
class NetworkPoliciesArgs:
    namespace: pulumi.Input[str]
    names: PlatformNames
    spec: NetworkSpec
    metrics_port: int


class NetworkPolicies(pulumi.ComponentResource):
    """The namespace's NetworkPolicies (see the module docstring); ``policy_names`` lists them."""

    def __init__(self, name: str, args: NetworkPoliciesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TOKEN_PREFIX}NetworkPolicies", name, None, opts)
        labels = args.names.common_labels("network")
        self.policy_names: list[str] = []
        for purpose, spec in policy_specs(args.names, args.spec, args.metrics_port).items():
            object_name = args.names.network_policy(purpose)
            k8s.networking.v1.NetworkPolicy(
                f"{name}-{purpose}",
                metadata=raw(metadata(object_name, args.namespace, labels)),
                spec=raw(spec),
                opts=child(self),
            )
            self.policy_names.append(object_name)
        self.register_outputs({"policyNames": self.policy_names})
