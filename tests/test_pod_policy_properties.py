"""Property: whatever a task asks for, it gets a pod within the policy or a clear error - nothing in between.

Hypothesis generates ``pod_override`` dicts and whole ``kubernetes_config`` dicts from the fields
attackers and careless authors reach for (nodeName, host namespaces, other claims, secrets,
tokens, foreign images, weaker security contexts, reserved labels), mixed with arbitrary JSON.
Every example must either raise one of the project's errors with a message, or build a pod that
passes the pinned Kubernetes schema, PSS "restricted", the hardening policy and an independent
check of the policy's promises (:func:`assert_within_policy`) - never another exception.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from airflow_k8s.executor.contract.errors import PodPolicyError, SchemaError, TaskSpecError, TemplateError
from airflow_k8s.executor.contract.parsers import image_repository
from airflow_k8s.executor.contract.task_policy import NEVER_POD_FIELDS
from airflow_k8s.executor.pods import schema, security
from airflow_k8s.executor.pods.allowances import Allowances, store_templates
from airflow_k8s.executor.pods.podfactory import build_pod
from airflow_k8s.executor.pods.policy import violations
from airflow_k8s.executor.tasks.task import Task

KEY = {"dag_id": "etl", "task_id": "load", "run_id": "manual__1", "command": ["python", "-c", "print(1)"]}
PROJECT_ERRORS = (PodPolicyError, TaskSpecError, SchemaError, TemplateError)
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def some_of(fields: dict[str, st.SearchStrategy[Any]], base: dict[str, Any] | None = None, most: int = 3):
    """Dicts with ``base``'s keys and up to ``most`` of ``fields`` (few at a time, so some pods pass)."""
    names = st.lists(st.sampled_from(sorted(fields)), max_size=most, unique=True)
    return names.flatmap(lambda chosen: st.fixed_dictionaries({**(base or {}), **{n: fields[n] for n in chosen}}))


