"""airflow_k8s.executor.pods.security: Pod Security Standards "restricted" (v1.34) and the platform hardening policy."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from airflow_k8s.executor.contract.errors import PodPolicyError
from airflow_k8s.executor.pods import security

BASE = "spec.containers[0] (base)"


@pytest.fixture
def pod() -> dict[str, Any]:
    """A pod that is restricted-clean and hardened; tests break exactly one thing."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "task"},
        "spec": {
            "automountServiceAccountToken": False,
            "securityContext": {"runAsNonRoot": True, "runAsUser": 50000, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [
                {
                    "name": "base",
                    "image": "apache/airflow:2.8.0",
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]},
                    },
                    "resources": {
                        "requests": {"cpu": "250m", "memory": "512Mi"},
                        "limits": {"cpu": "500m", "memory": "1Gi"},
                    },
                }
            ],
            "volumes": [{"name": "tmp", "emptyDir": {}}],
        },
    }


def base(pod: dict[str, Any]) -> dict[str, Any]:
    return pod["spec"]["containers"][0]


def base_sc(pod: dict[str, Any]) -> dict[str, Any]:
    return base(pod)["securityContext"]


def pod_sc(pod: dict[str, Any]) -> dict[str, Any]:
    return pod["spec"]["securityContext"]


def test_a_compliant_pod_has_no_violations(pod):
    assert security.restricted_violations(pod) == []
    security.check_restricted(pod, where="t")


Mutation = Callable[[dict[str, Any]], None]

# (test id, how to break the pod, the one violation expected)
SINGLE_VIOLATIONS: list[tuple[str, Mutation, str]] = [
    ("privileged", lambda p: base_sc(p).update(privileged=True), f"{BASE}: privileged must be false or unset"),
    (
        "hostPath volume",
        lambda p: p["spec"]["volumes"].append({"name": "host", "hostPath": {"path": "/var/run"}}),
        "spec.volumes[1] (host): hostPath volumes are forbidden",
    ),
    ("hostNetwork", lambda p: p["spec"].update(hostNetwork=True), "spec: hostNetwork must be false or unset"),
    ("hostPID", lambda p: p["spec"].update(hostPID=True), "spec: hostPID must be false or unset"),
    ("hostIPC", lambda p: p["spec"].update(hostIPC=True), "spec: hostIPC must be false or unset"),
    (
        "added capability SYS_ADMIN",
        lambda p: base_sc(p)["capabilities"].update(add=["SYS_ADMIN"]),
        f"{BASE}: capabilities.add must not include SYS_ADMIN",
    ),
    (
        "capabilities not dropped",
        lambda p: base_sc(p)["capabilities"].update(drop=["NET_RAW"]),
        f'{BASE}: capabilities.drop must include "ALL"',
    ),
    ("pod runAsUser 0", lambda p: pod_sc(p).update(runAsUser=0), "spec.securityContext: runAsUser must not be 0"),
    ("container runAsUser 0", lambda p: base_sc(p).update(runAsUser=0), f"{BASE}: runAsUser must not be 0"),
    (
        "missing seccomp",
        lambda p: pod_sc(p).pop("seccompProfile"),
        f"{BASE}: seccompProfile.type must be RuntimeDefault or Localhost",
    ),
    (
        "pod seccomp Unconfined",
        lambda p: pod_sc(p).update(seccompProfile={"type": "Unconfined"}),
        "spec.securityContext: seccompProfile.type must be RuntimeDefault or Localhost, not 'Unconfined'",
    ),
    (
        "container seccomp Unconfined overrides the pod",
        lambda p: base_sc(p).update(seccompProfile={"type": "Unconfined"}),
        f"{BASE}: seccompProfile.type must be RuntimeDefault or Localhost, not 'Unconfined'",
    ),
    (
        "container runAsNonRoot false overrides the pod's true",
        lambda p: base_sc(p).update(runAsNonRoot=False),
        f"{BASE}: runAsNonRoot must be true, not false",
    ),
    (
        "runAsNonRoot set nowhere",
        lambda p: pod_sc(p).pop("runAsNonRoot"),
        f"{BASE}: runAsNonRoot must be true",
    ),
    (
        "pod runAsNonRoot false",
        lambda p: pod_sc(p).update(runAsNonRoot=False),
        "spec.securityContext: runAsNonRoot must be true, not false",
    ),
    (
        "allowPrivilegeEscalation unset",
        lambda p: base_sc(p).pop("allowPrivilegeEscalation"),
        f"{BASE}: allowPrivilegeEscalation must be false",
    ),
    (
        "hostPort",
        lambda p: base(p).update(ports=[{"containerPort": 8080, "hostPort": 8080}]),
        f"{BASE}: ports[0].hostPort must be unset or 0",
    ),
    (
        "AppArmor Unconfined",
        lambda p: base_sc(p).update(appArmorProfile={"type": "Unconfined"}),
        f"{BASE}: appArmorProfile.type must be RuntimeDefault or Localhost, not 'Unconfined'",
    ),
    (
        "AppArmor annotation unconfined",
        lambda p: p["metadata"].update(
            annotations={"container.apparmor.security.beta.kubernetes.io/base": "unconfined"}
        ),
        "metadata: annotation container.apparmor.security.beta.kubernetes.io/base = 'unconfined'",
    ),
    (
        "SELinux custom type",
        lambda p: pod_sc(p).update(seLinuxOptions={"type": "spc_t"}),
        "spec.securityContext: seLinuxOptions.type 'spc_t' is forbidden",
    ),
    (
        "SELinux user",
        lambda p: base_sc(p).update(seLinuxOptions={"user": "system_u"}),
        f"{BASE}: seLinuxOptions.user must not be set",
    ),
    (
        "procMount Unmasked",
        lambda p: base_sc(p).update(procMount="Unmasked"),
        f"{BASE}: procMount must be Default or unset, not 'Unmasked'",
    ),
    (
        "unsafe sysctl",
        lambda p: pod_sc(p).update(sysctls=[{"name": "kernel.msgmax", "value": "1"}]),
        "spec.securityContext: sysctls[0] 'kernel.msgmax' is not a safe sysctl",
    ),
    (
        "Windows hostProcess",
        lambda p: base_sc(p).update(windowsOptions={"hostProcess": True}),
        f"{BASE}: windowsOptions.hostProcess must be false or unset",
    ),
    (
        "probe host",
        lambda p: base(p).update(livenessProbe={"httpGet": {"host": "10.0.0.1", "port": 80}}),
        f"{BASE}: livenessProbe.httpGet.host must be empty or unset",
    ),
    (
        "nfs volume",
        lambda p: p["spec"]["volumes"].append({"name": "share", "nfs": {"server": "nfs", "path": "/"}}),
        "spec.volumes[1] (share): volume type nfs is not allowed",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "expected"), [c[1:] for c in SINGLE_VIOLATIONS], ids=[c[0] for c in SINGLE_VIOLATIONS]
)
def test_each_violation_kind_is_flagged_alone(pod, mutate, expected):
    mutate(pod)
    violations = security.restricted_violations(pod)
    assert len(violations) == 1, violations
    assert violations[0].startswith(expected)


