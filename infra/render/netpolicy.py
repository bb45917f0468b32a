"""A NetworkPolicy evaluator: may this pod open a connection to that pod or address on this port?

The standard semantics (``networking.k8s.io/v1``), as every conforming CNI implements them:

* a pod is isolated for egress (ingress) when at least one policy of its namespace selects it with
  ``Egress`` (``Ingress``) in ``policyTypes``; an isolated pod may only make the connections some
  rule of some selecting policy allows - policies add up, none denies;
* a rule allows when its ``ports`` match (none: every port; a port without a number: every port
  of the protocol, default TCP; ``endPort`` ranges) and one of its peers matches (none: everyone);
* a peer ``podSelector`` alone selects pods of the policy's namespace, ``namespaceSelector`` alone
  every pod of the selected namespaces, both together the selected pods of those namespaces
  (namespaces are matched by their labels, ``kubernetes.io/metadata.name`` included); an
  ``ipBlock`` matches an address inside ``cidr`` and outside every ``except``;
* a connection between two pods needs the source's egress *and* the destination's ingress.

Two modelling choices, because a render knows no pod IPs: a pod is matched by an ``ipBlock`` only
when the block covers every address (``0.0.0.0/0``, ``::/0``) - named CIDRs are taken to be outside
the cluster; and the ingress side of pods outside the platform's namespace (kube-dns) is taken as
open, since their policies are not the platform's.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


@dataclass(frozen=True)
class Pod:
    namespace: str
    labels: Mapping[str, str]
    what: str


@dataclass(frozen=True)
class Target:
    """A pod, or an address outside the cluster."""

    what: str
    pod: Pod | None = None
    ip: str | None = None


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Does a LabelSelector match ``labels`` (an empty selector matches everything)?"""
    if not selector:
        return True
    if any(labels.get(key) != value for key, value in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def _port_matches(rule_ports: Sequence[Mapping[str, Any]] | None, protocol: str, port: int) -> bool:
    if not rule_ports:
        return True
    for entry in rule_ports:
        if entry.get("protocol", "TCP") != protocol:
            continue
        number = entry.get("port")
        if number is None:
            return True
        if isinstance(number, int) and number <= port <= int(entry.get("endPort", number)):
            return True
    return False


def _in_block(block: Mapping[str, Any], ip: str) -> bool:
    address = ipaddress.ip_address(ip)
    net = ipaddress.ip_network(block["cidr"])
    if address.version != net.version or address not in net:
        return False
    return not any(address in ipaddress.ip_network(cut) for cut in block.get("except") or [])


@dataclass
class PolicySet:
    """The NetworkPolicies of a render and the labels of the namespaces they refer to."""

    policies: list[Mapping[str, Any]]
    namespace_labels: dict[str, Mapping[str, str]] = field(default_factory=dict)

    @classmethod
    def from_objects(cls, objects: Iterable[Mapping[str, Any]]) -> PolicySet:
        policies: list[Mapping[str, Any]] = []
        namespaces: dict[str, Mapping[str, str]] = {}
        for obj in objects:
            if obj.get("kind") == "NetworkPolicy":
                policies.append(obj)
            elif obj.get("kind") == "Namespace":
                meta = obj.get("metadata") or {}
                namespaces[meta["name"]] = dict(meta.get("labels") or {})
        return cls(policies, namespaces)

    def _namespace_labels(self, name: str) -> Mapping[str, str]:
        return {**self.namespace_labels.get(name, {}), NAMESPACE_NAME_LABEL: name}

    def _selecting(self, pod: Pod, direction: str) -> list[Mapping[str, Any]]:
        return [
            p
            for p in self.policies
            if (p.get("metadata") or {}).get("namespace") == pod.namespace
            and direction in (p["spec"].get("policyTypes") or [])
            and selects(p["spec"].get("podSelector"), pod.labels)
        ]

    def _peer_matches(self, peer: Mapping[str, Any], policy_namespace: str, target: Target) -> bool:
        if "ipBlock" in peer:
            block = peer["ipBlock"]
            if target.ip is not None:
                return _in_block(block, target.ip)
            return ipaddress.ip_network(block["cidr"]).prefixlen == 0  # pods only by a block covering everything
        pod = target.pod
        if pod is None:
            return False
        if "namespaceSelector" in peer:
            if not selects(peer["namespaceSelector"], self._namespace_labels(pod.namespace)):
                return False
        elif pod.namespace != policy_namespace:
            return False
        return selects(peer.get("podSelector"), pod.labels)

    def _allowed(self, pod: Pod, direction: str, other: Target, protocol: str, port: int) -> bool:
        selecting = self._selecting(pod, direction)
        if not selecting:
            return True
        key, peers_key = ("egress", "to") if direction == "Egress" else ("ingress", "from")
        for policy in selecting:
            namespace = policy["metadata"]["namespace"]
            for rule in policy["spec"].get(key) or []:
                if not _port_matches(rule.get("ports"), protocol, port):
                    continue
                peers = rule.get(peers_key)
                if not peers or any(self._peer_matches(peer, namespace, other) for peer in peers):
                    return True
        return False

    def reachable(self, source: Pod, target: Target, protocol: str, port: int) -> bool:
        """May ``source`` connect to ``target`` on ``protocol``/``port`` (egress, then the target's ingress)?"""
        if not self._allowed(source, "Egress", target, protocol, port):
            return False
        if target.pod is None or target.pod.namespace not in {p["metadata"]["namespace"] for p in self.policies}:
            return True
        return self._allowed(target.pod, "Ingress", Target(source.what, pod=source), protocol, port)
