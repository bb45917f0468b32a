"""What a task may change in its pod: the platform operator's allow-list, as data.

Templates, airflow.cfg and tiers are the operator's and trusted; a task (its ``kubernetes_config``
and ``pod_override``, written by DAG authors) is input.  The policy is an *allow-list* over what
a task adds or changes relative to the pod the operator's settings built
(:mod:`airflow_k8s.executor.pods.policy` applies it): a field, a volume kind, a name or an image
registry that is not listed is refused, so a setting nobody thought of cannot slip through.

Every list here extends a default that is derived from the operator's own settings (templates,
``worker_*`` keys), so an empty list means "only what the platform already uses":

========================  =====================================================================
airflow.cfg key           a task may additionally use
========================  =====================================================================
task_allowed_pod_fields   these ``spec`` fields at all (default :data:`DEFAULT_POD_FIELDS`)
task_allowed_service_     these service accounts (default: only the worker's, e.g. for cloud
accounts                  IAM bound to a service account)
task_allowed_priority_    these PriorityClasses (default: the ones of templates and config);
classes                   ``system-*`` classes never
task_allowed_secrets      these Secrets, in volumes, env, envFrom and imagePullSecrets
                          (default: none - not even those the templates use)
task_allowed_config_maps  these ConfigMaps (default: the ones templates use)
task_allowed_claims       these PersistentVolumeClaims, read-only (default: the ones templates
                          mount - the DAGs claim; never the scheduler's)
task_allowed_registries   images from these registries / repository prefixes (default: the
                          registries of the configured images)
task_allowed_node_        these nodeSelector pairs (default: the platform's pools: the pairs
selectors                 templates and ``worker_node_selector`` use)
task_allowed_tolerations  these tolerations (default: those templates and ``worker_tolerations``
                          use)
========================  =====================================================================

No runtime imports from the rest of the package: the config module builds on this one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow_k8s.executor.contract.config import Toleration

# PodSpec fields a task may set by default; each is judged by its own rule (pods.policy).
DEFAULT_POD_FIELDS: tuple[str, ...] = (
    "activeDeadlineSeconds",
    "affinity",
    "automountServiceAccountToken",
    "containers",
    "enableServiceLinks",
    "imagePullSecrets",
    "initContainers",
    "nodeSelector",
    "priorityClassName",
    "securityContext",
    "serviceAccountName",
    "terminationGracePeriodSeconds",
    "tolerations",
    "topologySpreadConstraints",
    "volumes",
)

# PodSpec fields an operator may add to task_allowed_pod_fields, and why they are off by default.
OPTIONAL_POD_FIELDS: dict[str, str] = {
    "dnsConfig": "custom nameservers bypass the cluster DNS the network policies are written for",
    "dnsPolicy": "dnsPolicy Default or None bypasses the cluster DNS",
    "hostAliases": "rewrites /etc/hosts, so the Execution API and database names could resolve elsewhere",
    "hostname": "task pods are named by the executor",
    "subdomain": "task pods are named by the executor",
    "setHostnameAsFQDN": "task pods are named by the executor",
    "readinessGates": "task pods are not behind Services",
    "runtimeClassName": "the container runtime (and its isolation) is the operator's choice",
    "schedulingGates": "a gated pod stays Pending until its pending timeout",
    "os": "task pods are Linux pods",
    "resourceClaims": "dynamic resource claims allocate devices outside the tiers and quotas",
    "resources": "pod-level resources bypass the per-container tier and hardening checks",
}

# PodSpec fields no task may ever set, whatever the config says, and why.
NEVER_POD_FIELDS: dict[str, str] = {
    "nodeName": "it skips the scheduler and every taint, quota-aware placement and pool",
    "hostNetwork": "host namespaces are forbidden",
    "hostPID": "host namespaces are forbidden",
    "hostIPC": "host namespaces are forbidden",
    "hostUsers": "user namespaces are the template's choice",
    "shareProcessNamespace": "other containers could read the task's processes, arguments and token",
    "ephemeralContainers": "debug containers are added by cluster administrators, not tasks",
    "schedulerName": "a task pod must go through the cluster's scheduler",
    "serviceAccount": "deprecated alias of serviceAccountName; use that",
    "priority": "set by the API server from priorityClassName",
    "preemptionPolicy": "set by the API server from priorityClassName",
    "overhead": "set by the API server from runtimeClassName",
    "restartPolicy": "task pods never restart: the executor sets Never",
}

# Container fields a task may set on a container it adds or changes (command/args not on base).
CONTAINER_FIELDS = frozenset(
    {
        "name",
        "image",
        "imagePullPolicy",
        "command",
        "args",
        "workingDir",
        "ports",
        "env",
        "envFrom",
        "resources",
        "resizePolicy",
        "restartPolicy",
        "volumeMounts",
        "livenessProbe",
        "readinessProbe",
        "startupProbe",
        "lifecycle",
        "terminationMessagePath",
        "terminationMessagePolicy",
        "securityContext",
        "stdin",
        "stdinOnce",
        "tty",
    }
)

# Label and annotation key prefixes (a domain and its subdomains) a task may not set: Kubernetes
# reserves kubernetes.io and k8s.io (app.kubernetes.io/* select the scheduler's Deployment,
# Service and PodDisruptionBudget; a task pod carrying them would be adopted by the scheduler's
# ReplicaSet), and iam.amazonaws.com picks an AWS role for kube2iam/kiam.
RESERVED_LABEL_DOMAINS = ("kubernetes.io", "k8s.io")
RESERVED_ANNOTATION_DOMAINS = ("kubernetes.io", "k8s.io", "iam.amazonaws.com")
# Reserved-domain annotations that only restrict what happens to the task's own pod.
ALLOWED_RESERVED_ANNOTATIONS = frozenset({"cluster-autoscaler.kubernetes.io/safe-to-evict"})

TERMINATION_GRACE_MAX = 300
"""Longest ``terminationGracePeriodSeconds`` a task may ask for: a deleted pod keeps running (and
holding quota) that long, so a larger value would outlast the executor's timeouts."""

SYSTEM_PRIORITY_PREFIX = "system-"


@dataclass(frozen=True)
class TaskPodPolicy:
    """The operator's additions to what a task may change; see the module docstring.

    ``node_selectors`` maps a label key to its allowed values.  Every name list *extends* the
    defaults derived from templates and config; ``pod_fields`` *replaces* :data:`DEFAULT_POD_FIELDS`.
    """

    pod_fields: tuple[str, ...] = DEFAULT_POD_FIELDS
    service_accounts: tuple[str, ...] = ()
    priority_classes: tuple[str, ...] = ()
    secrets: tuple[str, ...] = ()
    config_maps: tuple[str, ...] = ()
    claims: tuple[str, ...] = ()
    registries: tuple[str, ...] = ()
    node_selectors: tuple[tuple[str, tuple[str, ...]], ...] = ()
    tolerations: tuple[Toleration, ...] = ()


def reserved_key(key: str, domains: tuple[str, ...]) -> bool:
    """``key``'s prefix is one of ``domains`` or a subdomain of one (``app.kubernetes.io/name``)."""
    prefix, slash, _ = key.rpartition("/")
    return bool(slash) and any(prefix == domain or prefix.endswith("." + domain) for domain in domains)
