"""The task pod policy: a task gets only what the operator allows, judged against the operator's pod.

Each case is one a careful attacker or a careless DAG author tried (issue "Task pods get only what
a task may have"); the shipped templates and the seed's config are the operator's settings.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest

from airflow_k8s.executor.contract.config import ExecutorConfig
from airflow_k8s.executor.contract.config_loader import parse_config
from airflow_k8s.executor.contract.config_render import render_config
from airflow_k8s.executor.contract.errors import ConfigError, PodPolicyError
from airflow_k8s.executor.pods import security
from airflow_k8s.executor.pods.podfactory import build_pod
from airflow_k8s.executor.tasks.task import Task
from tests.conftest import SEED_CFG

KEY = {"dag_id": "etl", "task_id": "load", "run_id": "manual__1", "command": ["python", "-c", "print(1)"]}
HARDENED = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
}
RESOURCES = {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "200m", "memory": "128Mi"}}


def sidecar(**fields: Any) -> dict[str, Any]:
    """A sidecar that passes PSS and the hardening; tests add the one thing under test."""
    return {"name": "side", "image": "busybox:1.36", "securityContext": HARDENED, "resources": RESOURCES, **fields}


@pytest.fixture
def build(seed_config, templates):
    """Build the pod of a task with ``kubernetes_config`` under ``config`` (default: the seed's)."""

    def _build(kubernetes_config: dict[str, Any], config: ExecutorConfig | None = None) -> dict[str, Any]:
        task = Task.from_dict({**KEY, "kubernetes_config": kubernetes_config})
        return build_pod(task, config or seed_config, templates, validate_schema=True)

    return _build


@pytest.fixture
def refused(build):
    """The policy error message for a ``pod_override`` (or a whole ``kubernetes_config``)."""

    def _refused(override: dict[str, Any], config: ExecutorConfig | None = None, *, typed: bool = False) -> str:
        with pytest.raises(PodPolicyError) as info:
            build(override if typed else {"pod_override": override}, config)
        return str(info.value)

    return _refused


def configured(seed_config: ExecutorConfig, **changes: Any) -> ExecutorConfig:
    return dataclasses.replace(seed_config, **changes)


def spec(**fields: Any) -> dict[str, Any]:
    return {"spec": fields}


# -- volumes --------------------------------------------------------------------------------------
def test_a_task_cannot_mount_the_schedulers_state_claim(refused):
    message = refused(
        spec(
            volumes=[{"name": "state", "persistentVolumeClaim": {"claimName": "airflow-executor-state"}}],
            containers=[{"name": "base", "volumeMounts": [{"name": "state", "mountPath": "/state"}]}],
        )
    )
    assert "pod_override violates the task pod policy" in message
    assert (
        "spec.volumes[4] (state): persistentVolumeClaim 'airflow-executor-state' is not allowed; a task may mount "
        "only the DAGs claim read-only (allowed: airflow-dags; task_allowed_claims)"
    ) in message
    assert "spec.containers[0] (base).volumeMounts[4] (/state): a task mounts claims read-only" in message


def test_a_task_may_mount_the_dags_claim_again_but_only_read_only(build, refused):
    volume = {"name": "dags2", "persistentVolumeClaim": {"claimName": "airflow-dags"}}
    mount = {"name": "dags2", "mountPath": "/dags2"}
    assert "must be read-only for a task" in refused(
        spec(volumes=[volume], containers=[{"name": "base", "volumeMounts": [mount]}])
    )
    volume["persistentVolumeClaim"]["readOnly"] = True
    pod = build(
        {
            "pod_override": spec(
                volumes=[volume], containers=[{"name": "base", "volumeMounts": [{**mount, "readOnly": True}]}]
            )
        }
    )
    assert volume in pod["spec"]["volumes"]


def test_a_projected_service_account_token_never_reaches_a_task_pod(refused):
    token = {"name": "token", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}
    assert "projected.sources[0]: serviceAccountToken: a task pod gets no service account token" in refused(
        spec(volumes=[token])
    )


@pytest.mark.parametrize(
    ("volume", "fragment"),
    [
        ({"name": "h", "hostPath": {"path": "/var/run"}}, "hostPath"),
        ({"name": "c", "csi": {"driver": "secrets-store.csi.k8s.io"}}, "csi volumes are not allowed"),
        (
            {"name": "e", "ephemeral": {"volumeClaimTemplate": {"spec": {"accessModes": ["ReadWriteOnce"]}}}},
            "ephemeral volumes are not allowed",
        ),
        ({"name": "s", "secret": {"secretName": "airflow-secrets"}}, "Secret 'airflow-secrets' is not one a task"),
        ({"name": "m", "configMap": {"name": "kube-root-ca.crt"}}, "ConfigMap 'kube-root-ca.crt' is not one a task"),
    ],
)
def test_volume_kinds_and_names_outside_the_allow_list_are_refused(refused, volume, fragment):
    assert fragment in refused(spec(volumes=[volume]))


def test_scratch_space_and_the_templates_config_map_are_allowed(build):
    volumes = [
        {"name": "scratch", "emptyDir": {"sizeLimit": "1Gi"}},
        {"name": "cfg2", "configMap": {"name": "airflow-config"}},
    ]
    assert build({"pod_override": spec(volumes=volumes)})["spec"]["volumes"][-2:] == volumes


def test_secrets_are_allowed_only_when_the_operator_lists_them(seed_config, build, refused):
    ref = {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "team-token", "key": "t"}}}
    override = spec(containers=[{"name": "base", "env": [ref]}])
    assert "valueFrom.secretKeyRef: Secret 'team-token' is not one a task may use" in refused(override)
    assert (
        ref
        in build({"pod_override": override}, configured(seed_config, task_allowed_secrets=("team-token",)))["spec"][
            "containers"
        ][0]["env"]
    )


