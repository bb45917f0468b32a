"""CIDR arithmetic for the NetworkPolicies, kept Pulumi-free so stack config can check it too."""

from __future__ import annotations

import ipaddress
from typing import Any


def without_database(cidr: str, database: str) -> dict[str, Any] | None:
    """An ``ipBlock`` for ``cidr`` that excludes ``database``; None when ``cidr`` lies inside it.

    Task pods must never reach the database, so any extra egress they get has the database range
    cut out (``except`` must lie strictly inside ``cidr``); a range inside the database's can only
    be refused.
    """
    net, db = ipaddress.ip_network(cidr), ipaddress.ip_network(database)
    if net.version != db.version or not net.overlaps(db):
        return {"cidr": cidr}
    if net.subnet_of(db):  # type: ignore[arg-type]  # same IP version, checked above
        return None
    return {"cidr": cidr, "except": [database]}
