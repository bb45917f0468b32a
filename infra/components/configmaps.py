"""The executor's two ConfigMaps: ``airflow.cfg`` and the pod templates.

airflow.cfg is the executor's part, rendered by its own renderer
(``contract.config_render.render_config``) from an ``ExecutorConfig`` whose names - namespace,
worker service account, priority classes - are the *outputs* of the created resources, merged
with the control-plane settings infra owns (:mod:`airflow_k8s.infra.components.airflowcfg`), and
parsed back with ``contract.config_loader.parse_config`` before it is published: the ConfigMap
holds exactly what the executor will load, or the deployment fails here.  The api-server
Service's name reaches ``execution_api_server_url`` as the known string the Service is created
with (its output would make a cycle: the Service's pods roll on this ConfigMap's checksum).

The templates ConfigMap has one key per template file, rewired to the created ConfigMap, PVC,
Secret and worker service account and re-validated (:mod:`airflow_k8s.infra.components.podtemplates`).

``checksum`` is a sha256 over airflow.cfg and every template (the ``configChecksum`` output);
:meth:`ExecutorConfigMaps.checksum_for` gives each role the digest of what it reads - airflow.cfg,
plus the templates for the roles that load them - which its Deployment carries as a pod-template annotation
(:mod:`airflow_k8s.infra.components.rollout`), so a config change rolls exactly the roles that
read it (a ``subPath`` mount never sees ConfigMap updates on its own).

Neither ConfigMap ever holds a secret: the control plane's credentials reach its containers as
env vars from the platform Secret, and task pods get none (:mod:`airflow_k8s.infra.components.secrets`).

Both ConfigMaps are updated in place, not replaced, only when the Kubernetes provider has
``enableConfigMapMutable`` (the stack program requires it; see
:mod:`airflow_k8s.infra.stack`): with pinned names a replacement deletes the ConfigMap before
creating it again, and a pod starting in between fails.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from airflow_k8s.executor.contract.config import ExecutorConfig
from airflow_k8s.infra.components.airflowcfg import ControlPlaneSettings, execution_api_url, publish
from airflow_k8s.infra.components.k8s import TOKEN_PREFIX, child, metadata, name_of, raw
from airflow_k8s.infra.components.names import TEMPLATES_LABEL, PlatformNames
from airflow_k8s.infra.components.podtemplates import TemplateWiring, render_template
from airflow_k8s.infra.components.rollout import config_digest
from airflow_k8s.infra.config.args import ExecutorSettings, PodIdentitySpec

AIRFLOW_CFG_KEY = "airflow.cfg"
DEFAULT_TEMPLATE = "default_template.yaml"


@dataclass(frozen=True)
class ExecutorWiring:
    """Names airflow.cfg refers to, as created."""

    namespace: str
    worker_service_account: str
    task_priority_class: str
    placeholder_priority_class: str
    instance_id: str
    api_server_service: str

    @property
    def execution_api_url(self) -> str:
        return execution_api_url(self.api_server_service, self.namespace)


def build_executor_config(settings: ExecutorSettings, wiring: ExecutorWiring, schedulers: int = 1) -> ExecutorConfig:
    """The executor's config; with ``schedulers`` > 1 each gets its share of N_max (per_scheduler).

    N_min is the namespace's: the executor keeps it once, on its keeper scheduler (docs/executor.md,
    *Several schedulers*), so it is never split.
    """
    return ExecutorConfig(
        execution_api_server_url=wiring.execution_api_url,
        namespace=wiring.namespace,
        worker_container_image=settings.worker_image,
        worker_service_account_name=wiring.worker_service_account,
        pod_template_dir=settings.pod_template_dir,
        pod_template_file=f"{settings.pod_template_dir.rstrip('/')}/{DEFAULT_TEMPLATE}",
        delete_worker_pods=settings.delete_worker_pods,
        delete_worker_pods_on_failure=settings.delete_worker_pods_on_failure,
        pod_creation_timeout=settings.pod_creation_timeout,
        max_pod_pending_timeout=settings.max_pod_pending_timeout,
        image_pull_policy=settings.image_pull_policy,
        worker_pods_min=settings.worker_pods_min,  # the namespace's, kept once by the keeper scheduler
        worker_pods_max=ExecutorSettings.per_scheduler(settings.worker_pods_max, schedulers),
        worker_priority_class=wiring.task_priority_class,
        placeholder_priority_class=wiring.placeholder_priority_class,
        placeholder_image=settings.placeholder_image,
        scheduler_instance_id=wiring.instance_id,
        in_cluster=True,
        metrics_port=settings.metrics_port,
        finished_pod_max_age_hours=settings.finished_pod_max_age_hours,
        default_tier=settings.default_tier,
    )


def render_airflow_cfg(config: ExecutorConfig, settings: ControlPlaneSettings) -> str:
    """airflow.cfg text for ``config`` and the platform's settings, proven to load back to ``config``."""
    return publish(config, settings)


