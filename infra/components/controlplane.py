"""One control-plane role as a component: Deployment, optional Service, PodDisruptionBudget.

:class:`SchedulerDeployment`, :class:`ApiServerDeployment`, :class:`DagProcessorDeployment` and
:class:`TriggererDeployment` differ only in their :class:`~airflow_k8s.infra.components.airflowpod.Role`
(:mod:`airflow_k8s.infra.components.roles`), replicas, rollout strategy and Service.

* ``metadata`` is built from known strings (name, labels) plus the namespace Input, never from an
  ``apply`` over other resources' outputs: ``pulumi preview`` shows the name even when every
  output is unknown (a new cluster, a provider built from another resource's output).
* Rollout strategy: the api-server rolls with ``maxSurge: 1, maxUnavailable: 0`` so the Execution
  API task pods call never goes away (the quota check counts the surge pod).  Single-replica roles
  (one scheduler, the dag-processor, the triggerer) use ``Recreate``: the old pod stops before the
  new one starts, and no surge pod needs quota.  Schedulers in HA (``schedulerReplicas`` 2+, Airflow
  3 runs them active-active, each executor owning its own task pods) roll **one at a time**
  (``maxSurge: 0, maxUnavailable: 1``): the others keep scheduling and adopt the pods of the one
  being replaced, and no extra scheduler - nor its quota - is ever needed.
* The pod-template annotations ``airflow-k8s/config-sha256`` (airflow.cfg, + templates for the
  scheduler) and ``airflow-k8s/secrets-hmac`` (the Secret keys the role reads, keyed HMAC) roll
  exactly the pods that read a changed input (:mod:`airflow_k8s.infra.components.rollout`).
* Every role runs at the control plane's PriorityClass (:mod:`airflow_k8s.infra.components.priority`):
  no task pod can preempt it.
* ``after`` (the migration Job) orders the rollout: Pulumi updates a Deployment only once the
  Job has completed, so a new release never runs against an old schema.
* PodDisruptionBudget ``maxUnavailable: 1`` + ``unhealthyPodEvictionPolicy: AlwaysAllow``: a
  drain evicts one pod of a role at a time and, with 2+ replicas, **blocks** the next eviction
  until the replacement is ready - so the api-server (UI and Execution API) and HA schedulers
  stay up through node drains and cluster upgrades.  With one replica it cannot block (there is
  nothing left to keep), which is why production stacks run 2+ api-servers (README); the
  single-replica roles are restart-safe (the executor relists and adopts its pods, Airflow's jobs
  recover from the database), and a crash-looping pod never blocks a drain.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from airflow_k8s.infra.components.airflowpod import PodWiring, Role, Runtime, check_pod, control_plane_pod
from airflow_k8s.infra.components.k8s import TOKEN_PREFIX, child, metadata, name_of, raw
from airflow_k8s.infra.components.names import API_SERVER, ROLE_LABEL, PlatformNames
from airflow_k8s.infra.components.podoptions import PodOptions
from airflow_k8s.infra.components.rollout import CONFIG_HASH_ANNOTATION, SECRETS_HMAC_ANNOTATION

RECREATE = {"type": "Recreate"}
ROLLING = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
ONE_AT_A_TIME = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}


def strategy(role: str, replicas: int) -> dict[str, Any]:
    """The rollout strategy of ``role`` with ``replicas`` pods (module docstring)."""
    if role == API_SERVER:
        return ROLLING
    return ONE_AT_A_TIME if replicas > 1 else RECREATE


@dataclass(frozen=True)
class ServicePort:
    name: str
    port: int


@dataclass(frozen=True)
class DeploymentArgs:
    names: PlatformNames
    role: Role
    runtime: Runtime
    namespace: pulumi.Input[str]
    service_account: pulumi.Input[str]
    airflow_config_map: pulumi.Input[str]
    templates_config_map: pulumi.Input[str]
    dags_claim: pulumi.Input[str]
    secret: pulumi.Input[str]
    template_dir: str
    checksum: pulumi.Input[str]  # the role's config digest (rollout.config_digest)
    secrets_hmac: pulumi.Input[str] | None = None  # the role's Secret fingerprint (AirflowSecret.fingerprint)
    priority_class: pulumi.Input[str] = ""  # the control plane's PriorityClass (priority.py); empty: none
    replicas: int = 1
    service: tuple[str, ServicePort] | None = None  # (Service name, port)
    after: Sequence[pulumi.Resource] = ()
    options: PodOptions | None = None  # the operator's additions (podoptions.py)


def pod_labels(names: PlatformNames, role: str) -> dict[str, str]:
    return {**names.common_labels(role), **names.selector(role), ROLE_LABEL: role}


def deployment_spec(
    args: DeploymentArgs, wiring: PodWiring, checksum: str, secrets_hmac: str | None = None
) -> dict[str, Any]:
    """The Deployment's ``spec`` (checked: PSS restricted + hardening)."""
    n, role = args.names, args.role
    annotations = {CONFIG_HASH_ANNOTATION: checksum}
    if secrets_hmac is not None:
        annotations[SECRETS_HMAC_ANNOTATION] = secrets_hmac
    spec = {
        "replicas": args.replicas,
        "revisionHistoryLimit": 3,
        "strategy": strategy(role.name, args.replicas),
        "selector": {"matchLabels": n.selector(role.name)},
        "template": {
            "metadata": {"labels": pod_labels(n, role.name), "annotations": annotations},
            "spec": control_plane_pod(role, args.runtime, wiring, args.options),
        },
    }
    obj = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": n.deployment(role.name)}, "spec": spec}
    check_pod("Deployment", n.deployment(role.name), obj, token=role.token)
    return spec