ALLOWED: list[tuple[str, Mutation]] = [
    ("NET_BIND_SERVICE may be added", lambda p: base_sc(p)["capabilities"].update(add=["NET_BIND_SERVICE"])),
    ("a Localhost seccomp profile", lambda p: pod_sc(p).update(seccompProfile={"type": "Localhost"})),
    ("a safe sysctl", lambda p: pod_sc(p).update(sysctls=[{"name": "net.ipv4.tcp_keepalive_time", "value": "60"}])),
    ("hostPort 0", lambda p: base(p).update(ports=[{"containerPort": 80, "hostPort": 0}])),
    ("SELinux container_init_t", lambda p: base_sc(p).update(seLinuxOptions={"type": "container_init_t"})),
    ("a volume without a source (defaults to emptyDir)", lambda p: p["spec"]["volumes"].append({"name": "scratch"})),
    ("runtime/default AppArmor annotation", lambda p: p["metadata"].update(
        annotations={"container.apparmor.security.beta.kubernetes.io/base": "runtime/default"})),
]  # fmt: skip


@pytest.mark.parametrize("mutate", [c[1] for c in ALLOWED], ids=[c[0] for c in ALLOWED])
def test_allowed_values_pass(pod, mutate):
    mutate(pod)
    assert security.restricted_violations(pod) == []


def test_container_level_settings_satisfy_the_rules_without_pod_level_ones(pod):
    del pod["spec"]["securityContext"]
    base_sc(pod).update(runAsNonRoot=True, seccompProfile={"type": "RuntimeDefault"})
    assert security.restricted_violations(pod) == []


