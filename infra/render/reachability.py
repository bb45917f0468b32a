"""``render --check``: who can reach whom under the rendered NetworkPolicies, against what the stack means.

The platform's network design, stated independently of the policies that implement it, for every
pod the render runs (each control-plane role, and each pod template as a task pod - template
labels plus the executor's ``kubernetes_executor: "True"``):

* every pod resolves names: the DNS pods (``dnsPodLabels`` in ``dnsNamespace``) and every
  ``nodeLocalDnsIps`` address, UDP and TCP 53;
* task pods reach the api-server pods on 8080 (the Execution API) - and no other control-plane
  port - and outside the cluster only the destinations the stack names (``taskEgressCidrs``,
  ``remoteLogCidr`` on 443), never the database, the Kubernetes API range, a link-local address
  (cloud metadata), nor any public address the stack did not name;
* the control plane reaches the database on its port; only the scheduler and the api-server reach
  the Kubernetes API (443 and 6443); the api-server reaches the remote log store on 443; the
  triggerer (task code) gets the task pods' named egress; the dag-processor (its git-sync) reaches
  ``gitSyncCidrs`` on 443 and 22; nothing else leaves the cluster;
* with the StatsD exporter, every pod sends it UDP 9125, and task pods cannot scrape it.

Probes are concrete addresses - a host of every range the stack names, the database's, the API
server's, ``169.254.169.254`` (the cloud metadata endpoint) and public addresses - and each
``(pod, target, protocol, port)`` is evaluated with :mod:`airflow_k8s.infra.render.netpolicy`.  A
flow the design forbids but the policies allow, or the other way round, is a finding naming both.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from airflow_k8s.infra.components.names import (
    API_SERVER,
    DAG_PROCESSOR,
    EXECUTOR_POD_LABEL,
    LABEL_COMPONENT,
    SCHEDULER,
    STATSD,
    TEMPLATES_LABEL,
    TRIGGERER,
)
from airflow_k8s.infra.config.args import PlatformConfig
from airflow_k8s.infra.config.network import LINK_LOCAL, is_open
from airflow_k8s.infra.render.netpolicy import Pod, PolicySet, Target

API_PORT, TRIGGERER_LOG_PORT, SCHEDULER_HEALTH_PORT = 8080, 8794, 8974
STATSD_PORT, STATSD_SCRAPE_PORT = 9125, 9102
GIT_PORTS = (443, 22)
METADATA_IP = "169.254.169.254"
PUBLIC_IPS = ("8.8.8.8", "1.1.1.1")
OPEN_PROBE = {"database": "198.51.100.20", "api": "203.0.113.30"}  # TEST-NET addresses for a 0.0.0.0/0 range
API_ROLES = (SCHEDULER, API_SERVER)
DB_ROLES = (SCHEDULER, API_SERVER, "dag-processor", TRIGGERER, "db-migrate", "db-clean")


@dataclass(frozen=True)
class Flow:
    source: Pod
    target: Target
    protocol: str
    port: int
    expected: bool

    def __str__(self) -> str:
        verdict = "allowed" if not self.expected else "blocked"
        want = "must not be" if not self.expected else "must be"
        return (
            f"{self.source.what} -> {self.target.what} {self.protocol}/{self.port}: {verdict} by the policies but "
            f"{want} reachable"
        )


def _host(cidr: str) -> str:
    net = ipaddress.ip_network(cidr)
    return str(net.network_address + 1) if net.num_addresses > 1 else str(net.network_address)


def _pod_template(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    spec = obj.get("spec") or {}
    if obj.get("kind") == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    return spec.get("template")


def platform_pods(objects: Iterable[Mapping[str, Any]], namespace: str) -> list[Pod]:
    """Every pod the render runs: control-plane workloads and, per pod template, a task pod."""
    pods = []
    for obj in objects:
        template = _pod_template(obj) if obj.get("kind") in ("Deployment", "Job", "CronJob") else None
        if template is not None:
            labels = dict((template.get("metadata") or {}).get("labels") or {})
            pods.append(Pod(obj["metadata"].get("namespace", namespace), labels, labels.get(LABEL_COMPONENT, "?")))
        meta = obj.get("metadata") or {}
        if obj.get("kind") == "ConfigMap" and (meta.get("labels") or {}).get(TEMPLATES_LABEL) == "true":
            for key, text in sorted((obj.get("data") or {}).items()):
                labels = dict(((yaml.safe_load(text) or {}).get("metadata") or {}).get("labels") or {})
                labels[EXECUTOR_POD_LABEL] = "True"
                pods.append(Pod(meta.get("namespace", namespace), labels, f"task pod ({key})"))
    return pods


@dataclass(frozen=True)
class Design:
    """The flows the stack means (module docstring), from its config alone."""

    c: PlatformConfig

    def _allowances(self, *, any_port: bool, remote_logs: bool) -> list[tuple[str, int | None]]:
        n = self.c.network
        out: list[tuple[str, int | None]] = [(cidr, None) for cidr in n.task_egress_cidrs] if any_port else []
        if remote_logs and self.c.logging.remote and n.remote_log_cidr:
            out.append((n.remote_log_cidr, 443))
        return out

    def _named(self, ip: str, port: int, allowances: list[tuple[str, int | None]]) -> bool:
        """Inside a named range on an allowed port, and outside what task egress never includes."""
        n = self.c.network
        for cidr, only in allowances:
            if only not in (None, port) or not _contains(cidr, ip):
                continue
            never = [n.database_cidr] if only is None or n.database_port == only else []
            never += [] if is_open(n.api_server_cidr) else [n.api_server_cidr]
            if not any(_contains(r, ip) for r in (*never, *LINK_LOCAL)):
                return True
        return False

    def task(self, ip: str, port: int) -> bool:
        return self._named(ip, port, self._allowances(any_port=True, remote_logs=True))

    def control_plane(self, role: str, ip: str, port: int) -> bool:
        n = self.c.network
        if role in DB_ROLES and port == n.database_port and _contains(n.database_cidr, ip):
            return True
        if role in API_ROLES and port in (443, 6443) and _contains(n.api_server_cidr, ip):
            return True
        if role == API_SERVER:
            return self._named(ip, port, self._allowances(any_port=False, remote_logs=True))
        if role == TRIGGERER:
            return self._named(ip, port, self._allowances(any_port=True, remote_logs=False))
        if role == DAG_PROCESSOR and port in GIT_PORTS:  # its git-sync sidecar
            return any(_contains(cidr, ip) for cidr in self._git_cidrs())
        return False

    def _git_cidrs(self) -> tuple[str, ...]:
        git = self.c.addons.git_sync
        return git.cidrs if git.enabled else ()

    def ip_probes(self) -> list[tuple[str, str]]:
        n = self.c.network
        db = OPEN_PROBE["database"] if is_open(n.database_cidr) else _host(n.database_cidr)
        api = OPEN_PROBE["api"] if is_open(n.api_server_cidr) else _host(n.api_server_cidr)
        probes = [(f"the database {db}", db), (f"the Kubernetes API {api}", api)]
        probes += [(f"cloud metadata {METADATA_IP}", METADATA_IP)]
        probes += [(f"public address {ip}", ip) for ip in PUBLIC_IPS]
        named = [cidr for cidr, _ in self._allowances(any_port=True, remote_logs=True)] + list(self._git_cidrs())
        probes += [(f"named destination {_host(cidr)} ({cidr})", _host(cidr)) for cidr in named]
        return list(dict.fromkeys(probes))


def _contains(cidr: str, ip: str) -> bool:
    address, net = ipaddress.ip_address(ip), ipaddress.ip_network(cidr)
    return address.version == net.version and address in net


def flows(objects: list[Mapping[str, Any]], config: PlatformConfig) -> list[Flow]:
    """Every flow the design decides, with what it expects."""
    design = Design(config)
    n = config.network
    pods = platform_pods(objects, config.namespace)
    by_role: dict[str, list[Pod]] = {}
    for pod in pods:
        by_role.setdefault(pod.labels.get(LABEL_COMPONENT, ""), []).append(pod)
    tasks = [p for p in pods if p.labels.get(EXECUTOR_POD_LABEL) == "True"]
    control = [p for p in pods if p not in tasks]
    dns = [Target(f"DNS pod in {n.dns_namespace}", pod=Pod(n.dns_namespace, dict(n.dns_pod_labels), "dns"))]
    dns += [Target(f"NodeLocal DNSCache {ip}", ip=ip) for ip in n.node_local_dns_ips]
    out: list[Flow] = []
    for pod in pods:
        out += [Flow(pod, target, proto, 53, True) for target in dns for proto in ("UDP", "TCP")]
    ports = sorted({n.database_port, 443, 6443, 80, 22})
    for what, ip in design.ip_probes():
        target = Target(what, ip=ip)
        for port in ports:
            out += [Flow(task, target, "TCP", port, design.task(ip, port)) for task in tasks]
            out += [Flow(pod, target, "TCP", port, design.control_plane(pod.what, ip, port)) for pod in control]
    for task in tasks:
        for api in by_role.get(API_SERVER, []):
            out.append(Flow(task, Target("the api-server", pod=api), "TCP", API_PORT, True))
            out.append(Flow(task, Target("the api-server", pod=api), "TCP", TRIGGERER_LOG_PORT, False))
        for scheduler in by_role.get(SCHEDULER, []):
            for port in (SCHEDULER_HEALTH_PORT, config.executor.metrics_port):
                out.append(Flow(task, Target("the scheduler", pod=scheduler), "TCP", port, False))
        for triggerer in by_role.get(TRIGGERER, []):
            out.append(Flow(task, Target("the triggerer", pod=triggerer), "TCP", TRIGGERER_LOG_PORT, False))
    for api in by_role.get(API_SERVER, []):
        for triggerer in by_role.get(TRIGGERER, []):
            out.append(Flow(api, Target("the triggerer", pod=triggerer), "TCP", TRIGGERER_LOG_PORT, True))
    for statsd in by_role.get(STATSD, []):  # Airflow's metrics: every pod sends, nobody else is served
        target = Target("the StatsD exporter", pod=statsd)
        out += [Flow(pod, target, "UDP", STATSD_PORT, True) for pod in pods if pod is not statsd]
        out += [Flow(task, target, "TCP", STATSD_SCRAPE_PORT, False) for task in tasks]
    return out


def reachability_problems(objects: list[Mapping[str, Any]], config: PlatformConfig) -> tuple[list[str], int]:
    """(flows whose outcome differs from the design, number of flows checked)."""
    policies = PolicySet.from_objects(objects)
    checked = flows(objects, config)
    wrong = [str(f) for f in checked if policies.reachable(f.source, f.target, f.protocol, f.port) != f.expected]
    return list(dict.fromkeys(wrong)), len(checked)
