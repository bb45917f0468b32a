"""NetworkPolicies for Airflow 3: default deny both ways, then only the flows the platform needs.

================================  =========  ===========================================================
policy                            direction  what
================================  =========  ===========================================================
``<name>-default-deny``           in + out   every pod of the namespace: nothing is allowed
``<name>-allow-dns``              out        every pod -> the DNS pods (``dnsPodLabels`` in ``dnsNamespace``)
                                             and NodeLocal DNSCache (``nodeLocalDnsIps``), UDP/TCP 53
``<name>-control-plane-db``       out        scheduler, api-server, dag-processor, triggerer, migration
                                             -> ``databaseCidr``, TCP ``databasePort``
``<name>-kubernetes-api``         out        scheduler, api-server -> ``apiServerCidr``, TCP 443/6443
``<name>-tasks-to-api-server``    out        task pods -> api-server pods, TCP 8080 (the Execution API)
``<name>-api-server-ingress``     in         api-server <- task pods (8080); <- ``uiIngressNamespace``
``<name>-trigger-logs``           in         triggerer <- api-server, TCP 8794 (deferred tasks' logs)
``<name>-api-server-to-trigger-   out        api-server -> triggerer, TCP 8794
logs``
``<name>-scheduler-metrics``      in         scheduler <- ``monitoringNamespace``, metrics port
``<name>-task-egress``,           out        task pods, triggerer -> ``taskEgressCidrs`` minus the
``<name>-triggerer-egress``                  database, the Kubernetes API range and link-local, any port
``<name>-task-remote-logs``,      out        task pods, api-server -> ``remoteLogCidr`` (minus the same),
``<name>-api-server-remote-logs``            TCP 443
``<name>-dag-processor-git``      out        dag-processor (its git-sync) -> ``gitSyncCidrs``, TCP 443/22
``<name>-to-statsd``,             out, in    every pod -> the StatsD exporter, UDP 9125; it admits them,
``<name>-statsd-ingress``                    and ``monitoringNamespace`` on its metrics port 9102
================================  =========  ===========================================================

The egress and remote-log policies exist only when configured (``taskEgressCidrs``,
``remoteBaseLogFolder``), the trigger-log and triggerer ones only with the triggerer.

Task pods reach the api-server Service, DNS and only the destinations the stack names - never the
database, the Kubernetes API or a cloud metadata endpoint: no policy selecting them allows those,
and their named egress has them cut out (``ipBlock.except``: the database CIDR, ``apiServerCidr``
when it is named, ``169.254.0.0/16``).  ``0.0.0.0/0`` is refused for them unless
``allowOpenTaskEgress`` says so (:mod:`airflow_k8s.infra.config.feature_rules`).  The control plane
reaches the database; only the scheduler and the api-server reach the Kubernetes API.

DNS: kube-dns and most CoreDNS installs label their pods ``k8s-app=kube-dns`` in ``kube-system``
(``dnsPodLabels``/``dnsNamespace`` for others).  Under NodeLocal DNSCache (the default of recent GKE
clusters) pods send lookups to a link-local address served by a host-network pod, which no pod
selector matches: ``nodeLocalDnsIps`` allows them as ``ipBlock``.

Cilium: an ``ipBlock`` does not match the Kubernetes API server when it runs on cluster nodes (its
traffic carries Cilium's ``kube-apiserver``/``host``/``remote-node`` identity, not a CIDR one) unless
the agent runs with ``policy-cidr-match-mode: nodes``; set that, or the scheduler's and
api-server's API egress is denied.  The render's reachability check (:mod:`airflow_k8s.infra.render.reachability`)
evaluates these policies with the standard NetworkPolicy semantics.

Why both 443 and 6443 for the API: depending on the CNI, policies see either the ``kubernetes``
Service port (443) or, after DNAT, the API server endpoints' port (often 6443).  The database and
API CIDRs default to 0.0.0.0/0 only because they differ per cluster: the stack program warns
about them (:mod:`airflow_k8s.infra.config.stack_config`), production stacks set them.

Task pods are selected by the executor's identity label (``kubernetes_executor: "True"``): the
executor sets it on every pod it creates, after all task overrides, so a task cannot shed it.
Control-plane selectors additionally require that label to be *absent*: tasks may set their own
labels, and a task labelled ``app.kubernetes.io/component: scheduler`` must not inherit the
scheduler's database or API egress.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from airflow_k8s.infra.components.airflowcfg import API_PORT, STATSD_PORT, TRIGGERER_LOG_PORT
from airflow_k8s.infra.components.k8s import TOKEN_PREFIX, child, metadata, raw
from airflow_k8s.infra.components.names import (
    API_SERVER,
    DAG_PROCESSOR,
    DB_CLEAN,
    EXECUTOR_POD_LABEL,
    LABEL_COMPONENT,
    LABEL_INSTANCE,
    LABEL_NAME,
    MIGRATION,
    SCHEDULER,
    STATSD,
    TRIGGERER,
    PlatformNames,
)
from airflow_k8s.infra.config.args import NetworkSpec
from airflow_k8s.infra.config.network import excluding, task_exclusions

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
API_PORTS = (443, 6443)
HTTPS = 443
STATSD_SCRAPE_PORT = 9102  # the exporter's /metrics (addons/statsd.py)
_NOT_A_TASK = {"key": EXECUTOR_POD_LABEL, "operator": "DoesNotExist"}
CONTROL_PLANE = (SCHEDULER, API_SERVER, DAG_PROCESSOR, TRIGGERER, MIGRATION, DB_CLEAN)
GIT_PORTS = (443, 22)


@dataclass(frozen=True)
class NetworkFeatures:
    """What the policies depend on besides :class:`NetworkSpec`."""

    metrics_port: int
    triggerer: bool = True
    remote_logging: bool = False
    git_cidrs: tuple[str, ...] = ()  # the git host, for the dag-processor's git-sync sidecar
    statsd: bool = False  # the StatsD exporter runs (airflowMetrics: statsd)


def _ports(protocol: str, *numbers: int) -> list[dict[str, Any]]:
    return [{"protocol": protocol, "port": number} for number in numbers]


def role_pods(names: PlatformNames, *roles: str) -> dict[str, Any]:
    """Pods of the given control-plane roles of this platform, never a task pod."""
    return {
        "matchLabels": {LABEL_NAME: names.selector(SCHEDULER)[LABEL_NAME], LABEL_INSTANCE: names.name},
        "matchExpressions": [{"key": LABEL_COMPONENT, "operator": "In", "values": list(roles)}, _NOT_A_TASK],
    }


def task_pods() -> dict[str, Any]:
    return {"matchLabels": {EXECUTOR_POD_LABEL: "True"}}


def _pods_or(*selectors: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"podSelector": s} for s in selectors]


def dns_peers(spec: NetworkSpec) -> list[dict[str, Any]]:
    """The cluster DNS pods, and NodeLocal DNSCache's addresses (host-network: only an ipBlock matches)."""
    peers: list[dict[str, Any]] = [
        {
            "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: spec.dns_namespace}},
            "podSelector": {"matchLabels": dict(spec.dns_pod_labels)},
        }
    ]
    for ip in spec.node_local_dns_ips:
        peers.append({"ipBlock": {"cidr": f"{ip}/{32 if ipaddress.ip_address(ip).version == 4 else 128}"}})
    return peers


