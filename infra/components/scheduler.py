"""The executor scheduler: Deployment, metrics Service, PodDisruptionBudget and its state claim.

Deployment, and why:

* one replica, ``strategy: Recreate`` - two schedulers would both launch pods for the same
  queue; Recreate stops the old pod before the new one starts (RollingUpdate would overlap).
  The ``ReadWriteOnce`` state claim needs it too: the old pod releases the volume before the new
  one mounts it (a surge pod on another node could never attach it);
* ``args: python -m airflow_k8s.executor run --config /opt/airflow/airflow.cfg`` (args, not command, so an
  image entrypoint such as tini stays in charge);
* airflow.cfg mounted with ``subPath`` at /opt/airflow/airflow.cfg, the templates ConfigMap at the
  config's ``pod_template_dir``, the task intake spool at its ``task_intake_dir``, an emptyDir at
  /tmp - every path taken from the same :class:`~airflow_k8s.executor.contract.config.ExecutorConfig` that airflow.cfg
  was rendered from;
* the spool (``incoming/`` tasks, ``results/``, ``rejected/``) is a ``ReadWriteOnce``
  PersistentVolumeClaim ``<platform>-executor-state``, declared here with
  :func:`airflow_k8s.infra.components.storage.volume_claim`: the executor loses no task and runs none twice across
  restarts (:mod:`airflow_k8s.executor.engine.core`) only while the spool survives, and an emptyDir is gone
  whenever the pod moves to another node (drain, eviction, upgrade).  The pod's ``fsGroup`` (the
  scheduler's GID) makes the volume writable for the non-root scheduler; ``fsGroupChangePolicy:
  OnRootMismatch`` skips the recursive ownership change at every start once it is done.
  ``intakeStorage: emptyDir`` keeps an emptyDir (``sizeLimit`` = the configured size) instead,
  for throwaway clusters only;
* the pod-template annotation ``airflow-k8s/config-sha256`` (airflow.cfg + templates) rolls the
  pod on any config change, which a subPath mount would otherwise never see;
* PSS restricted plus read-only root filesystem, non-root UID 10001, no privilege escalation,
  all capabilities dropped, RuntimeDefault seccomp, requests and limits;
* the scheduler service account's token is mounted (explicitly): it is the API client;
* liveness ``/healthz`` and readiness ``/readyz`` on the named ``metrics`` port.

PodDisruptionBudget ``maxUnavailable: 1``: the scheduler is a single replica and restart-safe
(deterministic pod names make re-creation idempotent, it relists pods on start, its spool is on
the state claim, and running task pods do not depend on it).  ``minAvailable: 1`` would make
every node drain and cluster upgrade hang on this pod forever; with ``maxUnavailable: 1`` an
eviction is always allowed, the budget documents that on purpose, and
``unhealthyPodEvictionPolicy: AlwaysAllow`` keeps a crash-looping scheduler from ever blocking a
drain.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from airflow_k8s.executor.contract.config import ExecutorConfig
from airflow_k8s.executor.contract.errors import PodPolicyError
from airflow_k8s.executor.pods import security
from airflow_k8s.infra.components.configmaps import AIRFLOW_CFG_KEY
from airflow_k8s.infra.components.k8s import TOKEN_PREFIX, child, metadata, name_of, raw
from airflow_k8s.infra.components.names import CONFIG_HASH_ANNOTATION, ROLE_LABEL, PlatformNames
from airflow_k8s.infra.components.storage import volume_claim
from airflow_k8s.infra.config.args import IntakeStorageSpec, SchedulerSpec

CONFIG_PATH = "/opt/airflow/airflow.cfg"
CONTAINER = "scheduler"
RUN_AS = 10001
METRICS_PORT_NAME = "metrics"
INTAKE_VOLUME = "task-intake"


@dataclass(frozen=True)
class SchedulerWiring:
    """Resolved names the Deployment refers to."""

    namespace: str
    service_account: str
    airflow_config_map: str
    templates_config_map: str
    checksum: str
    intake_claim: str | None = None  # None: the spool is an emptyDir


def intake_volume(intake: IntakeStorageSpec, claim: str | None) -> dict[str, Any]:
    """The pod volume of the task intake spool: the state claim, or an emptyDir (opt-out)."""
    if intake.durable:
        if not claim:
            raise ValueError("the durable task intake spool needs its PersistentVolumeClaim's name")
        return {"name": INTAKE_VOLUME, "persistentVolumeClaim": {"claimName": claim}}
    return {"name": INTAKE_VOLUME, "emptyDir": {"sizeLimit": intake.size}}


def pod_labels(names: PlatformNames) -> dict[str, str]:
    return {**names.common_labels("scheduler"), **names.scheduler_selector(), ROLE_LABEL: "scheduler"}


def deployment_manifest(
    names: PlatformNames,
    spec: SchedulerSpec,
    config: ExecutorConfig,
    wiring: SchedulerWiring,
    intake: IntakeStorageSpec,
) -> dict[str, Any]:
    """The full Deployment object (validated: PSS restricted + platform hardening)."""
    port = {"port": METRICS_PORT_NAME}
    container = {
        "name": CONTAINER,
        "image": spec.image,
        "imagePullPolicy": spec.image_pull_policy,
        "args": ["python", "-m", "airflow_k8s.executor", "run", "--config", CONFIG_PATH],
        "env": [{"name": "PYTHONUNBUFFERED", "value": "1"}, {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"}],
        "ports": [{"name": METRICS_PORT_NAME, "containerPort": config.metrics_port, "protocol": "TCP"}],
        "livenessProbe": {"httpGet": {"path": "/healthz", **port}, "initialDelaySeconds": 15, "periodSeconds": 20,
                          "timeoutSeconds": 5, "failureThreshold": 3},
        "readinessProbe": {"httpGet": {"path": "/readyz", **port}, "periodSeconds": 10, "timeoutSeconds": 5,
                           "failureThreshold": 3},
        "resources": {
            "requests": {"cpu": spec.cpu_request, "memory": spec.memory_request},
            "limits": {"cpu": spec.cpu_limit, "memory": spec.memory_limit},
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "runAsUser": RUN_AS,
            "runAsGroup": RUN_AS,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": "airflow-cfg", "mountPath": CONFIG_PATH, "subPath": AIRFLOW_CFG_KEY, "readOnly": True},
            {"name": "pod-templates", "mountPath": config.pod_template_dir, "readOnly": True},
            {"name": INTAKE_VOLUME, "mountPath": config.task_intake_dir},
            {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - an emptyDir, private to the pod
        ],
    }  # fmt: skip
    labels = pod_labels(names)
    manifest = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(names.scheduler_deployment, wiring.namespace, names.common_labels("scheduler")),
        "spec": {
            "replicas": 1,
            "revisionHistoryLimit": 3,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": names.scheduler_selector()},
            "template": {
                "metadata": {"labels": labels, "annotations": {CONFIG_HASH_ANNOTATION: wiring.checksum}},
                "spec": {
                    "serviceAccountName": wiring.service_account,
                    "automountServiceAccountToken": True,
                    "enableServiceLinks": False,
                    "terminationGracePeriodSeconds": 30,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": RUN_AS,
                        "runAsGroup": RUN_AS,
                        "fsGroup": RUN_AS,  # the state claim is writable for the non-root scheduler
                        "fsGroupChangePolicy": "OnRootMismatch",
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                    "volumes": [
                        {"name": "airflow-cfg", "configMap": {"name": wiring.airflow_config_map}},
                        {"name": "pod-templates", "configMap": {"name": wiring.templates_config_map}},
                        intake_volume(intake, wiring.intake_claim),
                        {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}},
                    ],
                },
            },
        },
    }
    violations = security.restricted_violations(manifest) + security.hardening_violations(manifest, allow_token=True)
    if violations:
        lines = "\n".join(f"  - {v}" for v in violations)
        raise PodPolicyError(f"scheduler Deployment {names.scheduler_deployment}: policy violations:\n{lines}")
    return manifest


@dataclass(frozen=True)
class SchedulerArgs:
    names: PlatformNames
    spec: SchedulerSpec
    namespace: pulumi.Input[str]
    service_account: pulumi.Input[str]
    airflow_config_map: pulumi.Input[str]
    templates_config_map: pulumi.Input[str]
    checksum: pulumi.Input[str]
    executor_config: pulumi.Output[ExecutorConfig]
    intake: IntakeStorageSpec = field(default_factory=IntakeStorageSpec)


class SchedulerDeployment(pulumi.ComponentResource):
    deployment_name: pulumi.Output[str]
    service_name: pulumi.Output[str]
    intake_claim_name: pulumi.Output[str | None]

    def __init__(self, name: str, args: SchedulerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TOKEN_PREFIX}SchedulerDeployment", name, None, opts)
        n = args.names
        intake_claim: pulumi.Output[str | None] = pulumi.Output.from_input(None)
        if args.intake.durable:
            claim = volume_claim(
                f"{name}-state", n.executor_state_pvc, args.namespace, args.intake,
                n.common_labels("executor-state"), self,
            )  # fmt: skip
            intake_claim = name_of(claim)
        manifest = pulumi.Output.all(
            args.executor_config, args.namespace, args.service_account, args.airflow_config_map,
            args.templates_config_map, args.checksum, intake_claim,
        ).apply(lambda v: deployment_manifest(n, args.spec, v[0], SchedulerWiring(*v[1:]), args.intake))  # fmt: skip
        deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=raw(manifest.apply(lambda m: m["metadata"])),
            spec=raw(manifest.apply(lambda m: m["spec"])),
            opts=child(self),
        )
        labels = n.common_labels("scheduler")
        service = k8s.core.v1.Service(
            f"{name}-metrics",
            metadata=raw(metadata(n.metrics_service, args.namespace, labels)),
            spec=raw(
                args.executor_config.apply(
                    lambda c: {
                        "type": "ClusterIP",
                        "selector": n.scheduler_selector(),
                        "ports": [
                            {
                                "name": METRICS_PORT_NAME,
                                "port": c.metrics_port,
                                "targetPort": METRICS_PORT_NAME,
                                "protocol": "TCP",
                            }
                        ],
                    }
                )
            ),
            opts=child(self),
        )
        k8s.policy.v1.PodDisruptionBudget(
            f"{name}-pdb",
            metadata=raw(metadata(n.scheduler_deployment, args.namespace, labels)),
            spec=raw(
                {
                    "maxUnavailable": 1,
                    "selector": {"matchLabels": n.scheduler_selector()},
                    "unhealthyPodEvictionPolicy": "AlwaysAllow",
                }
            ),
            opts=child(self),
        )
        self.deployment_name = name_of(deployment)
        self.service_name = name_of(service)
        self.intake_claim_name = intake_claim
        self.register_outputs(
            {
                "deploymentName": self.deployment_name,
                "serviceName": self.service_name,
                "intakeClaimName": self.intake_claim_name,
            }
        )