_scalar = st.none() | st.booleans() | st.integers(-(2**65), 2**65) | st.text(max_size=8)
_json = st.recursive(
    _scalar,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
_names = st.sampled_from(
    ["base", "side", "tmp", "dags", "airflow-dags", "airflow-config", "airflow-secrets", "airflow-executor-state"]
)
_images = st.sampled_from(
    ["busybox:1.36", "apache/airflow:3.0.0", "quay.io/x/y:1", "evil.example.com/a:1", "", "UP/x", "a b", "x\n"]
)
_quantities = st.sampled_from(["100m", "1", "64Mi", "2Gi", "500x", "-1", "0", "1e3", "64Mi\n"])
_resources = st.fixed_dictionaries(
    {},
    optional={
        part: st.dictionaries(st.sampled_from(["cpu", "memory", "nvidia.com/gpu"]), _quantities, max_size=2)
        for part in ("requests", "limits")
    },
)
_security_context = some_of(
    fields={
        "runAsUser": st.integers(-1, 70000),
        "runAsGroup": st.integers(-1, 5),
        "runAsNonRoot": st.booleans(),
        "privileged": st.booleans(),
        "allowPrivilegeEscalation": st.booleans(),
        "readOnlyRootFilesystem": st.booleans(),
        "capabilities": st.fixed_dictionaries(
            {},
            optional={
                "add": st.lists(st.sampled_from(["NET_BIND_SERVICE", "SYS_ADMIN"]), max_size=1),
                "drop": st.lists(st.sampled_from(["ALL", "NET_RAW"]), max_size=2),
            },
        ),
        "seccompProfile": st.sampled_from([{"type": "RuntimeDefault"}, {"type": "Unconfined"}]),
        "fsGroup": st.integers(0, 5),
        "supplementalGroups": st.lists(st.integers(0, 5), max_size=2),
        "seLinuxOptions": st.just({"type": "spc_t"}),
        "procMount": st.sampled_from(["Default", "Unmasked"]),
    },
)
_ref = st.fixed_dictionaries({"name": _names, "key": st.just("k")})
_env = st.fixed_dictionaries({"name": st.sampled_from(["A", "B", "AIRFLOW__CORE__EXECUTOR"])}) | st.one_of(
    st.fixed_dictionaries({"name": st.just("A"), "value": st.text(max_size=4)}),
    st.fixed_dictionaries({"name": st.just("S"), "valueFrom": st.fixed_dictionaries({"secretKeyRef": _ref})}),
    st.fixed_dictionaries({"name": st.just("C"), "valueFrom": st.fixed_dictionaries({"configMapKeyRef": _ref})}),
)
_mount = st.fixed_dictionaries(
    {"name": _names, "mountPath": st.sampled_from(["/a", "/b", "/tmp"])},
    optional={"readOnly": st.booleans(), "mountPropagation": st.sampled_from(["None", "HostToContainer"])},
)
_container = some_of(
    base={"name": st.sampled_from(["base", "side"])},
    fields={
        "image": _images,
        "command": st.lists(st.text(max_size=4), max_size=2),
        "args": st.lists(st.text(max_size=4), max_size=2),
        "env": st.lists(_env, max_size=2),
        "envFrom": st.lists(
            st.one_of(
                st.fixed_dictionaries({"secretRef": st.fixed_dictionaries({"name": _names})}),
                st.fixed_dictionaries({"configMapRef": st.fixed_dictionaries({"name": _names})}),
            ),
            max_size=1,
        ),
        "volumeMounts": st.lists(_mount, max_size=2),
        "securityContext": _security_context,
        "resources": _resources,
        "volumeDevices": st.just([{"name": "d", "devicePath": "/dev/x"}]),
        "ports": st.lists(
            st.fixed_dictionaries({"containerPort": st.integers(0, 70000)}, optional={"hostPort": st.integers(0, 9)}),
            max_size=1,
        ),
    },
)
_volume = st.one_of(
    st.fixed_dictionaries({"name": _names, "emptyDir": st.just({})}),
    st.fixed_dictionaries({"name": _names}),
    st.fixed_dictionaries({"name": _names, "configMap": st.fixed_dictionaries({"name": _names})}),
    st.fixed_dictionaries({"name": _names, "secret": st.fixed_dictionaries({"secretName": _names})}),
    st.fixed_dictionaries(
        {
            "name": _names,
            "persistentVolumeClaim": st.fixed_dictionaries({"claimName": _names}, optional={"readOnly": st.booleans()}),
        }
    ),
    st.fixed_dictionaries(
        {
            "name": _names,
            "projected": st.fixed_dictionaries(
                {
                    "sources": st.lists(
                        st.sampled_from(
                            [
                                {"serviceAccountToken": {"path": "token"}},
                                {"configMap": {"name": "airflow-config"}},
                                {"secret": {"name": "airflow-secrets"}},
                                {
                                    "downwardAPI": {
                                        "items": [{"path": "l", "fieldRef": {"fieldPath": "metadata.labels"}}]
                                    }
                                },
                            ]
                        ),
                        max_size=2,
                    )
                }
            ),
        }
    ),
    st.sampled_from(
        [
            {"name": "h", "hostPath": {"path": "/"}},
            {"name": "c", "csi": {"driver": "secrets-store.csi.k8s.io"}},
            {"name": "e", "ephemeral": {"volumeClaimTemplate": {"spec": {"accessModes": ["ReadWriteOnce"]}}}},
            {"name": "n", "nfs": {"server": "10.0.0.1", "path": "/"}},
        ]
    ),
    _json,
)
_toleration = st.fixed_dictionaries(
    {},
    optional={
        "key": st.sampled_from(["dedicated", "workload", "nvidia.com/gpu", "node-role.kubernetes.io/control-plane"]),
        "operator": st.sampled_from(["Equal", "Exists"]),
        "value": st.sampled_from(["worker", "heavy", ""]),
        "effect": st.sampled_from(["NoSchedule", "NoExecute"]),
    },
)
_SPEC_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "containers": st.lists(_container, max_size=2) | st.none(),
    "initContainers": st.lists(_container.map(lambda c: {**c, "name": "init"}), max_size=1),
    "volumes": st.lists(_volume, max_size=2) | st.none(),
    "nodeSelector": st.dictionaries(
        st.sampled_from(["node-type", "zone", "kubernetes.io/hostname"]),
        st.sampled_from(["worker", "gpu", "compute-optimized", "a"]) | st.none(),
        max_size=2,
    )
    | st.none(),
    "tolerations": st.lists(_toleration, max_size=2) | st.none(),
    "serviceAccountName": st.sampled_from(["airflow-worker", "airflow-scheduler", "default"]) | st.none(),
    "automountServiceAccountToken": st.booleans() | st.none(),
    "priorityClassName": st.sampled_from(["system-node-critical", "airflow-task"]),
    "securityContext": _security_context | st.none(),
    "nodeName": st.just("node-1"),
    "hostNetwork": st.booleans(),
    "shareProcessNamespace": st.booleans(),
    "dnsPolicy": st.sampled_from(["Default", "ClusterFirst"]),
    "terminationGracePeriodSeconds": st.integers(-5, 2**64),
    "activeDeadlineSeconds": st.integers(-5, 2**64),
    "enableServiceLinks": st.booleans(),
    "imagePullSecrets": st.lists(st.fixed_dictionaries({"name": _names}), max_size=1),
    "restartPolicy": st.sampled_from(["Always", "Never"]),
    "affinity": _json,
    "colour": _json,
}
# Fields that interact are generated together, a few at a time, so that each rule meets many cases.
GROUPS = {
    "volumes": ("volumes", "containers"),
    "containers": ("containers", "initContainers", "imagePullSecrets"),
    "security": ("securityContext", "containers", "automountServiceAccountToken", "serviceAccountName"),
    "placement": tuple(sorted(set(_SPEC_FIELDS) - {"volumes", "containers", "initContainers", "securityContext"})),
}
_spec = some_of(_SPEC_FIELDS)
_keys = st.sampled_from(
    ["team", "app", "component", "app.kubernetes.io/component", "dag_id", "iam.amazonaws.com/role", "x y"]
)
_values = st.sampled_from(["a", "scheduler", "worker", "", "bad value", "x\n"]) | st.none()
_metadata = some_of(
    fields={
        "labels": st.dictionaries(_keys, _values, max_size=2),
        "annotations": st.dictionaries(_keys, _values, max_size=2),
        "namespace": st.sampled_from(["airflow", "kube-system", "default"]),
        "finalizers": st.just(["example.com/x"]),
        "name": st.just("n"),
    },
)
_pod_override = some_of(
    {
        "metadata": st.one_of(_metadata, _metadata, _metadata, _json),
        "spec": st.one_of(_spec, _spec, _spec, _spec, _json),
        "apiVersion": st.just("v1"),
    },
    most=2,
)
_kubernetes_config = some_of(
    fields={
        "image": _images | _json,
        "resources": _resources | _json,
        "node_selector": st.dictionaries(st.sampled_from(["node-type", "zone"]), st.sampled_from(["gpu", "a", "x\n"]))
        | _json,
        "tolerations": st.lists(_toleration, max_size=2) | _json,
        "env": st.dictionaries(st.sampled_from(["A", "1B", "A\n"]), st.text(max_size=4), max_size=2) | _json,
        "labels": st.dictionaries(_keys, _values.filter(lambda v: v is not None), max_size=2) | _json,
        "annotations": st.dictionaries(_keys, st.text(max_size=4), max_size=2) | _json,
        "tier": st.sampled_from(["light", "gpu", "auto", "nope"]) | _json,
        "pod_template": st.sampled_from(["light_task", "gpu_task", "../x", "nope"]),
        "pod_override": _pod_override,
    },
)