def policy_specs(names: PlatformNames, spec: NetworkSpec, features: NetworkFeatures) -> dict[str, dict[str, Any]]:
    """NetworkPolicy specs by purpose (the object name is ``<platform>-<purpose>``)."""
    api_server, tasks = role_pods(names, API_SERVER), task_pods()
    out: dict[str, dict[str, Any]] = {
        "default-deny": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
        "allow-dns": {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [{"to": dns_peers(spec), "ports": _ports("UDP", 53) + _ports("TCP", 53)}],
        },
        "control-plane-db": {
            "podSelector": role_pods(names, *CONTROL_PLANE),
            "policyTypes": ["Egress"],
            "egress": [{"to": [{"ipBlock": {"cidr": spec.database_cidr}}], "ports": _ports("TCP", spec.database_port)}],
        },
        "kubernetes-api": {
            "podSelector": role_pods(names, SCHEDULER, API_SERVER),
            "policyTypes": ["Egress"],
            "egress": [{"to": [{"ipBlock": {"cidr": spec.api_server_cidr}}], "ports": _ports("TCP", *API_PORTS)}],
        },
        "tasks-to-api-server": {
            "podSelector": tasks,
            "policyTypes": ["Egress"],
            "egress": [{"to": _pods_or(api_server), "ports": _ports("TCP", API_PORT)}],
        },
        "api-server-ingress": {
            "podSelector": api_server,
            "policyTypes": ["Ingress"],
            "ingress": [{"from": _pods_or(tasks), "ports": _ports("TCP", API_PORT)}],
        },
        "scheduler-metrics": {
            "podSelector": role_pods(names, SCHEDULER),
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [{"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: spec.monitoring_namespace}}}],
                    "ports": _ports("TCP", features.metrics_port),
                }
            ],
        },
    }
    if spec.ui_ingress_namespace:
        out["api-server-ingress"]["ingress"].append(
            {
                "from": [{"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: spec.ui_ingress_namespace}}}],
                "ports": _ports("TCP", API_PORT),
            }
        )
    if features.triggerer:
        triggerer = role_pods(names, TRIGGERER)
        out["trigger-logs"] = {
            "podSelector": triggerer,
            "policyTypes": ["Ingress"],
            "ingress": [{"from": _pods_or(api_server), "ports": _ports("TCP", TRIGGERER_LOG_PORT)}],
        }
        out["api-server-to-trigger-logs"] = {
            "podSelector": api_server,
            "policyTypes": ["Egress"],
            "egress": [{"to": _pods_or(triggerer), "ports": _ports("TCP", TRIGGERER_LOG_PORT)}],
        }
    never = task_exclusions(spec.database_cidr, spec.api_server_cidr)
    blocks = [b for b in (excluding(c, never) for c in spec.task_egress_cidrs) if b is not None]
    if blocks:
        egress = [{"to": [{"ipBlock": block} for block in blocks]}]
        out["task-egress"] = {"podSelector": tasks, "policyTypes": ["Egress"], "egress": egress}
        if features.triggerer:
            out["triggerer-egress"] = {
                "podSelector": role_pods(names, TRIGGERER),
                "policyTypes": ["Egress"],
                "egress": egress,
            }
    if features.remote_logging:
        # HTTPS only: it overlaps the database only if the database listens on 443 too
        never = task_exclusions(
            spec.database_cidr, spec.api_server_cidr, database_port_open=spec.database_port == HTTPS
        )
        block = excluding(spec.remote_log_cidr, never) if spec.remote_log_cidr else None
        if block is not None:
            to = [{"ipBlock": block}]
            for purpose, selector in (("task-remote-logs", tasks), ("api-server-remote-logs", api_server)):
                out[purpose] = {
                    "podSelector": selector,
                    "policyTypes": ["Egress"],
                    "egress": [{"to": to, "ports": _ports("TCP", HTTPS)}],
                }
    out.update(addon_policies(names, spec, features))
    return out


def addon_policies(names: PlatformNames, spec: NetworkSpec, features: NetworkFeatures) -> dict[str, dict[str, Any]]:
    """git-sync's egress to the git host; StatsD ingest from every pod and scraping from monitoring."""
    out: dict[str, dict[str, Any]] = {}
    if features.git_cidrs:
        out["dag-processor-git"] = {
            "podSelector": role_pods(names, DAG_PROCESSOR),
            "policyTypes": ["Egress"],
            "egress": [
                {"to": [{"ipBlock": {"cidr": c}} for c in features.git_cidrs], "ports": _ports("TCP", *GIT_PORTS)}
            ],
        }
    if features.statsd:
        statsd = role_pods(names, STATSD)
        out["to-statsd"] = {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [{"to": _pods_or(statsd), "ports": _ports("UDP", STATSD_PORT)}],
        }
        monitoring = {"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: spec.monitoring_namespace}}}
        out["statsd-ingress"] = {
            "podSelector": statsd,
            "policyTypes": ["Ingress"],
            "ingress": [
                {"from": [{"podSelector": {}}], "ports": _ports("UDP", STATSD_PORT)},
                {"from": [monitoring], "ports": _ports("TCP", STATSD_SCRAPE_PORT)},
            ],
        }
    return out


@dataclass(frozen=True)
class NetworkPoliciesArgs:
    namespace: pulumi.Input[str]
    names: PlatformNames
    spec: NetworkSpec
    features: NetworkFeatures


class NetworkPolicies(pulumi.ComponentResource):
    """The namespace's NetworkPolicies (see the module docstring); ``policy_names`` lists them."""

    def __init__(self, name: str, args: NetworkPoliciesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TOKEN_PREFIX}NetworkPolicies", name, None, opts)
        labels = args.names.common_labels("network")
        self.policy_names: list[str] = []
        for purpose, spec in policy_specs(args.names, args.spec, args.features).items():
            object_name = args.names.network_policy(purpose)
            k8s.networking.v1.NetworkPolicy(
                f"{name}-{purpose}",
                metadata=raw(metadata(object_name, args.namespace, labels)),
                spec=raw(spec),
                opts=child(self),
            )
            self.policy_names.append(object_name)
        self.register_outputs({"policyNames": self.policy_names})
