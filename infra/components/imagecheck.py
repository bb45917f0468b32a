"""The image preflight: one short Job per image proves it can run the platform's pods.

Users build their own worker images (their DAGs need their libraries), and an image that differs
from the official one in the wrong way - no passwd entry for the pods' uid, another
``AIRFLOW_HOME``, no executor in the scheduler's image - used to break silently at task time.
On ``pulumi up`` (stack key ``imagePreflight``, on by default) this component runs the checker
:mod:`airflow_k8s.executor.imagecheck.incontainer` inside each image, *before* the control plane
rolls:

* ``<platform>-check-worker-<hash>``: ``workerImage`` in the very pod a task gets - built by the
  executor's own pod factory from the published default template and airflow.cfg's
  ``[kubernetes_executor]`` settings (same hardening, user, mounts, env, node pool, priority
  class and service account), only the command replaced;
* ``<platform>-check-airflow-<hash>``: ``airflowImage`` as the control plane runs it (the
  control-plane pod of :mod:`.airflowpod` with airflow.cfg, the DAGs and the pod templates
  mounted), without any secret or API token: the checks need neither.  It also checks that this
  package's executor imports, at the version deploying it.

In both, ``AIRFLOW_HOME`` and ``AIRFLOW_CONFIG`` are left to the image, so the checker sees what
the image declares; it sets the platform's values itself before importing Airflow, exactly as
the pods' env does.  The checker is this package's module, shipped as ``python -c <source>``:
worker images do not have this package.

How a failure surfaces: the check prints one line per check, then one line naming the image and
every problem, writes that line to the container's termination message and exits 1.  With
``backoffLimit: 0`` the Job fails at once; pulumi-kubernetes' Job await reports the pod's
container status (reason and termination message) and fails the ``up``; the Deployments, which
``depend_on`` the Jobs, are not touched.  The migration Job waits for the airflow image's check
(its own failure - ``getpwuid(): uid not found`` - would say much less).

Each Job is named after a hash of everything it checks (image, pull policy, user, expected
versions, the checker's source, the templates and settings that shape the pod), computed from
known strings so ``pulumi preview`` shows the name: a change creates a new Job (the old one is
deleted), which Pulumi waits for; an unchanged stack leaves the finished Job alone.  A pod-spec
change that keeps the name (a setting outside the hash) replaces the Job, old one first
(``delete_before_replace``): a Job's pod template is immutable.  No
``ttlSecondsAfterFinished``: a garbage-collected Job would be missing on the next refresh.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.metadata
import inspect
import json
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from airflow_k8s.executor.contract.config import ExecutorConfig
from airflow_k8s.executor.imagecheck import incontainer
from airflow_k8s.executor.pods.podfactory import BASE_CONTAINER, build_pod
from airflow_k8s.executor.pods.templates import TemplateStore
from airflow_k8s.executor.tasks.key import TaskKey
from airflow_k8s.executor.tasks.task import Task
from airflow_k8s.infra.components.airflowcfg import AIRFLOW_HOME, DAGS_FOLDER, LOGS_FOLDER
from airflow_k8s.infra.components.airflowpod import (
    AIRFLOW_CFG_PATH,
    PodWiring,
    Role,
    Runtime,
    check_pod,
    control_plane_pod,
)
from airflow_k8s.infra.components.k8s import TOKEN_PREFIX, child, metadata, name_of, raw
from airflow_k8s.infra.components.names import ROLE_LABEL, PlatformNames
from airflow_k8s.infra.config.args import ImagePreflightSpec

IMAGE_CHECK = "image-check"
DEADLINE_SECONDS = 600  # an image pull on a cold node, plus waiting for the Service's DNS name
PULUMI_TIMEOUT = "15m"  # above the deadline: the Job fails first, with its own reason
LAYOUT_ENV = ("AIRFLOW_HOME", "AIRFLOW_CONFIG")  # left to the image in the Job (module docstring)
CHECK_TASK = TaskKey(dag_id="airflow-k8s-image-check", task_id="worker", run_id="preflight", map_index=-1, try_number=1)
SOURCE = inspect.getsource(incontainer)


def package_version() -> str:
    """The version of this package deploying the stack (what the airflow image must carry)."""
    try:
        return importlib.metadata.version(incontainer.EXECUTOR_DIST)
    except importlib.metadata.PackageNotFoundError:
        return ""


@dataclass(frozen=True)
class ImageCheckArgs:
    names: PlatformNames
    namespace: pulumi.Input[str]
    airflow_version: str
    worker_image: str
    airflow_runtime: Runtime  # airflowImage, its pull policy, resources (the scheduler's) and user
    execution_api_url: str
    executor_config: pulumi.Input[ExecutorConfig]  # what the scheduler loads: builds the worker's pod
    templates: pulumi.Input[Mapping[str, str]]  # the published templates (ConfigMap values)
    template_fingerprint: str  # a digest of the template sources and settings (known at preview)
    control_plane_service_account: pulumi.Input[str]
    airflow_config_map: pulumi.Input[str]
    templates_config_map: pulumi.Input[str]
    dags_claim: pulumi.Input[str]
    template_dir: str
    after: Sequence[pulumi.Resource] = ()  # the NetworkPolicies (DNS egress)
    # What each check pod asks (imagePreflight's own, counted by the quota check), not the imitated pod's.
    resources: Mapping[str, Mapping[str, str]] = field(default_factory=ImagePreflightSpec().resources.to_k8s)


def check_spec(args: ImageCheckArgs, role: str) -> incontainer.Spec:
    image = args.worker_image if role == "worker" else args.airflow_runtime.image
    return incontainer.Spec(
        image=image,
        role=role,
        uid=args.airflow_runtime.run_as_user,
        gid=args.airflow_runtime.run_as_group,
        airflow_home=AIRFLOW_HOME,
        airflow_config=AIRFLOW_CFG_PATH,
        dags_folder=DAGS_FOLDER,
        logs_folder=LOGS_FOLDER,
        airflow_version=args.airflow_version,
        executor_version=package_version() if role == "scheduler" else "",
        execution_api_url=args.execution_api_url,
    )


def command(spec: incontainer.Spec) -> list[str]:
    return ["python", "-c", SOURCE, "--spec", json.dumps(asdict(spec), sort_keys=True)]


def job_name(names: PlatformNames, role: str, spec: incontainer.Spec, *inputs: str) -> str:
    """``<platform>-check-worker|airflow-<8 hex>``: a hash of what the Job checks (module docstring)."""
    digest = hashlib.sha256()
    for part in (json.dumps(asdict(spec), sort_keys=True), SOURCE, *inputs):
        digest.update(part.encode() + b"\0")
    label = "worker" if role == "worker" else "airflow"
    return f"{names.name}-check-{label}-{digest.hexdigest()[:8]}"


def _finish_container(container: dict[str, Any], resources: Mapping[str, Mapping[str, str]]) -> None:
    """Leave the layout env to the image; fall back to the log tail if no message was written; the
    check's own resources."""
    container["resources"] = {kind: dict(amounts) for kind, amounts in resources.items()}
    container["env"] = [e for e in container.get("env") or [] if e.get("name") not in LAYOUT_ENV]
    container["terminationMessagePolicy"] = "FallbackToLogsOnError"


