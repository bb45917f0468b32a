"""CIDR arithmetic for the NetworkPolicies, kept Pulumi-free so stack config can check it too."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

# Link-local: cloud metadata endpoints (169.254.169.254: instance credentials) live here.  Task egress
# never includes it; NodeLocal DNSCache's link-local address is allowed by the DNS policy alone.
LINK_LOCAL = ("169.254.0.0/16", "fe80::/10")


def is_open(cidr: str) -> bool:
    """True for a range that covers every address (``0.0.0.0/0``, ``::/0``)."""
    return ipaddress.ip_network(cidr).prefixlen == 0


def inside(cidr: str, other: str) -> bool:
    """Does ``cidr`` lie within ``other`` (same IP version)?"""
    net, outer = ipaddress.ip_network(cidr), ipaddress.ip_network(other)
    return net.version == outer.version and net.subnet_of(outer)  # type: ignore[arg-type]


def excluding(cidr: str, ranges: Iterable[str]) -> dict[str, Any] | None:
    """An ``ipBlock`` for ``cidr`` with every one of ``ranges`` inside it cut out; None when ``cidr`` lies
    inside one of them (nothing is left to allow).  Ranges of the other IP version, or disjoint, are
    ignored; CIDRs either nest or are disjoint, so ``except`` (which must lie strictly inside ``cidr``)
    is always well-formed.
    """
    net = ipaddress.ip_network(cidr)
    cut: list[str] = []
    for text in ranges:
        other = ipaddress.ip_network(text)
        if other.version != net.version or not net.overlaps(other):
            continue
        if net.subnet_of(other):  # type: ignore[arg-type]  # same IP version, checked above
            return None
        if str(other) not in cut:
            cut.append(str(other))
    return {"cidr": cidr, "except": cut} if cut else {"cidr": cidr}


def without_database(cidr: str, database: str) -> dict[str, Any] | None:
    """An ``ipBlock`` for ``cidr`` that excludes ``database``; None when ``cidr`` lies inside it.

    Task pods must never reach the database, so any extra egress they get has the database range
    cut out (``except`` must lie strictly inside ``cidr``); a range inside the database's can only
    be refused.
    """
    return excluding(cidr, [database])


def task_exclusions(database_cidr: str, api_server_cidr: str, *, database_port_open: bool = True) -> list[str]:
    """What task egress never includes: the database (when the allowance covers its port), the
    Kubernetes API server's range (when it is named, i.e. not ``0.0.0.0/0``) and link-local addresses."""
    out = [database_cidr] if database_port_open else []
    if not is_open(api_server_cidr):
        out.append(api_server_cidr)
    return [*out, *LINK_LOCAL]
