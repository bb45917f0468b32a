"""A prometheus-operator PodMonitor for the scheduler's metrics, behind ``podMonitor``.

The executor serves Prometheus metrics (task pods created, pending, running, cost...) on the
scheduler pod's ``metrics`` port.  Clusters running the Prometheus operator discover scrape
targets from PodMonitor objects, selected by the labels their ``Prometheus`` resource names
(``podMonitorLabels``, e.g. ``release=kube-prometheus-stack``).  A PodMonitor rather than a
ServiceMonitor: it targets the pods directly, so it keeps working without the metrics Service.

The CRD must exist before ``pulumi up`` (the operator installs it); the offline render validates
the object strictly against the operator's schema (:mod:`airflow_k8s.infra.render.crd_schemas`).
The scheduler-metrics NetworkPolicy admits the ``monitoringNamespace`` on the same port.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from airflow_k8s.infra.components.k8s import TOKEN_PREFIX, child, metadata, name_of, raw
from airflow_k8s.infra.components.names import PlatformNames
from airflow_k8s.infra.components.roles import METRICS_PORT_NAME

API_VERSION = "monitoring.coreos.com/v1"
SCRAPE_INTERVAL = "30s"


def pod_monitor_spec(names: PlatformNames) -> dict[str, Any]:
    return {
        "selector": {"matchLabels": names.scheduler_selector()},
        "podMetricsEndpoints": [
            {"port": METRICS_PORT_NAME, "path": "/metrics", "scheme": "http", "interval": SCRAPE_INTERVAL}
        ],
    }


@dataclass(frozen=True)
class PodMonitorArgs:
    names: PlatformNames
    namespace: pulumi.Input[str]
    labels: tuple[tuple[str, str], ...] = ()


class SchedulerPodMonitor(pulumi.ComponentResource):
    monitor_name: pulumi.Output[str]

    def __init__(self, name: str, args: PodMonitorArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TOKEN_PREFIX}SchedulerPodMonitor", name, None, opts)
        labels = {**args.names.common_labels("monitoring"), **dict(args.labels)}
        monitor = k8s.apiextensions.CustomResource(
            f"{name}-podmonitor",
            api_version=API_VERSION,
            kind="PodMonitor",
            metadata=raw(metadata(args.names.pod_monitor, args.namespace, labels)),
            spec=pod_monitor_spec(args.names),
            opts=child(self),
        )
        self.monitor_name = name_of(monitor)
        self.register_outputs({"monitorName": self.monitor_name})