def resolve_wiring(args: DeploymentArgs) -> pulumi.Output[tuple[PodWiring, str, str | None]]:
    return pulumi.Output.all(
        args.service_account, args.airflow_config_map, args.templates_config_map, args.dags_claim, args.secret,
        args.checksum, args.secrets_hmac, args.priority_class,
    ).apply(lambda v: (PodWiring(v[0], v[1], v[2], v[3], v[4], args.template_dir, v[7]), v[5], v[6]))  # fmt: skip


class AirflowDeployment(pulumi.ComponentResource):
    """A control-plane role (module docstring); subclasses only name the type."""

    TYPE = "AirflowDeployment"
    deployment_name: pulumi.Output[str]
    service_name: pulumi.Output[str] | None

    def __init__(self, name: str, args: DeploymentArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TOKEN_PREFIX}{self.TYPE}", name, None, opts)
        n, role = args.names, args.role
        labels = n.common_labels(role.name)
        spec = resolve_wiring(args).apply(lambda v: deployment_spec(args, v[0], v[1], v[2]))
        deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=raw(metadata(n.deployment(role.name), args.namespace, labels)),
            spec=raw(spec),
            opts=child(self, depends_on=list(args.after)),
        )
        self.deployment_name = name_of(deployment)
        self.service_name = None
        if args.service is not None:
            service_name, port = args.service
            service = k8s.core.v1.Service(
                f"{name}-service",
                metadata=raw(metadata(service_name, args.namespace, labels)),
                spec=raw(
                    {
                        "type": "ClusterIP",
                        "selector": n.selector(role.name),
                        "ports": [{"name": port.name, "port": port.port, "targetPort": port.name, "protocol": "TCP"}],
                    }
                ),
                opts=child(self),
            )
            self.service_name = name_of(service)
        k8s.policy.v1.PodDisruptionBudget(
            f"{name}-pdb",
            metadata=raw(metadata(n.deployment(role.name), args.namespace, labels)),
            spec=raw(
                {
                    "maxUnavailable": 1,
                    "selector": {"matchLabels": n.selector(role.name)},
                    "unhealthyPodEvictionPolicy": "AlwaysAllow",
                }
            ),
            opts=child(self),
        )
        outputs: dict[str, Any] = {"deploymentName": self.deployment_name}
        if self.service_name is not None:
            outputs["serviceName"] = self.service_name
        self.register_outputs(outputs)


class SchedulerDeployment(AirflowDeployment):
    TYPE = "SchedulerDeployment"


class ApiServerDeployment(AirflowDeployment):
    TYPE = "ApiServerDeployment"


class DagProcessorDeployment(AirflowDeployment):
    TYPE = "DagProcessorDeployment"


class TriggererDeployment(AirflowDeployment):
    TYPE = "TriggererDeployment"