def worker_pod_spec(
    config: ExecutorConfig,
    templates: Mapping[str, str],
    spec: incontainer.Spec,
    resources: Mapping[str, Mapping[str, str]],
) -> dict[str, Any]:
    """The task pod the executor would build, running the check instead of a workload."""
    with tempfile.TemporaryDirectory(prefix="airflow-k8s-templates-") as directory:
        for name, text in templates.items():
            (Path(directory) / name).write_text(text)
        store = TemplateStore(directory, logical_dir=config.pod_template_dir)
        pod = build_pod(Task(key=CHECK_TASK, command=tuple(command(spec))), config, store)
    pod_spec: dict[str, Any] = copy.deepcopy(pod["spec"])
    for container in pod_spec["containers"]:
        if container.get("name") == BASE_CONTAINER:
            _finish_container(container, resources)
    return pod_spec


def airflow_pod_spec(
    runtime: Runtime, wiring: PodWiring, spec: incontainer.Spec, resources: Mapping[str, Mapping[str, str]]
) -> dict[str, Any]:
    """The control plane's pod (scheduler's resources, DAGs and templates mounted), no secret, no token."""
    role = Role(IMAGE_CHECK, tuple(command(spec)), (), dags=True, templates=True, wait_for_migrations=False)
    pod_spec = control_plane_pod(role, runtime, wiring)
    _finish_container(pod_spec["containers"][0], resources)
    return pod_spec


