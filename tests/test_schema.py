"""executor.pods.schema: strict validation at the pinned Kubernetes version, short errors, real quantities."""

from __future__ import annotations

import copy
from typing import Any

import kubernetes_validate
import pytest

from airflow_k8s.executor.contract.errors import SchemaError
from airflow_k8s.executor.pods import schema


def make_pod(**container: Any) -> dict[str, Any]:
    base = {"name": "base", "image": "apache/airflow:2.8.0", **container}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "task-1"}, "spec": {"containers": [base]}}


def make_deployment(pod_spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "scheduler"},
        "spec": {
            "selector": {"matchLabels": {"app": "s"}},
            "template": {"metadata": {"labels": {"app": "s"}}, "spec": pod_spec},
        },
    }


def schema_error(obj: dict[str, Any], **kwargs: Any) -> SchemaError:
    with pytest.raises(SchemaError) as info:
        schema.validate_manifest(obj, where="unit test", **kwargs)
    return info.value


def test_the_project_pins_kubernetes_1_34():
    assert schema.KUBERNETES_VERSION == "1.34.0"
    assert schema.KUBERNETES_MINOR == "1.34"


def test_a_valid_pod_passes():
    schema.validate_manifest(make_pod(resources={"requests": {"cpu": "500m", "memory": "1Gi"}}), where="t")


def test_an_unknown_container_field_is_rejected_with_its_path():
    error = schema_error(make_pod(bogus=1))
    message = str(error)
    assert "spec.containers[0].bogus" in message
    assert "'bogus' was unexpected" in message
    assert message.startswith("unit test: Pod/task-1: ")


def test_schema_errors_are_short_and_chain_the_validator_error():
    error = schema_error(make_pod(resourcez={"requests": {"cpu": "1"}}))
    assert len(str(error)) < 300
    assert "\n" not in str(error)
    assert isinstance(error.__cause__, kubernetes_validate.ValidationError)
    assert len(str(error.__cause__)) > 1000  # what we spared the reader


def test_a_wrong_type_names_the_field_and_the_expected_type():
    message = str(schema_error(make_pod(ports=[{"containerPort": "http"}])))
    assert "spec.containers[0].ports[0].containerPort: 'http' is not of type integer" in message


def test_a_missing_required_field_points_at_that_field():
    env = [{"name": "DB", "valueFrom": {"secretKeyRef": {"name": "airflow-secrets"}}}]
    message = str(schema_error(make_pod(env=env)))
    assert "spec.containers[0].env[0].valueFrom.secretKeyRef.key" in message
    assert "'key' is a required property" in message


def test_a_quantity_of_the_wrong_type_says_string_or_number():
    message = str(schema_error(make_pod(resources={"requests": {"cpu": ["1"]}})))
    assert "spec.containers[0].resources.requests.cpu: ['1'] is not of type string or number" in message


def test_a_huge_offending_value_is_abbreviated():
    message = str(schema_error(make_pod(env=[{"name": "X", "value": {"k": "v" * 5000}}])))
    assert "spec.containers[0].env[0].value" in message
    assert len(message) < 300


def test_unknown_fields_in_a_deployment_pod_template_are_found():
    deployment = make_deployment({"containers": [{"name": "s", "image": "x", "imagePullPolicyy": "Always"}]})
    assert "spec.template.spec.containers[0].imagePullPolicyy" in str(schema_error(deployment))


@pytest.mark.parametrize("missing", ["apiVersion", "kind"])
def test_objects_without_api_version_or_kind_are_rejected(missing):
    pod = make_pod()
    del pod[missing]
    assert f"{missing} must be a non-empty string" in str(schema_error(pod))


def test_a_kind_that_does_not_exist_in_a_builtin_group_is_rejected():
    pod = make_pod()
    pod["kind"] = "Deployment"  # apiVersion v1 has no Deployment
    assert "no Kubernetes 1.34 schema for kind 'Deployment' in apiVersion 'v1'" in str(schema_error(pod))


NODEPOOL = {"apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": "gpu"}, "spec": {}}


def test_custom_resources_are_rejected_by_default():
    assert "custom resources are not allowed" in str(schema_error(copy.deepcopy(NODEPOOL)))


def test_custom_resources_are_accepted_when_allowed():
    schema.validate_manifest(copy.deepcopy(NODEPOOL), where="t", allow_custom=True)


def test_allowed_custom_resources_still_need_a_name():
    nodepool = copy.deepcopy(NODEPOOL)
    del nodepool["metadata"]["name"]
    assert "metadata.name" in str(schema_error(nodepool, allow_custom=True))


def test_allow_custom_does_not_excuse_a_typo_in_a_builtin_kind():
    typo = {"apiVersion": "apps/v1", "kind": "Deploymnt", "metadata": {"name": "x"}, "spec": {}}
    assert "no such kind" in str(schema_error(typo, allow_custom=True))


def test_a_malformed_quantity_the_schema_accepts_is_rejected_with_path_and_value():
    message = str(schema_error(make_pod(resources={"requests": {"cpu": "500x"}})))
    assert "spec.containers[0].resources.requests.cpu" in message
    assert "'500x'" in message


def test_a_request_above_its_limit_is_rejected():
    resources = {"requests": {"memory": "2Gi"}, "limits": {"memory": "1Gi"}}
    message = str(schema_error(make_pod(resources=resources)))
    assert "spec.containers[0].resources.requests.memory: request '2Gi' is greater than limit '1Gi'" in message


def test_requests_equal_to_limits_in_other_units_pass():
    resources = {"requests": {"cpu": "1000m", "memory": "1024Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}}
    schema.validate_manifest(make_pod(resources=resources), where="t")


def test_init_container_quantities_are_checked_too():
    pod = make_pod()
    pod["spec"]["initContainers"] = [{"name": "init", "image": "x", "resources": {"limits": {"memory": "1.5"}}}]
    message = str(schema_error(pod))
    assert "spec.initContainers[0].resources.limits.memory" in message
    assert "whole number of bytes" in message


def test_a_gpu_request_must_equal_its_limit():
    resources = {"requests": {"nvidia.com/gpu": "1"}, "limits": {"nvidia.com/gpu": "2"}}
    message = str(schema_error(make_pod(resources=resources)))
    assert 'requests["nvidia.com/gpu"]' in message
    assert "must equal limit" in message


def test_a_gpu_request_needs_a_limit():
    assert 'limits["nvidia.com/gpu"]: must be set' in str(
        schema_error(make_pod(resources={"requests": {"nvidia.com/gpu": 1}}))
    )


def test_quantities_in_a_workload_template_are_checked():
    deployment = make_deployment({"containers": [{"name": "s", "image": "x", "resources": {"limits": {"cpu": "0"}}}]})
    message = str(schema_error(deployment))
    assert "spec.template.spec.containers[0].resources.limits.cpu" in message
    assert "greater than zero" in message


def test_find_pod_template_locates_the_pod_of_each_workload_kind():
    cronjob = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": []}}}}},
    }
    ref = schema.find_pod_template(cronjob)
    assert ref is not None
    assert ref.spec_path == "spec.jobTemplate.spec.template.spec"
    pod_ref = schema.find_pod_template(make_pod())
    assert pod_ref is not None
    assert pod_ref.spec_path == "spec"
    assert schema.find_pod_template({"apiVersion": "v1", "kind": "ConfigMap"}) is None
    # A kind called Deployment in a custom group is not an apps/v1 Deployment.
    assert schema.find_pod_template({"apiVersion": "example.com/v1", "kind": "Deployment"}) is None