@pytest.mark.parametrize(
    "override",
    [
        # the database URL the template hands its own pod is still not a task's to hand elsewhere
        spec(
            containers=[
                sidecar(
                    env=[
                        {
                            "name": "DB",
                            "valueFrom": {"secretKeyRef": {"name": "airflow-secrets", "key": "database-url"}},
                        }
                    ]
                )
            ]
        ),
        spec(containers=[{"name": "base", "envFrom": [{"secretRef": {"name": "airflow-secrets"}}]}]),
        spec(imagePullSecrets=[{"name": "airflow-secrets"}]),
    ],
)
def test_template_secrets_cannot_be_reused_by_a_task(refused, override):
    assert "Secret 'airflow-secrets' is not one a task may use" in refused(override)


# -- identity and scheduling ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        (spec(nodeName="node-1"), "spec.nodeName: a task may never set it: it skips the scheduler"),
        (spec(schedulerName="mine"), "spec.schedulerName: a task may never set it"),
        (spec(shareProcessNamespace=True), "spec.shareProcessNamespace: a task may never set it"),
        (spec(hostAliases=[{"ip": "10.0.0.1", "hostnames": ["api"]}]), "spec.hostAliases: not a field a task may set"),
        (spec(dnsPolicy="Default"), "spec.dnsPolicy: not a field a task may set"),
        (spec(runtimeClassName="runc"), "spec.runtimeClassName: not a field a task may set"),
        (
            spec(priorityClassName="system-node-critical"),
            "'system-node-critical' is not a PriorityClass a task may use",
        ),
        (spec(serviceAccountName="airflow-scheduler"), "'airflow-scheduler' is not a service account a task may use"),
        (spec(automountServiceAccountToken=True), "spec.automountServiceAccountToken: a task may only set it to false"),
        (spec(enableServiceLinks=True), "spec.enableServiceLinks: a task may only set it to false"),
        (spec(terminationGracePeriodSeconds=10**9), "spec.terminationGracePeriodSeconds: at most 300 s"),
    ],
)
def test_scheduling_and_identity_fields_outside_the_allow_list_are_refused(refused, override, fragment):
    assert fragment in refused(override)


def test_the_operator_can_allow_more_service_accounts_priority_classes_and_fields(seed_config, build):
    config = configured(
        seed_config,
        task_allowed_service_accounts=("etl-gcs-writer",),
        task_allowed_priority_classes=("batch-high",),
        task_allowed_pod_fields=(*seed_config.task_allowed_pod_fields, "dnsConfig"),
    )
    override = spec(
        serviceAccountName="etl-gcs-writer",
        priorityClassName="batch-high",
        dnsConfig={"options": [{"name": "ndots", "value": "2"}]},
    )
    pod_spec = build({"pod_override": override}, config)["spec"]
    assert (pod_spec["serviceAccountName"], pod_spec["priorityClassName"]) == ("etl-gcs-writer", "batch-high")


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("task_allowed_pod_fields = containers,nodeName", "'nodeName' can never be allowed for tasks"),
        ("task_allowed_pod_fields = containers,colour", "'colour' is not a pod spec field"),
        ("task_allowed_priority_classes = system-node-critical", "system-* PriorityClasses are reserved"),
        ("task_allowed_registries = apache", "give its host"),
        ("task_allowed_secrets = a,a", "'a' is listed twice"),
        ('task_allowed_node_selectors = {"zone": []}', "non-empty list"),
    ],
)
def test_the_policy_keys_refuse_what_can_never_be_allowed(line, fragment):
    with pytest.raises(ConfigError, match=re.escape(fragment)) as info:
        parse_config(SEED_CFG + line + "\n", source="a.cfg", environ={})
    assert "a.cfg [kubernetes]" in str(info.value)


