"""The rest of what a real API server adds to a new pod (``ClusterConfig.server_defaults``), and the Priority
admission plugin's lookup.

:func:`.pods.apply_pod_defaults` always fills in the basics (restartPolicy, terminationGracePeriodSeconds: 30,
dnsPolicy: ClusterFirst, schedulerName: default-scheduler, securityContext: {}, serviceAccountName, priority,
container imagePullPolicy/terminationMessage*, requests from limits, status.qosClass).  With ``server_defaults`` the
fake also applies, as kube-apiserver 1.31 does:

* API defaulting: ``enableServiceLinks: true``; ``serviceAccount`` (the deprecated mirror of
  ``serviceAccountName``); container ``ports[].protocol: TCP``; ``env[].valueFrom.fieldRef.apiVersion: v1``;
  ``defaultMode: 420`` on configMap/secret/projected/downwardAPI volumes; probe timeouts and thresholds.
* Priority plugin: ``preemptionPolicy`` (the class's, else ``PreemptLowerPriority``); the built-in
  ``system-cluster-critical``/``system-node-critical`` classes exist (also with ``reject_unknown_priority_class``,
  which refuses any other unknown class with 403).
* DefaultTolerationSeconds plugin: ``node.kubernetes.io/not-ready`` and ``node.kubernetes.io/unreachable``
  NoExecute tolerations for 300 s, unless the pod already tolerates them.
* ServiceAccount plugin: a ``kube-api-access-xxxxx`` projected volume mounted read-only at
  ``/var/run/secrets/kubernetes.io/serviceaccount`` in every container, unless ``automountServiceAccountToken``
  is false or something is mounted there already.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from .errors import forbidden

#: The PriorityClasses every real cluster has (known to the fake once a priority knob models the plugin).
SYSTEM_PRIORITY_CLASSES = {"system-cluster-critical": 2_000_000_000, "system-node-critical": 2_000_001_000}

TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
_DEFAULT_TOLERATIONS = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_rng = random.Random()
_PROBE_DEFAULTS = {"timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}


def check_priority_class(pod: Mapping[str, Any], known: Mapping[str, int]) -> None:
    """403 for a ``priorityClassName`` that names no PriorityClass (the Priority admission plugin)."""
    name = pod["spec"].get("priorityClassName")
    if name and name not in known:
        raise forbidden("pods", pod["metadata"]["name"], f"no PriorityClass with name {name} was found")


def _tolerates(tolerations: list[dict[str, Any]], key: str) -> bool:
    return any(t.get("key") in (key, None, "") and t.get("effect") in ("NoExecute", None, "") for t in tolerations)


def _containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]


def _token_volume() -> dict[str, Any]:
    suffix = "".join(_rng.choice(_SUFFIX_ALPHABET) for _ in range(5))
    return {
        "name": f"kube-api-access-{suffix}",
        "projected": {
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {
                    "downwardAPI": {
                        "items": [
                            {"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}
                        ]
                    }
                },
            ],
            "defaultMode": 420,
        },
    }


def _mount_token(spec: dict[str, Any]) -> None:
    if spec.get("automountServiceAccountToken") is False:
        return
    containers = _containers(spec)
    if any(m.get("mountPath") == TOKEN_PATH for c in containers for m in c.get("volumeMounts") or []):
        return
    volume = _token_volume()
    spec.setdefault("volumes", []).append(volume)
    for container in containers:
        mount = {"name": volume["name"], "readOnly": True, "mountPath": TOKEN_PATH}
        container.setdefault("volumeMounts", []).append(mount)


def _default_container(container: dict[str, Any]) -> None:
    for port in container.get("ports") or []:
        port.setdefault("protocol", "TCP")
    for env in container.get("env") or []:
        field_ref = (env.get("valueFrom") or {}).get("fieldRef")
        if isinstance(field_ref, dict):
            field_ref.setdefault("apiVersion", "v1")
    for probe_name in ("livenessProbe", "readinessProbe", "startupProbe"):
        probe = container.get(probe_name)
        if isinstance(probe, dict):
            for key, value in _PROBE_DEFAULTS.items():
                probe.setdefault(key, value)
            if isinstance(probe.get("httpGet"), dict):
                probe["httpGet"].setdefault("scheme", "HTTP")


def apply_server_defaults(pod: dict[str, Any], preemption_policies: Mapping[str, str]) -> dict[str, Any]:
    """Mutate ``pod`` (already through :func:`.pods.apply_pod_defaults`) as described above; returns it."""
    spec = pod["spec"]
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("serviceAccount", spec["serviceAccountName"])
    if "preemptionPolicy" not in spec:
        spec["preemptionPolicy"] = preemption_policies.get(spec.get("priorityClassName", ""), "PreemptLowerPriority")
    tolerations = spec.setdefault("tolerations", [])
    for key in _DEFAULT_TOLERATIONS:
        if not _tolerates(tolerations, key):
            tolerations.append({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300})
    for volume in spec.get("volumes") or []:
        for source in ("configMap", "secret", "projected", "downwardAPI"):
            if isinstance(volume.get(source), dict):
                volume[source].setdefault("defaultMode", 420)
    for container in _containers(spec):
        _default_container(container)
    _mount_token(spec)
    return pod
