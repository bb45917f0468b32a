"""The resource graph of the stack program: types, names, parents, outputs."""

from __future__ import annotations

import re
from collections import Counter

from airflow_k8s.infra.components.names import LABEL_INSTANCE
from airflow_k8s.infra.render.offline import Evaluation

from .conftest import objects

TOKEN = "airflow-k8s:index:"
COMPONENTS = {
    "PlatformNamespace": "namespace",
    "NetworkPolicies": "network",
    "ExecutorRbac": "rbac",
    "PriorityClasses": "priority",
    "DagsVolume": "dags",
    "AirflowSecret": "secrets",
    "ExecutorConfigMaps": "config",
    "NodePools": "nodepools",
    "ImageChecks": "image-checks",
    "DatabaseMigration": "db-migrate",
    "SchedulerDeployment": "scheduler",
    "ApiServerDeployment": "api-server",
    "DagProcessorDeployment": "dag-processor",
    "TriggererDeployment": "triggerer",
}
DEPLOYMENT = {"apps/v1:Deployment": 1, "policy/v1:PodDisruptionBudget": 1}
EXPECTED_CHILDREN = {
    "PlatformNamespace": Counter({"core/v1:Namespace": 1, "core/v1:ResourceQuota": 1, "core/v1:LimitRange": 1}),
    "NetworkPolicies": Counter({"networking.k8s.io/v1:NetworkPolicy": 9}),
    "ExecutorRbac": Counter(
        {
            "core/v1:ServiceAccount": 4,
            "rbac.authorization.k8s.io/v1:Role": 3,
            "rbac.authorization.k8s.io/v1:RoleBinding": 3,
            "rbac.authorization.k8s.io/v1:ClusterRole": 1,
            "rbac.authorization.k8s.io/v1:ClusterRoleBinding": 1,
        }
    ),
    "PriorityClasses": Counter({"scheduling.k8s.io/v1:PriorityClass": 3}),
    "DagsVolume": Counter({"core/v1:PersistentVolumeClaim": 1}),
    "AirflowSecret": Counter({"core/v1:Secret": 1}),  # + three random:RandomBytes (not Kubernetes objects)
    "ExecutorConfigMaps": Counter({"core/v1:ConfigMap": 2}),
    "NodePools": Counter({"karpenter.sh/v1:NodePool": 3}),
    "ImageChecks": Counter({"batch/v1:Job": 2}),  # one per image (imagePreflight)
    "DatabaseMigration": Counter({"batch/v1:Job": 1}),
    "SchedulerDeployment": Counter({**DEPLOYMENT, "core/v1:Service": 1}),  # the metrics Service
    "ApiServerDeployment": Counter({**DEPLOYMENT, "core/v1:Service": 1}),
    "DagProcessorDeployment": Counter(DEPLOYMENT),
    "TriggererDeployment": Counter(DEPLOYMENT),
}
KUBERNETES_OBJECTS = 47


def _children(evaluation: Evaluation, parent_urn: str) -> list:
    return [r for r in evaluation.resources if r.parent == parent_urn]


def test_platform_component_is_the_root_of_everything(karpenter_eval: Evaluation) -> None:
    (platform,) = karpenter_eval.of_type(f"{TOKEN}AirflowK8sPlatform")
    assert platform.name == "airflow"
    assert platform.custom is False
    components = _children(karpenter_eval, platform.urn)
    assert sorted(r.type for r in components) == sorted(f"{TOKEN}{t}" for t in COMPONENTS)
    assert all(not r.custom for r in components)
    for component in components:
        kind = component.type.removeprefix(TOKEN)
        assert component.name == f"airflow-{COMPONENTS[kind]}"


def test_each_component_owns_exactly_its_kubernetes_objects(karpenter_eval: Evaluation) -> None:
    (platform,) = karpenter_eval.of_type(f"{TOKEN}AirflowK8sPlatform")
    seen = 0
    for component in _children(karpenter_eval, platform.urn):
        kind = component.type.removeprefix(TOKEN)
        children = [r for r in _children(karpenter_eval, component.urn) if r.type.startswith("kubernetes:")]
        assert Counter(r.type.removeprefix("kubernetes:") for r in children) == EXPECTED_CHILDREN[kind], kind
        for resource in children:
            assert resource.custom
            assert resource.name.startswith(f"{component.name}-"), resource.name  # derived from the component
        seen += len(children)
    assert seen == len(karpenter_eval.kubernetes()) == KUBERNETES_OBJECTS