def test_init_container_violations_name_the_init_container(pod):
    pod["spec"]["initContainers"] = [
        {"name": "wait-db", "image": "busybox", "securityContext": {"capabilities": {"drop": ["ALL"]}}}
    ]
    violations = security.restricted_violations(pod)
    assert violations == ["spec.initContainers[0] (wait-db): allowPrivilegeEscalation must be false"]


def test_ephemeral_containers_are_checked(pod):
    pod["spec"]["ephemeralContainers"] = [
        {"name": "debug", "image": "busybox", "securityContext": {"privileged": True}}
    ]
    violations = security.restricted_violations(pod)
    assert "spec.ephemeralContainers[0] (debug): privileged must be false or unset" in violations
    assert 'spec.ephemeralContainers[0] (debug): capabilities.drop must include "ALL"' in violations


def test_a_deployment_pod_template_is_checked_with_template_paths(pod):
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "scheduler"},
        "spec": {"template": {"metadata": {}, "spec": copy.deepcopy(pod["spec"])}},
    }
    assert security.restricted_violations(deployment) == []
    deployment["spec"]["template"]["spec"]["hostNetwork"] = True
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"]["privileged"] = True
    assert security.restricted_violations(deployment) == [
        "spec.template.spec: hostNetwork must be false or unset (host namespaces are forbidden)",
        "spec.template.spec.containers[0] (base): privileged must be false or unset",
    ]


def test_a_cronjob_pod_template_is_checked(pod):
    spec = copy.deepcopy(pod["spec"])
    spec["securityContext"]["runAsUser"] = 0
    cronjob = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "spec": {"jobTemplate": {"spec": {"template": {"spec": spec}}}},
    }
    assert security.restricted_violations(cronjob) == [
        "spec.jobTemplate.spec.template.spec.securityContext: runAsUser must not be 0"
    ]


def test_objects_without_a_pod_are_refused():
    with pytest.raises(PodPolicyError, match="has no pod to check"):
        security.restricted_violations({"apiVersion": "v1", "kind": "ConfigMap", "data": {}})


def test_check_restricted_lists_every_violation_and_where(pod):
    base_sc(pod)["privileged"] = True
    pod["spec"]["hostPID"] = True
    with pytest.raises(PodPolicyError) as info:
        security.check_restricted(pod, where="pod for task dag.task")
    message = str(info.value)
    assert message.startswith('pod for task dag.task: violates Pod Security Standards "restricted" (v1.34)')
    assert "privileged must be false" in message
    assert "hostPID must be false" in message


def test_the_pss_version_follows_the_pinned_kubernetes_version():
    assert security.PSS_VERSION == "v1.34"


# Hardening: the platform's policy beyond PSS.


def test_a_hardened_pod_has_no_hardening_violations(pod):
    assert security.hardening_violations(pod) == []
    security.check_hardened(pod, where="t")


def test_a_writable_root_filesystem_is_a_hardening_violation_not_a_pss_one(pod):
    del base_sc(pod)["readOnlyRootFilesystem"]
    assert security.restricted_violations(pod) == []
    assert security.hardening_violations(pod) == [f"{BASE}: readOnlyRootFilesystem must be true"]


def test_missing_limits_are_a_hardening_violation(pod):
    del base(pod)["resources"]["limits"]["memory"]
    del base(pod)["resources"]["requests"]["cpu"]
    assert security.hardening_violations(pod) == [f"{BASE}: resources must set requests.cpu, limits.memory"]


def test_init_containers_need_resources_too(pod):
    pod["spec"]["initContainers"] = [{"name": "init", "securityContext": {"readOnlyRootFilesystem": True}}]
    assert security.hardening_violations(pod) == [
        "spec.initContainers[0] (init): resources must set requests.cpu, requests.memory, limits.cpu, limits.memory"
    ]


def test_a_service_account_token_needs_explicit_permission(pod):
    del pod["spec"]["automountServiceAccountToken"]
    assert security.hardening_violations(pod) == [
        "spec: automountServiceAccountToken must be false (pods get no API token unless allowed)"
    ]
    assert security.hardening_violations(pod, allow_token=True) == []
    with pytest.raises(PodPolicyError, match="hardening"):
        security.check_hardened(pod, where="scheduler")