# -- placement ---------------------------------------------------------------------------------------
def test_a_task_may_move_to_another_pool_of_the_platform(build):
    pod = build(
        {
            "node_selector": {"node-type": "compute-optimized"},
            "tolerations": [{"key": "workload", "operator": "Equal", "value": "heavy", "effect": "NoSchedule"}],
        }
    )
    assert pod["spec"]["nodeSelector"] == {"node-type": "compute-optimized"}


@pytest.mark.parametrize(
    ("kubernetes_config", "fragment"),
    [
        (
            {"node_selector": {"node-role.kubernetes.io/control-plane": ""}},
            "does not select one of the platform's pools",
        ),
        ({"tolerations": [{"operator": "Exists"}]}, "tolerates taints of nodes outside the platform's pools"),
        (
            {"tolerations": [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}]},
            "outside the platform's pools",
        ),
        ({"pod_override": spec(nodeSelector=None)}, "the template's node-type='worker' cannot be removed"),
    ],
)
def test_placement_outside_the_platforms_pools_is_refused(refused, kubernetes_config, fragment):
    assert fragment in refused(kubernetes_config, typed=True)


def test_a_narrower_toleration_of_a_pool_is_allowed(build):
    gpu = {"key": "nvidia.com/gpu", "operator": "Equal", "value": "present", "effect": "NoSchedule"}
    assert gpu in build({"tolerations": [gpu]})["spec"]["tolerations"]


# -- images ------------------------------------------------------------------------------------------
def test_images_come_from_the_registries_of_the_configured_images(seed_config, build, refused):
    assert build({"image": "apache/airflow:3.0.0"})["spec"]["containers"][0]["image"] == "apache/airflow:3.0.0"
    message = refused({"image": "evil.example.com/airflow:3"}, typed=True)
    assert "kubernetes_config violates the task pod policy" in message
    assert "(evil.example.com/airflow) is not from a registry tasks may use (allowed: docker.io (Docker Hub)" in message


def test_a_registry_prefix_allows_only_repositories_under_it(seed_config, build, refused):
    config = configured(seed_config, worker_container_image="ghcr.io/my-org/airflow:3", task_allowed_registries=())
    config = configured(config, task_allowed_registries=("ghcr.io/my-org",))
    assert build({"image": "ghcr.io/my-org/etl:1"}, config)
    assert "is not from a registry" in refused(
        {"pod_override": spec(containers=[sidecar(image="quay.io/x/y:1")])}, config, typed=True
    )


# -- containers ---------------------------------------------------------------------------------------
def test_a_hardened_sidecar_is_allowed(build):
    containers = build({"pod_override": spec(containers=[sidecar(args=["sleep", "1"])])})["spec"]["containers"]
    assert [c["name"] for c in containers] == ["base", "side"]


