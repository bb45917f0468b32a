"""Airflow's own metrics: a StatsD exporter Prometheus scrapes (the chart's ``statsd``), ``airflowMetrics: statsd``.

Airflow's scheduler, dag-processor, triggerer, api-server and task processes emit StatsD over UDP
(``[metrics] statsd_host`` = this Service, port 9125); ``prom/statsd-exporter`` turns them into
Prometheus metrics on 9102, next to the executor's own ``/metrics`` on the scheduler.  One replica
(metrics are best-effort: a restart loses a few counters), run as ``nobody`` with the platform's
hardening, probes on ``/metrics``; a PodDisruptionBudget like every role's.  The NetworkPolicies let
every pod of the namespace (task pods included: they report task durations) send UDP 9125 to it and
the ``monitoringNamespace`` scrape 9102; with ``podMonitor`` a PodMonitor selects it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from airflow_k8s.infra.components.airflowcfg import STATSD_PORT
from airflow_k8s.infra.components.airflowpod import check_pod
from airflow_k8s.infra.components.controlplane import pod_labels
from airflow_k8s.infra.components.k8s import TOKEN_PREFIX, child, metadata, name_of, raw
from airflow_k8s.infra.components.names import STATSD, PlatformNames
from airflow_k8s.infra.config.addons import AirflowMetricsSpec

SCRAPE_PORT = 9102
NOBODY = 65534


def statsd_pod(metrics: AirflowMetricsSpec, service_account: str) -> dict[str, Any]:
    probe = {"httpGet": {"path": "/metrics", "port": "metrics"}, "periodSeconds": 30, "timeoutSeconds": 5}
    return {
        "serviceAccountName": service_account,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": NOBODY,
            "runAsGroup": NOBODY,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [
            {
                "name": STATSD,
                "image": metrics.statsd_image,
                "imagePullPolicy": "Always",
                "args": [
                    f"--statsd.listen-udp=:{STATSD_PORT}",
                    "--statsd.listen-tcp=",
                    f"--web.listen-address=:{SCRAPE_PORT}",
                ],
                "ports": [
                    {"name": "statsd", "containerPort": STATSD_PORT, "protocol": "UDP"},
                    {"name": "metrics", "containerPort": SCRAPE_PORT, "protocol": "TCP"},
                ],
                "resources": metrics.resources.to_k8s(),
                "livenessProbe": {**probe, "failureThreshold": 5},
                "readinessProbe": {**probe, "failureThreshold": 3},
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "runAsNonRoot": True,
                    "capabilities": {"drop": ["ALL"]},
                },
            }
        ],
    }


@dataclass(frozen=True)
class StatsdArgs:
    names: PlatformNames
    metrics: AirflowMetricsSpec
    namespace: pulumi.Input[str]
    service_account: pulumi.Input[str]


class StatsdExporter(pulumi.ComponentResource):
    """Deployment, Service and PodDisruptionBudget of the exporter (module docstring)."""

    service_name: pulumi.Output[str]

    def __init__(self, name: str, args: StatsdArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TOKEN_PREFIX}StatsdExporter", name, None, opts)
        n = args.names
        labels = n.common_labels(STATSD)

        def spec(account: str) -> dict[str, Any]:
            out = {
                "replicas": 1,
                "revisionHistoryLimit": 3,
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                "selector": {"matchLabels": n.selector(STATSD)},
                "template": {"metadata": {"labels": pod_labels(n, STATSD)}, "spec": statsd_pod(args.metrics, account)},
            }
            check_pod("Deployment", n.statsd, {"apiVersion": "apps/v1", "kind": "Deployment", "spec": out}, token=False)
            return out

        k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=raw(metadata(n.statsd, args.namespace, labels)),
            spec=raw(pulumi.Output.from_input(args.service_account).apply(spec)),
            opts=child(self),
        )
        service = k8s.core.v1.Service(
            f"{name}-service",
            metadata=raw(metadata(n.statsd, args.namespace, labels)),
            spec=raw(
                {
                    "type": "ClusterIP",
                    "selector": n.selector(STATSD),
                    "ports": [
                        {"name": "statsd", "port": STATSD_PORT, "targetPort": "statsd", "protocol": "UDP"},
                        {"name": "metrics", "port": SCRAPE_PORT, "targetPort": "metrics", "protocol": "TCP"},
                    ],
                }
            ),
            opts=child(self),
        )
        k8s.policy.v1.PodDisruptionBudget(
            f"{name}-pdb",
            metadata=raw(metadata(n.statsd, args.namespace, labels)),
            spec=raw(
                {
                    "maxUnavailable": 1,
                    "selector": {"matchLabels": n.selector(STATSD)},
                    "unhealthyPodEvictionPolicy": "AlwaysAllow",
                }
            ),
            opts=child(self),
        )
        self.service_name = name_of(service)
        self.register_outputs({"serviceName": self.service_name})