def test_kubernetes_objects_are_named_from_the_platform_and_labelled(etl_eval: Evaluation) -> None:
    for resource in etl_eval.kubernetes():
        meta = resource.inputs["metadata"]
        if resource.type.endswith("Namespace"):
            assert meta["name"] == "etl-jobs"
            continue
        assert meta["name"].startswith("etl-"), meta["name"]
        assert meta["labels"][LABEL_INSTANCE] == "etl"


def test_namespaced_objects_live_in_the_platform_namespace(etl_eval: Evaluation) -> None:
    cluster_scoped = {"Namespace", "PriorityClass", "ClusterRole", "ClusterRoleBinding", "NodePool", "NodePatch"}
    for resource in etl_eval.kubernetes():
        kind = resource.type.rsplit(":", 1)[-1]
        namespace = resource.inputs["metadata"].get("namespace")
        assert namespace == (None if kind in cluster_scoped else "etl-jobs"), resource.urn


def test_stack_outputs_are_the_created_names_and_all_plain(etl_eval: Evaluation) -> None:
    outputs = etl_eval.outputs
    assert all(not value.secret for value in outputs.values())
    plain = etl_eval.plain_outputs()
    assert plain == {
        "namespace": "etl-jobs",
        "schedulerServiceAccountName": "etl-scheduler",
        "workerServiceAccountName": "etl-worker",
        "airflowConfigMapName": "etl-config",
        "podTemplatesConfigMapName": "etl-pod-templates",
        "dagsPvcName": "etl-dags",
        "secretName": "etl-secrets",
        "nodePoolBackend": "karpenter",
        "nodePoolNames": ["etl-workers", "etl-compute", "etl-gpu"],
        "taskPriorityClassName": "etl-task",
        "placeholderPriorityClassName": "etl-placeholder",
        "schedulerDeploymentName": "etl-scheduler",
        "apiServerDeploymentName": "etl-api-server",
        "apiServerServiceName": "etl-api-server",
        "executionApiUrl": "http://etl-api-server.etl-jobs.svc.cluster.local:8080/execution/",
        "dagProcessorDeploymentName": "etl-dag-processor",
        "triggererDeploymentName": "etl-triggerer",
        "migrationJobName": "etl-db-migrate",
        "imageCheckJobNames": plain["imageCheckJobNames"],
        "metricsServiceName": "etl-scheduler-metrics",
        "podMonitorName": None,
        "configChecksum": plain["configChecksum"],
        "dbCleanCronJobName": None,
        "uiRouteName": None,
        "statsdServiceName": None,
    }
    assert len(plain["configChecksum"]) == 64
    worker_check, airflow_check = plain["imageCheckJobNames"]
    assert re.fullmatch(r"etl-check-worker-[0-9a-f]{8}", worker_check), worker_check
    assert re.fullmatch(r"etl-check-airflow-[0-9a-f]{8}", airflow_check), airflow_check
    # every name output is an object that exists
    names = {
        (o["kind"], o["metadata"]["name"])
        for kind in ("ServiceAccount", "ConfigMap", "Secret")
        for o in objects(etl_eval, kind)
    }
    assert ("ServiceAccount", plain["workerServiceAccountName"]) in names
    assert ("ConfigMap", plain["podTemplatesConfigMapName"]) in names
    assert ("Secret", plain["secretName"]) in names
    claims = {o["metadata"]["name"] for o in objects(etl_eval, "PersistentVolumeClaim")}
    assert claims == {plain["dagsPvcName"]}  # no task spool: Airflow's database is the queue
    services = {o["metadata"]["name"] for o in objects(etl_eval, "Service")}
    assert {plain["apiServerServiceName"], plain["metricsServiceName"]} == services


def test_resource_counts_follow_the_rbac_flags(stack) -> None:
    evaluation = stack(capacityAwareTiers=False, utilizationMetrics=False)
    kinds = Counter(r.type.rsplit(":", 1)[-1] for r in evaluation.kubernetes())
    assert kinds["ClusterRole"] == kinds["ClusterRoleBinding"] == 0
    assert kinds["Role"] == kinds["RoleBinding"] == 2  # the scheduler's and the api-server's