def job_spec(names: PlatformNames, role: str, pod_spec: dict[str, Any], name: str) -> dict[str, Any]:
    pod_spec["restartPolicy"] = "Never"
    spec = {
        "backoffLimit": 0,  # deterministic: one pod, one message
        "activeDeadlineSeconds": DEADLINE_SECONDS,
        "template": {"metadata": {"labels": check_labels(names, role)}, "spec": pod_spec},
    }
    check_pod("Job", name, {"apiVersion": "batch/v1", "kind": "Job", "spec": spec}, token=False)
    return spec


def check_labels(names: PlatformNames, role: str) -> dict[str, str]:
    return {**names.common_labels(IMAGE_CHECK), ROLE_LABEL: IMAGE_CHECK, "airflow-k8s/checked-role": role}


class ImageChecks(pulumi.ComponentResource):
    """The two preflight Jobs (module docstring); ``jobs`` are what the control plane waits for."""

    jobs: list[k8s.batch.v1.Job]  # [worker, airflow]
    airflow_job: k8s.batch.v1.Job  # what the migration Job waits for
    job_names: list[pulumi.Output[str]]

    def __init__(self, name: str, args: ImageCheckArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TOKEN_PREFIX}ImageChecks", name, None, opts)
        n = args.names
        worker = check_spec(args, "worker")
        airflow = check_spec(args, "scheduler")
        runtime = args.airflow_runtime
        worker_name = job_name(n, "worker", worker, args.template_fingerprint)
        airflow_name = job_name(n, "scheduler", airflow, runtime.image_pull_policy, json.dumps(asdict(runtime)))
        worker_spec = pulumi.Output.all(args.executor_config, args.templates).apply(
            lambda v: job_spec(n, "worker", worker_pod_spec(v[0], v[1], worker, args.resources), worker_name)
        )
        airflow_spec = pulumi.Output.all(
            args.control_plane_service_account, args.airflow_config_map, args.templates_config_map, args.dags_claim
        ).apply(
            lambda v: job_spec(
                n,
                "scheduler",
                airflow_pod_spec(
                    runtime, PodWiring(v[0], v[1], v[2], v[3], "", args.template_dir), airflow, args.resources
                ),
                airflow_name,
            )
        )
        self.jobs = []
        for suffix, job, spec in (("worker", worker_name, worker_spec), ("airflow", airflow_name, airflow_spec)):
            self.jobs.append(
                k8s.batch.v1.Job(
                    f"{name}-{suffix}",
                    metadata=raw(metadata(job, args.namespace, n.common_labels(IMAGE_CHECK))),
                    spec=raw(spec),
                    opts=child(
                        self,
                        depends_on=list(args.after),
                        delete_before_replace=True,  # a spec change under the same name: the old Job goes first
                        custom_timeouts=pulumi.CustomTimeouts(create=PULUMI_TIMEOUT, update=PULUMI_TIMEOUT),
                    ),
                )
            )
        self.airflow_job = self.jobs[1]
        self.job_names = [name_of(job) for job in self.jobs]
        self.register_outputs({"jobNames": self.job_names})