def test_task_pods_are_hardened_not_only_restricted(seed_config, templates):
    """A sidecar that passes PSS "restricted" but leaves its root filesystem writable and sets no limits."""
    restricted_only = {k: v for k, v in HARDENED.items() if k != "readOnlyRootFilesystem"}
    loose = {"name": "side", "image": "busybox:1.36", "securityContext": restricted_only}
    task = Task.from_dict({**KEY, "kubernetes_config": {"pod_override": spec(containers=[loose])}})
    with pytest.raises(PodPolicyError) as info:
        build_pod(task, seed_config, templates)
    assert "readOnlyRootFilesystem" in str(info.value) and "resources must set" in str(info.value)


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        (
            spec(containers=[{"name": "base", "command": ["sh", "-c", "id"]}]),
            "(base).command: the executor runs the task's command",
        ),
        (spec(containers=[{"name": "base", "args": ["sh"]}]), "(base).args: the executor runs the task's command"),
        (
            spec(containers=[sidecar(volumeDevices=[{"name": "d", "devicePath": "/dev/xvda"}])]),
            "volumeDevices: not a container field",
        ),
        (
            spec(containers=[{"name": "base", "securityContext": {"readOnlyRootFilesystem": False}}]),
            "may only make the security context stricter",
        ),
        (
            spec(securityContext={"fsGroup": 1000}),
            "spec.securityContext.fsGroup: a task may only make the security context stricter",
        ),
        (spec(securityContext={"supplementalGroups": [0, 4]}), "supplementalGroups"),
        (
            spec(initContainers=[sidecar(volumeMounts=[{"name": "ghost", "mountPath": "/g"}])]),
            "mounts volume 'ghost', which the pod does not have",
        ),
        (
            spec(
                containers=[
                    sidecar(volumeMounts=[{"name": "tmp", "mountPath": "/t", "mountPropagation": "HostToContainer"}])
                ]
            ),
            "mount propagation",
        ),
    ],
)
def test_container_changes_outside_the_rules_are_refused(refused, override, fragment):
    assert fragment in refused(override)


def test_a_stricter_security_context_and_another_user_are_allowed(build):
    # pod_override replaces security contexts (the provider's semantics): a complete one, with another user.
    pod_context = {
        "runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 0, "fsGroup": 0,
        "fsGroupChangePolicy": "OnRootMismatch", "seccompProfile": {"type": "RuntimeDefault"},
    }  # fmt: skip
    container_context = {
        "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL", "NET_RAW"]},
    }  # fmt: skip
    override = spec(securityContext=pod_context, containers=[{"name": "base", "securityContext": container_context}])
    assert build({"pod_override": override})["spec"]["securityContext"]["runAsUser"] == 1000


# -- metadata ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        (
            {"metadata": {"labels": {"app.kubernetes.io/component": "scheduler"}}},
            "reserved for Kubernetes and the platform",
        ),
        (
            {"metadata": {"labels": {"component": "scheduler"}}},
            "metadata.labels.component: the template's value 'worker' cannot be changed",
        ),
        (
            {"metadata": {"annotations": {"iam.amazonaws.com/role": "admin"}}},
            "metadata.annotations.iam.amazonaws.com/role",
        ),
        (
            {"metadata": {"finalizers": ["example.com/never"]}},
            "metadata.finalizers: a task may set only labels and annotations",
        ),
        ({"metadata": {"ownerReferences": []}}, "metadata.ownerReferences"),
        ({"metadata": {"namespace": "kube-system"}}, "namespace 'kube-system'"),
    ],
)
def test_metadata_beyond_own_labels_and_annotations_is_refused(refused, override, fragment):
    assert fragment in refused(override)


def test_annotations_larger_than_the_api_server_takes_are_refused(refused):
    assert "the API server takes at most 262144 in all" in refused(
        {"annotations": {"notes": "x" * 262_144}}, typed=True
    )


def test_own_labels_and_harmless_annotations_are_allowed(build):
    metadata = build(
        {"labels": {"team": "data"}, "annotations": {"cluster-autoscaler.kubernetes.io/safe-to-evict": "false"}}
    )["metadata"]
    assert metadata["labels"]["team"] == "data"


def test_a_namespace_of_multi_namespace_mode_is_not_refused(seed_config, build):
    config = configured(
        seed_config, multi_namespace_mode=True, multi_namespace_mode_namespace_list=("airflow", "team-a")
    )
    assert build({"pod_override": {"metadata": {"namespace": "team-a"}}}, config)


# -- the operator's pods -----------------------------------------------------------------------------
@pytest.mark.parametrize("template", ["default_template", "light_task", "heavy_computation", "gpu_task"])
def test_the_shipped_templates_give_hardened_task_pods(build, template):
    pod = build({"pod_template": template})
    assert security.hardening_violations(pod) == [] and security.restricted_violations(pod) == []


def test_the_policy_keys_render_and_parse_back(seed_config):
    config = configured(
        seed_config,
        task_allowed_registries=("ghcr.io/my-org", "registry.example.com:5000"),
        task_allowed_node_selectors=(("topology.kubernetes.io/zone", ("eu-west-1a", "eu-west-1b")),),
        task_allowed_pod_fields=("containers", "volumes"),
        task_allowed_secrets=(),
    )
    assert parse_config(render_config(config), environ={}) == config
