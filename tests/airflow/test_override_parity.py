"""``pod_override`` as Airflow's provider merges it (``PodGenerator.reconcile_pods``, cncf-kubernetes 10.25.0): the
override's placement and security contexts replace the template's.  Checked against the installed provider's own
function, then with the provider's documented examples (``example_kubernetes_executor.py``) through this executor,
where the task pod policy - not the merge - decides what a task may have."""

from __future__ import annotations

import copy
import json
from types import SimpleNamespace

import pytest
import yaml
from airflow.providers.cncf.kubernetes.pod_generator import PodGenerator
from kubernetes.client import ApiClient
from kubernetes.client import models as k8s

from airflow_k8s.executor.airflow.workloads import overrides_from_executor_config
from airflow_k8s.executor.contract.config import ExecutorConfig
from airflow_k8s.executor.contract.errors import PodPolicyError
from airflow_k8s.executor.pods.podfactory import build_pod, merge_pod_override
from airflow_k8s.executor.pods.templates import TemplateStore
from airflow_k8s.executor.tasks.key import TaskKey
from airflow_k8s.executor.tasks.task import Task
from tests.conftest import ROOT

PLACEMENT = ("nodeSelector", "tolerations", "affinity", "securityContext")
TEMPLATE = yaml.safe_load((ROOT / "pod_templates" / "default_template.yaml").read_text())
API = ApiClient()


def as_model(manifest: dict) -> k8s.V1Pod:
    """A manifest as the provider's V1Pod (the client deserialises a response's ``data``)."""
    return API.deserialize(SimpleNamespace(data=json.dumps(manifest)), "V1Pod")


def as_dict(pod: k8s.V1Pod) -> dict:
    return API.sanitize_for_serialization(pod)


def pool(name: str) -> k8s.V1Affinity:
    term = k8s.V1NodeSelectorTerm(
        match_expressions=[k8s.V1NodeSelectorRequirement(key="node-type", operator="In", values=[name])]
    )
    return k8s.V1Affinity(
        node_affinity=k8s.V1NodeAffinity(
            required_during_scheduling_ignored_during_execution=k8s.V1NodeSelector(node_selector_terms=[term])
        )
    )


OVERRIDES = {
    "another pool": k8s.V1Pod(
        spec=k8s.V1PodSpec(
            containers=[],
            node_selector={"node-type": "compute-optimized"},
            tolerations=[k8s.V1Toleration(key="workload", operator="Equal", value="heavy", effect="NoSchedule")],
        )
    ),
    "affinity": k8s.V1Pod(spec=k8s.V1PodSpec(containers=[], affinity=pool("compute-optimized"))),
    "security context": k8s.V1Pod(
        spec=k8s.V1PodSpec(containers=[], security_context=k8s.V1PodSecurityContext(run_as_user=1000))
    ),
}


@pytest.mark.parametrize("name", sorted(OVERRIDES))
def test_placement_and_security_context_merge_as_the_providers_reconcile_pods(name):
    template = copy.deepcopy(TEMPLATE)
    template["spec"]["affinity"] = as_dict(pool("worker"))
    providers = as_dict(PodGenerator.reconcile_pods(as_model(template), OVERRIDES[name]))
    override = as_dict(OVERRIDES[name])
    override["spec"].pop("containers")
    ours = merge_pod_override(template, override)
    for field in PLACEMENT:
        assert ours["spec"].get(field) == providers["spec"].get(field), field


