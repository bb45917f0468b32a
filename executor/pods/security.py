"""Pod Security Standards "restricted" (Kubernetes v1.34), checked offline, plus platform hardening.

:func:`restricted_violations` implements the controls the ``pod-security.kubernetes.io/enforce:
restricted`` admission level applies at :data:`PSS_VERSION`, so a pod or workload that passes
here is admitted by the namespaces infra creates.  Baseline controls (restricted includes them):

* host namespaces: ``hostNetwork``, ``hostPID``, ``hostIPC`` unset or false;
* ``privileged`` unset or false; Windows ``hostProcess`` unset or false (pod and containers);
* ``hostPath`` volumes forbidden; ``ports[*].hostPort`` unset or 0;
* AppArmor: ``appArmorProfile.type`` RuntimeDefault or Localhost (pod and containers), and the
  legacy ``container.apparmor.security.beta.kubernetes.io/*`` annotations ``runtime/default``,
  ``localhost/*`` or empty;
* SELinux: ``seLinuxOptions.type`` empty, ``container_t``, ``container_init_t`` or
  ``container_kvm_t``; ``user`` and ``role`` unset;
* ``procMount`` unset or ``Default``; seccomp never ``Unconfined``;
* ``sysctls`` only from the safe set; probe and lifecycle handlers set no ``host`` (new in 1.34).

Restricted controls:

* volumes only of the types configMap, csi, downwardAPI, emptyDir, ephemeral,
  persistentVolumeClaim, projected, secret (a volume naming no source defaults to emptyDir);
* ``allowPrivilegeEscalation: false`` on every container, explicitly;
* ``runAsNonRoot: true`` at pod level or on every container; ``false`` anywhere is a violation
  (a container's ``false`` overrides the pod's ``true`` in Kubernetes, so it is reported);
* ``runAsUser`` never 0 (pod or container);
* seccomp ``RuntimeDefault`` or ``Localhost`` at pod level or on every container (a container's
  own profile overrides the pod's);
* capabilities: ``drop`` includes ``ALL``; ``add`` only ``NET_BIND_SERVICE``.

Containers means ``containers``, ``initContainers`` and ``ephemeralContainers``.  Deliberately
stricter than the admission controller: the relaxations for Windows pods (``spec.os.name:
windows``) and for user-namespaced pods (``hostUsers: false``) are not applied; our workers are
Linux pods sharing the host user namespace.  The optional "non-root groups" control is not part
of the admission level and is not checked (the Airflow image runs with group 0 by convention).

:func:`hardening_violations` is the platform's own policy on top of PSS, kept separate because
PSS does not require it: read-only root filesystems, CPU and memory requests and limits on every
container, and no service-account token unless a pod is explicitly allowed one.

Every violation is one readable line that starts with the field path, e.g.
``spec.containers[0] (base): allowPrivilegeEscalation must be false``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from airflow_k8s.executor.contract.errors import PodPolicyError
from airflow_k8s.executor.pods.schema import KUBERNETES_MINOR, PodTemplateRef, find_pod_template

PSS_VERSION = f"v{KUBERNETES_MINOR}"
"""The Pod Security Standards version checked here; infra pins namespace labels to it."""

CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")

ALLOWED_VOLUME_TYPES = frozenset(
    {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"}
)
SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
        "net.ipv4.tcp_rmem",
        "net.ipv4.tcp_wmem",
    }
)
ALLOWED_SECCOMP = ("RuntimeDefault", "Localhost")
ALLOWED_APPARMOR = ("RuntimeDefault", "Localhost")
ALLOWED_SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t"})
ALLOWED_ADD_CAPABILITIES = frozenset({"NET_BIND_SERVICE"})
APPARMOR_ANNOTATION_PREFIX = "container.apparmor.security.beta.kubernetes.io/"
_HOST_NAMESPACES = ("hostNetwork", "hostPID", "hostIPC")
_PROBES = ("livenessProbe", "readinessProbe", "startupProbe")
_LIFECYCLE_HANDLERS = ("postStart", "preStop")
_HARDENED_RESOURCES = (("requests", "cpu"), ("requests", "memory"), ("limits", "cpu"), ("limits", "memory"))


def restricted_violations(obj: Mapping[str, Any]) -> list[str]:
    """Every Pod Security Standards "restricted" violation of ``obj``'s pod, one line each.

    ``obj`` is a Pod or a workload with a pod template (Deployment, ReplicaSet, StatefulSet,
    DaemonSet, Job, CronJob, ReplicationController, PodTemplate); anything else raises
    :class:`PodPolicyError`.  An empty list means the pod would be admitted.
    """
    ref = _pod_of(obj)
    spec, sp = ref.spec, ref.spec_path
    out: list[str] = []

    for field in _HOST_NAMESPACES:
        if spec.get(field) is True:
            out.append(f"{sp}: {field} must be false or unset (host namespaces are forbidden)")

    psc = _mapping(spec.get("securityContext"))
    psc_path = f"{sp}.securityContext"
    out.extend(f"{psc_path}: {v}" for v in _context_violations(psc))
    pod_non_root = psc.get("runAsNonRoot")
    if pod_non_root is not None and pod_non_root is not True:
        out.append(f"{psc_path}: runAsNonRoot must be true, not {_show(pod_non_root)}")
    pod_seccomp_set = psc.get("seccompProfile") is not None
    if pod_seccomp_set:
        kind = _mapping(psc.get("seccompProfile")).get("type")
        if kind not in ALLOWED_SECCOMP:
            out.append(f"{psc_path}: seccompProfile.type must be RuntimeDefault or Localhost, not {_show(kind)}")
    for index, sysctl in enumerate(_list(psc.get("sysctls"))):
        name = _mapping(sysctl).get("name")
        if name not in SAFE_SYSCTLS:
            out.append(f"{psc_path}: sysctls[{index}] {_show(name)} is not a safe sysctl")

    meta_path = f"{ref.path}.metadata" if ref.path else "metadata"
    for key, value in _mapping(ref.metadata.get("annotations")).items():
        if str(key).startswith(APPARMOR_ANNOTATION_PREFIX) and not _allowed_apparmor_annotation(value):
            out.append(
                f"{meta_path}: annotation {key} = {value!r} is a forbidden AppArmor profile "
                "(use runtime/default or localhost/<profile>)"
            )

    for index, raw_volume in enumerate(_list(spec.get("volumes"))):
        volume = _mapping(raw_volume)
        where = f"{sp}.volumes[{index}] ({volume.get('name')})"
        # A volume naming no source is defaulted to emptyDir by the API server.
        sources = sorted(key for key, value in volume.items() if key != "name" and value is not None)
        if "hostPath" in sources:
            out.append(f"{where}: hostPath volumes are forbidden")
        bad = [source for source in sources if source not in ALLOWED_VOLUME_TYPES and source != "hostPath"]
        if bad:
            out.append(
                f"{where}: volume type {', '.join(bad)} is not allowed "
                f"(allowed: {', '.join(sorted(ALLOWED_VOLUME_TYPES))})"
            )

    for where, container in _containers(spec, sp):
        csc = _mapping(container.get("securityContext"))
        if csc.get("privileged") is True:
            out.append(f"{where}: privileged must be false or unset")
        out.extend(f"{where}: {v}" for v in _context_violations(csc))
        caps = _mapping(csc.get("capabilities"))
        added = [str(cap) for cap in _list(caps.get("add")) if cap not in ALLOWED_ADD_CAPABILITIES]
        if added:
            out.append(
                f"{where}: capabilities.add must not include {', '.join(added)} (only NET_BIND_SERVICE may be added)"
            )
        if "ALL" not in _list(caps.get("drop")):
            out.append(f'{where}: capabilities.drop must include "ALL"')
        for port_index, port in enumerate(_list(container.get("ports"))):
            host_port = _mapping(port).get("hostPort")
            if host_port not in (None, 0):
                out.append(f"{where}: ports[{port_index}].hostPort must be unset or 0, not {_show(host_port)}")
        proc_mount = csc.get("procMount")
        if proc_mount not in (None, "Default"):
            out.append(f"{where}: procMount must be Default or unset, not {_show(proc_mount)}")
        if csc.get("allowPrivilegeEscalation") is not False:
            out.append(f"{where}: allowPrivilegeEscalation must be false")
        # Container-level settings override the pod's; an unset container inherits the pod's.
        non_root = csc.get("runAsNonRoot")
        if non_root is not None and non_root is not True:
            out.append(f"{where}: runAsNonRoot must be true, not {_show(non_root)}")
        elif non_root is None and pod_non_root is None:
            out.append(f"{where}: runAsNonRoot must be true (set it here or in {psc_path})")
        if csc.get("seccompProfile") is not None:
            kind = _mapping(csc.get("seccompProfile")).get("type")
            if kind not in ALLOWED_SECCOMP:
                out.append(f"{where}: seccompProfile.type must be RuntimeDefault or Localhost, not {_show(kind)}")
        elif not pod_seccomp_set:
            out.append(
                f"{where}: seccompProfile.type must be RuntimeDefault or Localhost (set it here or in {psc_path})"
            )
        out.extend(f"{where}: {v}" for v in _host_handler_violations(container))
    return out


def check_restricted(obj: Mapping[str, Any], *, where: str) -> None:
    """Raise :class:`PodPolicyError` listing every "restricted" violation of ``obj``."""
    violations = restricted_violations(obj)
    if violations:
        raise PodPolicyError(
            _report(where, f'violates Pod Security Standards "restricted" ({PSS_VERSION})', violations)
        )


def hardening_violations(obj: Mapping[str, Any], *, allow_token: bool = False) -> list[str]:
    """The platform's hardening rules beyond PSS, one line per violation.

    * ``readOnlyRootFilesystem: true`` on every container (ephemeral ones included);
    * ``resources.requests`` and ``resources.limits`` for ``cpu`` and ``memory`` on every
      container and init container (ephemeral containers may not have resources);
    * ``automountServiceAccountToken: false`` unless ``allow_token`` (unset means true).
    """
    ref = _pod_of(obj)
    spec, sp = ref.spec, ref.spec_path
    out: list[str] = []
    if not allow_token and spec.get("automountServiceAccountToken") is not False:
        out.append(f"{sp}: automountServiceAccountToken must be false (pods get no API token unless allowed)")
    for where, container in _containers(spec, sp):
        csc = _mapping(container.get("securityContext"))
        if csc.get("readOnlyRootFilesystem") is not True:
            out.append(f"{where}: readOnlyRootFilesystem must be true")
        if where.startswith(f"{sp}.ephemeralContainers"):
            continue
        resources = _mapping(container.get("resources"))
        missing = [
            f"{part}.{name}" for part, name in _HARDENED_RESOURCES if _mapping(resources.get(part)).get(name) is None
        ]
        if missing:
            out.append(f"{where}: resources must set {', '.join(missing)}")
    return out


def check_hardened(obj: Mapping[str, Any], *, where: str, allow_token: bool = False) -> None:
    """Raise :class:`PodPolicyError` listing every :func:`hardening_violations` entry."""
    violations = hardening_violations(obj, allow_token=allow_token)
    if violations:
        raise PodPolicyError(_report(where, "violates the platform hardening policy", violations))


def _report(where: str, headline: str, violations: list[str]) -> str:
    lines = "\n".join(f"  - {violation}" for violation in violations)
    return f"{where}: {headline}:\n{lines}"


def _pod_of(obj: Mapping[str, Any]) -> PodTemplateRef:
    if not isinstance(obj, Mapping):
        raise PodPolicyError(f"expected a Kubernetes object, got {type(obj).__name__}")
    ref = find_pod_template(obj)
    if ref is None:
        raise PodPolicyError(
            f"{obj.get('apiVersion')}/{obj.get('kind')} has no pod to check "
            "(expected a Pod or a workload with a pod template)"
        )
    return ref


def _context_violations(context: Mapping[str, Any]) -> list[str]:
    """Controls that apply alike to the pod's and to each container's security context."""
    out: list[str] = []
    if _mapping(context.get("windowsOptions")).get("hostProcess") is True:
        out.append("windowsOptions.hostProcess must be false or unset")
    if context.get("appArmorProfile") is not None:
        kind = _mapping(context.get("appArmorProfile")).get("type")
        if kind not in ALLOWED_APPARMOR:
            out.append(f"appArmorProfile.type must be RuntimeDefault or Localhost, not {_show(kind)}")
    selinux = _mapping(context.get("seLinuxOptions"))
    if selinux.get("type") not in (None, *ALLOWED_SELINUX_TYPES):
        out.append(
            f"seLinuxOptions.type {selinux.get('type')!r} is forbidden (container_t, container_init_t, container_kvm_t)"
        )
    for field in ("user", "role"):
        if selinux.get(field):
            out.append(f"seLinuxOptions.{field} must not be set")
    user = context.get("runAsUser")
    if isinstance(user, int) and not isinstance(user, bool) and user == 0:
        out.append("runAsUser must not be 0")
    return out


def _host_handler_violations(container: Mapping[str, Any]) -> Iterator[str]:
    handlers: list[tuple[str, Any]] = [(probe, container.get(probe)) for probe in _PROBES]
    lifecycle = _mapping(container.get("lifecycle"))
    handlers += [(f"lifecycle.{name}", lifecycle.get(name)) for name in _LIFECYCLE_HANDLERS]
    for name, handler in handlers:
        for action in ("httpGet", "tcpSocket"):
            host = _mapping(_mapping(handler).get(action)).get("host")
            if host:
                yield f"{name}.{action}.host must be empty or unset, not {host!r}"


def _containers(spec: Mapping[str, Any], spec_path: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for list_name in CONTAINER_LISTS:
        for index, raw in enumerate(_list(spec.get(list_name))):
            container = _mapping(raw)
            yield f"{spec_path}.{list_name}[{index}] ({container.get('name')})", container


def _allowed_apparmor_annotation(value: object) -> bool:
    return value in (None, "", "runtime/default") or (isinstance(value, str) and value.startswith("localhost/"))


def _show(value: object) -> str:
    """A value as YAML writes it (``false``, ``null``), strings quoted."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def _mapping(value: object) -> Mapping[str, Any]:
    if type(value) is dict:  # the common case, without the slow ABC check
        return value
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []
