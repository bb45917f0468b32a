"""Switchable admission: Pod Security "restricted" enforcement, ResourceQuota (see :mod:`.quotas`) and the
Priority plugin's refusal of unknown PriorityClasses.

All reject with 403 Forbidden and the real plugins' messages::

    pods "p" is forbidden: violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false (container
    "base" must set securityContext.allowPrivilegeEscalation=false), ...
    pods "p" is forbidden: exceeded quota: pod-quota, requested: pods=1, used: pods=2, limited: pods=2
    pods "p" is forbidden: no PriorityClass with name nope was found
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from .config import ClusterConfig
from .errors import forbidden
from .quotas import Quotas
from .store import Store

_ALLOWED_ADD = {"NET_BIND_SERVICE"}


def _containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]


def _quoted(names: list[str]) -> str:
    return ", ".join(f'"{n}"' for n in names)


def _plural(names: list[str]) -> str:
    return "container" if len(names) == 1 else "containers"


def pod_security_violations(pod: dict[str, Any]) -> list[str]:
    """The checks of the "restricted" Pod Security Standard (latest), phrased as the PodSecurity plugin does."""
    spec = pod.get("spec") or {}
    pod_sc = spec.get("securityContext") or {}
    containers = _containers(spec)
    out: list[str] = []

    def failing(predicate: Any) -> list[str]:
        return [c.get("name", "") for c in containers if predicate(c.get("securityContext") or {})]

    privileged = failing(lambda sc: sc.get("privileged") is True)
    if privileged:
        out.append(
            f"privileged ({_plural(privileged)} {_quoted(privileged)} must not set securityContext.privileged=true)"
        )
    host = [f"{k}=true" for k in ("hostNetwork", "hostPID", "hostIPC") if spec.get(k)]
    if host:
        out.append(f"host namespaces ({', '.join(host)})")
    host_paths = [v.get("name", "") for v in spec.get("volumes") or [] if "hostPath" in v]
    if host_paths:
        out.append(f"hostPath volumes ({'volume' if len(host_paths) == 1 else 'volumes'} {_quoted(host_paths)})")
    escalation = failing(lambda sc: sc.get("allowPrivilegeEscalation") is not False)
    if escalation:
        out.append(
            f"allowPrivilegeEscalation != false ({_plural(escalation)} {_quoted(escalation)} must set "
            "securityContext.allowPrivilegeEscalation=false)"
        )
    caps: list[str] = []
    no_drop = failing(lambda sc: "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []))
    if no_drop:
        caps.append(f'{_plural(no_drop)} {_quoted(no_drop)} must set securityContext.capabilities.drop=["ALL"]')
    for c in containers:
        added = [a for a in ((c.get("securityContext") or {}).get("capabilities") or {}).get("add") or []]
        bad = [a for a in added if a not in _ALLOWED_ADD]
        if bad:
            caps.append(
                f'container "{c.get("name", "")}" must not include {_quoted(bad)} in securityContext.capabilities.add'
            )
    if caps:
        out.append(f"unrestricted capabilities ({'; '.join(caps)})")
    pod_non_root = pod_sc.get("runAsNonRoot") is True
    non_root = failing(
        lambda sc: sc.get("runAsNonRoot") is False or (sc.get("runAsNonRoot") is not True and not pod_non_root)
    )
    if non_root:
        out.append(
            f"runAsNonRoot != true (pod or {_plural(non_root)} {_quoted(non_root)} must set "
            "securityContext.runAsNonRoot=true)"
        )
    root = failing(lambda sc: sc.get("runAsUser") == 0)
    if pod_sc.get("runAsUser") == 0 or root:
        who = "pod" if pod_sc.get("runAsUser") == 0 else f"{_plural(root)} {_quoted(root)}"
        out.append(f"runAsUser=0 ({who} must not set runAsUser=0)")
    good = ("RuntimeDefault", "Localhost")
    pod_seccomp = (pod_sc.get("seccompProfile") or {}).get("type")
    seccomp = failing(lambda sc: ((sc.get("seccompProfile") or {}).get("type") or pod_seccomp) not in good)
    if seccomp:
        out.append(
            f"seccompProfile (pod or {_plural(seccomp)} {_quoted(seccomp)} must set "
            'securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")'
        )
    return out


class Admission:
    """Switches for the admission checks (thread-safe to flip while the server runs)."""

    def __init__(self, store: Store | None = None, config: Callable[[], ClusterConfig] = ClusterConfig) -> None:
        self._lock = threading.Lock()
        self._pod_security: frozenset[str] | None = None  # None: off; empty set: every namespace
        self.quotas = Quotas(store or Store(), config)

    def enforce_pod_security(self, enabled: bool = True, namespaces: list[str] | None = None) -> None:
        """Enforce "restricted" in ``namespaces`` (None: all of them), or switch it off."""
        with self._lock:
            self._pod_security = frozenset(namespaces or ()) if enabled else None

    def set_quota(self, namespace: str, pods: int | None, name: str = "pod-quota") -> None:
        """A ResourceQuota limiting ``namespace`` to ``pods`` pods (``pods=None`` removes it)."""
        self.quotas.set_pod_quota(namespace, pods, name)

    def describe(self) -> dict[str, Any]:
        with self._lock:
            security = None if self._pod_security is None else sorted(self._pod_security) or ["*"]
        return {"pod_security": security, "quotas": self.quotas.describe()}

    def check_pod(self, pod: dict[str, Any]) -> None:
        """Pod Security (before the object is stored)."""
        scope = self._pod_security
        namespace, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        if scope is None or (scope and namespace not in scope):
            return
        violations = pod_security_violations(pod)
        if violations:
            raise forbidden("pods", name, f'violates PodSecurity "restricted:latest": {", ".join(violations)}')

    def quota_check(self, pod: dict[str, Any]) -> Callable[[Store], None] | None:
        """A callback for :meth:`Store.create` that enforces the namespace's quotas atomically with the write."""
        meta = pod["metadata"]
        return self.quotas.admit(meta["namespace"], meta["name"], pod)