# The provider's documented pod_override examples (example_kubernetes_executor.py), and what this executor does.
EXAMPLES = {
    "annotations": (k8s.V1Pod(metadata=k8s.V1ObjectMeta(annotations={"test": "annotation"})), None),
    "labels": (k8s.V1Pod(metadata=k8s.V1ObjectMeta(labels={"release": "stable"})), None),
    "image": (
        k8s.V1Pod(spec=k8s.V1PodSpec(containers=[k8s.V1Container(name="base", image="apache/airflow:3.3.2")])),
        None,
    ),
    "host path volume": (
        k8s.V1Pod(
            spec=k8s.V1PodSpec(
                containers=[
                    k8s.V1Container(
                        name="base",
                        volume_mounts=[k8s.V1VolumeMount(mount_path="/foo/", name="example-kubernetes-test-volume")],
                    )
                ],
                volumes=[
                    k8s.V1Volume(
                        name="example-kubernetes-test-volume", host_path=k8s.V1HostPathVolumeSource(path="/tmp/")
                    )
                ],
            )
        ),
        "hostPath volumes are not allowed",
    ),
    "sidecar": (
        k8s.V1Pod(
            spec=k8s.V1PodSpec(
                containers=[
                    k8s.V1Container(
                        name="base", volume_mounts=[k8s.V1VolumeMount(mount_path="/shared/", name="shared-empty-dir")]
                    ),
                    k8s.V1Container(
                        name="sidecar",
                        image="ubuntu",
                        args=['echo "retrieved from mount" > /shared/test.txt'],
                        command=["bash", "-cx"],
                        volume_mounts=[k8s.V1VolumeMount(mount_path="/shared/", name="shared-empty-dir")],
                    ),
                ],
                volumes=[k8s.V1Volume(name="shared-empty-dir", empty_dir=k8s.V1EmptyDirVolumeSource())],
            )
        ),
        "sidecar",  # not hardened: no resources, no restricted security context
    ),
    "affinity, tolerations and resources": (
        k8s.V1Pod(
            spec=k8s.V1PodSpec(
                containers=[
                    k8s.V1Container(
                        name="base",
                        resources=k8s.V1ResourceRequirements(requests={"memory": "512Mi"}, limits={"memory": "512Mi"}),
                    )
                ],
                affinity=k8s.V1Affinity(
                    pod_anti_affinity=k8s.V1PodAntiAffinity(
                        required_during_scheduling_ignored_during_execution=[
                            k8s.V1PodAffinityTerm(
                                label_selector=k8s.V1LabelSelector(
                                    match_expressions=[
                                        k8s.V1LabelSelectorRequirement(key="app", operator="In", values=["airflow"])
                                    ]
                                ),
                                topology_key="kubernetes.io/hostname",
                            )
                        ]
                    )
                ),
                tolerations=[k8s.V1Toleration(key="dedicated", operator="Equal", value="airflow")],
            )
        ),
        "tolerates taints of nodes outside the platform's pools",
    ),
}


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_the_providers_documented_overrides_run_or_are_refused_by_the_policy_naming_the_rule(name):
    config = ExecutorConfig(namespace="airflow", worker_container_image="apache/airflow:3.3.2")
    templates = TemplateStore(ROOT / "pod_templates")
    override, refused = EXAMPLES[name]
    task = Task(
        key=TaskKey("example_kubernetes_executor", "t", "manual__1"),
        command=("true",),
        overrides=overrides_from_executor_config({"pod_override": override}),
    )
    if refused is None:
        build_pod(task, config, templates, validate_schema=True)
    else:
        with pytest.raises(PodPolicyError, match=refused):
            build_pod(task, config, templates)


def test_the_providers_tolerations_example_on_a_pool_of_the_platform_replaces_the_templates_toleration():
    config = ExecutorConfig(namespace="airflow", worker_container_image="apache/airflow:3.3.2")
    override = k8s.V1Pod(
        spec=k8s.V1PodSpec(
            containers=[],
            node_selector={"node-type": "compute-optimized"},
            tolerations=[k8s.V1Toleration(key="workload", operator="Equal", value="heavy", effect="NoSchedule")],
        )
    )
    task = Task(
        key=TaskKey("d", "t", "r"),
        command=("true",),
        overrides=overrides_from_executor_config({"pod_override": override}),
    )
    pod = build_pod(task, config, TemplateStore(ROOT / "pod_templates"))
    assert pod["spec"]["nodeSelector"] == {"node-type": "compute-optimized"}
    assert pod["spec"]["tolerations"] == [
        {"key": "workload", "operator": "Equal", "value": "heavy", "effect": "NoSchedule"}
    ]