def config_checksum(airflow_cfg: str, templates: Mapping[str, str]) -> str:
    """sha256 of airflow.cfg and every template (the ``configChecksum`` output, the scheduler's digest)."""
    return config_digest(airflow_cfg, templates)


@dataclass(frozen=True)
class ExecutorConfigMapsArgs:
    namespace: pulumi.Input[str]
    names: PlatformNames
    settings: ExecutorSettings
    worker_service_account: pulumi.Input[str]
    task_priority_class: pulumi.Input[str]
    placeholder_priority_class: pulumi.Input[str]
    dags_claim: pulumi.Input[str]
    templates: Mapping[str, Mapping[str, Any]]
    control_plane: ControlPlaneSettings
    api_server_service: str
    schedulers: int = 1
    identity: PodIdentitySpec = field(default_factory=PodIdentitySpec)  # runAsUser/runAsGroup of the templates


class ExecutorConfigMaps(pulumi.ComponentResource):
    """airflow.cfg and pod-template ConfigMaps; exposes the config, texts and their checksum."""

    executor_config: pulumi.Output[ExecutorConfig]
    airflow_cfg: pulumi.Output[str]
    templates: pulumi.Output[dict[str, str]]
    checksum: pulumi.Output[str]
    airflow_cfg_checksum: pulumi.Output[str]
    airflow_config_map: pulumi.Output[str]
    templates_config_map: pulumi.Output[str]

    def __init__(self, name: str, args: ExecutorConfigMapsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TOKEN_PREFIX}ExecutorConfigMaps", name, None, opts)
        n = args.names
        labels = n.common_labels("executor-config")
        self.executor_config = pulumi.Output.all(
            args.namespace, args.worker_service_account, args.task_priority_class, args.placeholder_priority_class
        ).apply(
            lambda v: build_executor_config(
                args.settings, ExecutorWiring(v[0], v[1], v[2], v[3], n.name, args.api_server_service), args.schedulers
            )
        )
        self.airflow_cfg = self.executor_config.apply(lambda c: render_airflow_cfg(c, args.control_plane))
        cfg_map = k8s.core.v1.ConfigMap(
            f"{name}-airflow-cfg",
            metadata=raw(metadata(n.airflow_config_map, args.namespace, labels)),
            data=raw(self.airflow_cfg.apply(lambda text: {AIRFLOW_CFG_KEY: text})),
            opts=child(self),
        )
        self.airflow_config_map = name_of(cfg_map)

        def publish_templates(values: list[Any]) -> dict[str, str]:
            wiring = TemplateWiring(
                config_map=values[0],
                pvc=values[1],
                service_account=values[2],
                run_as_user=args.identity.run_as_user,
                run_as_group=args.identity.run_as_group,
            )
            return {key: render_template(key, args.templates[key], wiring) for key in sorted(args.templates)}

        self.templates = pulumi.Output.all(self.airflow_config_map, args.dags_claim, args.worker_service_account).apply(
            publish_templates
        )
        templates_map = k8s.core.v1.ConfigMap(
            f"{name}-pod-templates",
            metadata=raw(metadata(n.templates_config_map, args.namespace, {**labels, TEMPLATES_LABEL: "true"})),
            data=raw(self.templates),
            opts=child(self),
        )
        self.templates_config_map = name_of(templates_map)
        self.checksum = pulumi.Output.all(self.airflow_cfg, self.templates).apply(lambda v: config_checksum(v[0], v[1]))
        self.airflow_cfg_checksum = self.airflow_cfg.apply(config_digest)
        self.register_outputs(
            {
                "airflowConfigMap": self.airflow_config_map,
                "templatesConfigMap": self.templates_config_map,
                "checksum": self.checksum,
            }
        )

    def checksum_for(self, reads_templates: bool) -> pulumi.Output[str]:
        """The digest a role's pods roll on: airflow.cfg, plus the templates when the role loads them."""
        return self.checksum if reads_templates else self.airflow_cfg_checksum