def build_or_error(seed_config, templates, kubernetes_config: object) -> dict[str, Any] | None:
    """The pod, or None after checking that the refusal is one of the project's errors with a message."""
    try:
        task = Task.from_dict({**KEY, "kubernetes_config": kubernetes_config})
        return build_pod(task, seed_config, templates, validate_schema=True)
    except PROJECT_ERRORS as exc:
        assert str(exc).strip()
        event(f"refused: {type(exc).__name__}")
        return None


def walk(value: Any) -> Iterator[tuple[str, Any]]:
    """Every (key, value) pair anywhere in a JSON document."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield key, item
            yield from walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item)


def assert_within_policy(pod: dict[str, Any]) -> None:
    """The policy's promises, checked without the policy's code (the seed's config and templates)."""
    schema.validate_manifest(pod, where="property")
    assert security.restricted_violations(pod) == [] and security.hardening_violations(pod) == []
    spec = pod["spec"]
    assert not set(spec) & set(NEVER_POD_FIELDS) - {"restartPolicy"} and spec["restartPolicy"] == "Never"
    assert spec["serviceAccountName"] == "airflow-worker" and spec["automountServiceAccountToken"] is False
    assert spec.get("enableServiceLinks") is False and "priorityClassName" not in spec
    assert spec["nodeSelector"].get("node-type") in ("worker", "compute-optimized", "gpu")
    assert set(spec["nodeSelector"]) == {"node-type"}
    for volume in spec["volumes"]:
        kinds = set(volume) - {"name"}
        assert kinds <= {"emptyDir", "configMap", "persistentVolumeClaim", "projected", "downwardAPI"}, volume
        if "persistentVolumeClaim" in volume:
            assert volume["persistentVolumeClaim"] == {"claimName": "airflow-dags", "readOnly": True}
    secret_refs = [
        value for key, value in walk(pod) if key in ("secretKeyRef", "secretRef", "secret", "serviceAccountToken")
    ]
    assert secret_refs == []  # the templates hand task pods no secret, and tasks may add none
    for key, value in walk(spec):
        if key == "image":
            assert image_repository(value).startswith("docker.io/")
    for key in pod["metadata"]["labels"]:
        assert not key.startswith("app.kubernetes.io/")


@PROPERTY
@given(override=_pod_override)
def test_any_pod_override_gives_a_pod_within_the_policy_or_a_project_error(seed_config, templates, override):
    pod = build_or_error(seed_config, templates, {"pod_override": override})
    if pod is not None:
        event("built a pod")
        assert_within_policy(pod)


@pytest.mark.parametrize("group", sorted(GROUPS))
@PROPERTY
@given(data=st.data())
def test_any_spec_override_of_related_fields_gives_a_pod_within_the_policy_or_a_project_error(
    seed_config, templates, group, data
):
    spec = data.draw(some_of({name: _SPEC_FIELDS[name] for name in GROUPS[group]}, most=2), label="spec")
    pod = build_or_error(seed_config, templates, {"pod_override": {"spec": spec}})
    if pod is not None:
        event("built a pod")
        assert_within_policy(pod)


@PROPERTY
@given(kubernetes_config=_kubernetes_config | _json)
def test_any_kubernetes_config_gives_a_pod_within_the_policy_or_a_project_error(
    seed_config, templates, kubernetes_config
):
    pod = build_or_error(seed_config, templates, kubernetes_config)
    if pod is not None:
        event("built a pod")
        assert_within_policy(pod)


@PROPERTY
@given(spec=st.dictionaries(st.sampled_from(sorted(_SPEC_FIELDS)), _json, max_size=4), metadata=_json)
def test_the_policy_itself_never_fails_on_malformed_json(seed_config, templates, spec, metadata):
    """Pure functions over dicts: whatever shape arrives (before any schema check), a list of lines."""
    operator_pod = templates.load("default_template")
    allowed = Allowances(seed_config, store_templates(templates))
    found = violations(operator_pod, {**operator_pod, "metadata": metadata, "spec": spec}, allowed)
    assert isinstance(found, list) and all(isinstance(line, str) and line for line in found)
