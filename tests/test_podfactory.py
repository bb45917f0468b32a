"""The pod factory: merge order, merge semantics, identity and policy, on the shipped templates."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_k8s.executor.contract import k8snames
from airflow_k8s.executor.contract.config import ExecutorConfig, Toleration
from airflow_k8s.executor.contract.errors import PodPolicyError, SchemaError, TaskSpecError, TemplateError
from airflow_k8s.executor.pods import schema, security
from airflow_k8s.executor.pods.podfactory import build_pod, merge_pod_override
from airflow_k8s.executor.pods.templates import TemplateStore
from airflow_k8s.executor.tasks import identity
from airflow_k8s.executor.tasks.task import Task

KEY = {"dag_id": "custom_pod_dag", "run_id": "scheduled__2024-01-01T00:00:00+00:00", "command": ["true"]}

# The seed's custom_pod_dag tasks, verbatim kubernetes_config.
HEAVY = {
    **KEY,
    "task_id": "heavy_computation",
    "kubernetes_config": {
        "pod_template_file": "/opt/airflow/pod_templates/heavy_computation.yaml",
        "resources": {"requests": {"cpu": "2", "memory": "4Gi"}, "limits": {"cpu": "4", "memory": "8Gi"}},
    },
}
LIGHT = {
    **KEY,
    "task_id": "light_task",
    "kubernetes_config": {
        "pod_template_file": "/opt/airflow/pod_templates/light_task.yaml",
        "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"cpu": "500m", "memory": "1Gi"}},
    },
}


def task(kubernetes_config: dict | None = None, **fields) -> Task:
    data = {**KEY, "task_id": "t", **fields}
    if kubernetes_config is not None:
        data["kubernetes_config"] = kubernetes_config
    return Task.from_dict(data)


def base(pod: dict) -> dict:
    return next(c for c in pod["spec"]["containers"] if c["name"] == "base")


def assert_valid(pod: dict) -> None:
    """Every pod a test produces must pass the strict schema and the restricted profile."""
    schema.validate_manifest(pod, where="test pod")
    assert security.restricted_violations(pod) == []
    metadata = pod["metadata"]
    assert k8snames.is_dns1123_label(metadata["name"])
    assert all(k8snames.is_label_key(k) and k8snames.is_label_value(v) for k, v in metadata["labels"].items())


@pytest.fixture
def build(seed_config, templates):
    def _build(t: Task, config: ExecutorConfig | None = None, **kwargs) -> dict:
        pod = build_pod(t, config or seed_config, templates, **kwargs)
        assert_valid(pod)
        return pod

    return _build


# -- the seed's example DAG ------------------------------------------------------------------------
def test_the_seeds_heavy_computation_task_gets_the_seeds_pod_hardened(build):
    pod = build(Task.from_dict(HEAVY))
    container = base(pod)
    assert container["image"] == "apache/airflow:2.8.0"
    assert container["resources"] == {
        "requests": {"cpu": "2", "memory": "4Gi"},
        "limits": {"cpu": "4", "memory": "8Gi"},
    }
    assert pod["spec"]["nodeSelector"] == {"node-type": "compute-optimized"}
    assert {"key": "workload", "operator": "Equal", "value": "heavy", "effect": "NoSchedule"} in pod["spec"][
        "tolerations"
    ]
    assert pod["metadata"]["namespace"] == "airflow" and pod["spec"]["serviceAccountName"] == "airflow-worker"
    assert container["args"] == ["true"] and "command" not in container
    # hardened: what the seed's template lacked
    assert security.hardening_violations(pod) == []
    assert pod["spec"]["automountServiceAccountToken"] is False
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    env = {e["name"]: e for e in container["env"]}
    assert env["AIRFLOW_IS_K8S_EXECUTOR_POD"]["value"] == "True"
    assert not any("SQL_ALCHEMY_CONN" in name for name in env)  # Airflow 3 workers get no database


def test_the_seeds_light_task_gets_the_light_pod(build):
    pod = build(Task.from_dict(LIGHT))
    assert base(pod)["resources"]["requests"] == {"cpu": "250m", "memory": "512Mi"}
    assert pod["spec"]["nodeSelector"] == {"node-type": "worker"}
    assert pod["metadata"]["labels"][identity.LABEL_TIER] == "light"


def test_a_task_without_overrides_gets_the_default_template(build):
    pod = build(task())
    assert pod["metadata"]["labels"]["workload"] == "default"
    # Template resources survive the config defaults (defaults only fill gaps).
    assert base(pod)["resources"] == {
        "requests": {"cpu": "500m", "memory": "1Gi"},
        "limits": {"cpu": "1000m", "memory": "2Gi"},
    }


# -- config defaults --------------------------------------------------------------------------------
@pytest.fixture
def bare_templates(tmp_path: Path) -> TemplateStore:
    """A template that leaves resources, pull policy, node selector and SA to the config."""
    pod = TemplateStore(Path(__file__).resolve().parent.parent / "pod_templates").load("default_template")
    spec = pod["spec"]
    for key in ("nodeSelector", "tolerations", "serviceAccountName"):
        spec.pop(key)
    base(pod).pop("resources")
    import yaml

    (tmp_path / "default_template.yaml").write_text(yaml.safe_dump(pod))
    return TemplateStore(tmp_path)


def test_config_defaults_fill_what_the_template_leaves_open(seed_config, bare_templates):
    config = ExecutorConfig(
        **{
            **seed_config.__dict__,
            "worker_node_selector": (("node-type", "worker"),),
            "worker_tolerations": (Toleration("dedicated", "Equal", "worker", "NoSchedule"),),
            "worker_priority_class": "airflow-task",
        }
    )
    pod = build_pod(task(), config, bare_templates)
    assert_valid(pod)
    container = base(pod)
    assert container["resources"] == {
        "requests": {"cpu": "500m", "memory": "1Gi"},
        "limits": {"cpu": "1000m", "memory": "2Gi"},
    }
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert pod["spec"]["serviceAccountName"] == "airflow-worker"
    assert pod["spec"]["nodeSelector"] == {"node-type": "worker"}
    assert pod["spec"]["tolerations"] == [
        {"key": "dedicated", "operator": "Equal", "value": "worker", "effect": "NoSchedule"}
    ]
    assert pod["spec"]["priorityClassName"] == "airflow-task"


def test_config_node_selector_does_not_override_a_templates_pool(seed_config, build):
    config = ExecutorConfig(
        **{**seed_config.__dict__, "worker_node_selector": (("node-type", "worker"), ("arch", "amd64"))}
    )
    pod = build(Task.from_dict(HEAVY), config)
    assert pod["spec"]["nodeSelector"] == {"node-type": "compute-optimized", "arch": "amd64"}


def test_the_config_image_replaces_the_template_image_and_the_task_image_replaces_both(seed_config, build):
    assert base(build(task()))["image"] == "apache/airflow:2.8.0"
    assert base(build(task({"image": "apache/airflow:2.9.0"})))["image"] == "apache/airflow:2.9.0"


def test_a_pod_without_any_image_is_rejected_before_the_api(seed_config, templates):
    config = ExecutorConfig(**{**seed_config.__dict__, "worker_container_image": None})
    with pytest.raises(TaskSpecError, match="no image"):
        build_pod(task(), config, templates)


def test_the_namespace_is_always_the_executors(seed_config, build):
    config = ExecutorConfig(**{**seed_config.__dict__, "namespace": "data-jobs"})
    assert build(task(), config)["metadata"]["namespace"] == "data-jobs"


# -- task overrides -------------------------------------------------------------------------------
def test_resource_overrides_replace_per_key(build):
    pod = build(task({"resources": {"requests": {"cpu": "750m"}}}))
    assert base(pod)["resources"]["requests"] == {"cpu": "750m", "memory": "1Gi"}


def test_a_request_above_the_merged_limit_is_rejected(seed_config, templates):
    with pytest.raises(
        TaskSpecError, match=r"containers\[0\]\.resources\.requests\.cpu: request '3' is greater than limit '1000m'"
    ):
        build_pod(task({"resources": {"requests": {"cpu": "3"}}}), seed_config, templates)


def test_node_selector_overrides_replace_per_key_and_tolerations_append_once(seed_config, build):
    config = dataclasses.replace(seed_config, task_allowed_node_selectors=(("zone", ("a",)),))
    heavy_pool = {"key": "workload", "operator": "Equal", "value": "heavy", "effect": "NoSchedule"}
    pod = build(
        task(
            {
                "node_selector": {"node-type": "compute-optimized", "zone": "a"},
                "tolerations": [
                    {"key": "dedicated", "operator": "Equal", "value": "worker", "effect": "NoSchedule"},
                    heavy_pool,
                ],
            }
        ),
        config,
    )
    assert pod["spec"]["nodeSelector"] == {"node-type": "compute-optimized", "zone": "a"}
    assert pod["spec"]["tolerations"] == [
        {"key": "dedicated", "operator": "Equal", "value": "worker", "effect": "NoSchedule"},
        heavy_pool,
    ]


def test_env_overrides_replace_by_name_and_append_new_names(build):
    pod = build(task({"env": {"AIRFLOW__CORE__EXECUTOR": "LocalExecutor", "EXTRA": "1"}}))
    env = base(pod)["env"]
    names = [e["name"] for e in env]
    assert names.count("AIRFLOW__CORE__EXECUTOR") == 1 and names[-1] == "EXTRA"
    assert {"name": "AIRFLOW__CORE__EXECUTOR", "value": "LocalExecutor"} in env


def test_labels_and_annotations_merge_and_identity_cannot_be_forged(build):
    pod = build(task({"labels": {"team": "data"}, "annotations": {"owner": "me"}}, try_number=3))
    assert pod["metadata"]["labels"]["team"] == "data" and pod["metadata"]["labels"]["component"] == "worker"
    assert pod["metadata"]["annotations"]["owner"] == "me"
    assert pod["metadata"]["annotations"]["try_number"] == "3"


def test_identity_makes_the_same_task_try_the_same_pod(build):
    first, second = build(Task.from_dict(HEAVY)), build(Task.from_dict(HEAVY))
    assert first == second
    retry = build(Task.from_dict({**HEAVY, "try_number": 2}))
    assert retry["metadata"]["name"] != first["metadata"]["name"]
    assert identity.key_from_annotations(retry["metadata"]["annotations"]).try_number == 2


def test_hostile_ids_cannot_inject_label_selectors(build):
    pod = build(task(task_id="x,airflow-worker!=1"))
    labels = pod["metadata"]["labels"]
    assert all(k8snames.is_label_value(v) for v in labels.values())
    assert labels["airflow-worker"] == "default" and "," not in labels["task_id"]
    assert pod["metadata"]["annotations"]["task_id"] == "x,airflow-worker!=1"


def test_building_never_changes_the_cached_template(seed_config, templates):
    before = templates.load("default_template")
    build_pod(task({"labels": {"a": "b"}, "env": {"X": "1"}}), seed_config, templates)
    assert templates.load("default_template") == before


# -- tiers ---------------------------------------------------------------------------------------
def test_a_named_tier_brings_its_template_and_resources(build):
    pod = build(task({"tier": "gpu"}))
    assert pod["spec"]["nodeSelector"] == {"node-type": "gpu"}
    assert base(pod)["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert pod["metadata"]["labels"][identity.LABEL_TIER] == "gpu"


def test_the_medium_tier_overrides_the_default_templates_resources(build):
    assert base(build(task({"tier": "medium"})))["resources"]["requests"] == {"cpu": "1", "memory": "2Gi"}


def test_task_resources_beat_the_tier(build):
    pod = build(task({"tier": "heavy", "resources": {"requests": {"cpu": "3"}}}))
    assert base(pod)["resources"]["requests"]["cpu"] == "3"


def test_auto_tier_offline_uses_the_scheduler_choice_or_the_default(build):
    assert build(task({"tier": "auto"}))["metadata"]["labels"][identity.LABEL_TIER] == "medium"
    assert build(task({"tier": "auto"}), tier_name="heavy")["metadata"]["labels"][identity.LABEL_TIER] == "heavy"


def test_an_unknown_tier_is_a_task_error(seed_config, templates):
    with pytest.raises(TaskSpecError, match="unknown tier 'huge'"):
        build_pod(task({"tier": "huge"}), seed_config, templates)


@pytest.mark.parametrize("ref", ["../etc/passwd", "/etc/passwd", "/opt/airflow/pod_templates/../x.yaml"])
def test_template_references_cannot_escape_the_directory(seed_config, templates, ref):
    with pytest.raises(TemplateError):
        build_pod(task({"pod_template": ref}), seed_config, templates)


# -- pod_override ------------------------------------------------------------------------------------
def test_pod_override_merges_containers_by_name_appends_volumes_and_null_deletes(build):
    override = {
        "metadata": {"labels": {"extra": "yes"}},
        "spec": {
            "terminationGracePeriodSeconds": 7,
            "tolerations": None,
            "containers": [
                {"name": "base", "env": [{"name": "LOG_LEVEL", "value": "debug"}]},
            ],
            "volumes": [{"name": "scratch", "emptyDir": {}}],
        },
    }
    pod = build(task({"pod_override": override}))
    assert pod["spec"]["terminationGracePeriodSeconds"] == 7
    assert "tolerations" not in pod["spec"]
    assert len(pod["spec"]["containers"]) == 1
    assert {"name": "LOG_LEVEL", "value": "debug"} in base(pod)["env"]
    assert {"name": "scratch", "emptyDir": {}} in pod["spec"]["volumes"]
    assert {"tmp", "dags", "airflow-config", "scratch"} <= {v["name"] for v in pod["spec"]["volumes"]}


def test_a_sidecar_added_by_pod_override_must_be_hardened_too(seed_config, templates):
    sidecar = {"name": "sidecar", "image": "busybox:1.36"}
    with pytest.raises(PodPolicyError, match="sidecar"):
        build_pod(task({"pod_override": {"spec": {"containers": [sidecar]}}}), seed_config, templates)


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ({"spec": {"containers": [{"name": "base", "securityContext": {"privileged": True}}]}}, "privileged"),
        ({"spec": {"volumes": [{"name": "host", "hostPath": {"path": "/"}}]}}, "hostPath"),
        ({"spec": {"hostNetwork": True}}, "hostNetwork"),
        (
            {"spec": {"containers": [{"name": "base", "securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}}]}},
            "SYS_ADMIN",
        ),
        ({"spec": {"securityContext": {"runAsUser": 0}}}, "runAsUser"),
        (
            {"spec": {"containers": [{"name": "base", "securityContext": {"allowPrivilegeEscalation": True}}]}},
            "allowPrivilegeEscalation",
        ),
        ({"spec": {"serviceAccountName": "airflow-scheduler"}}, "serviceAccountName"),
        ({"spec": {"automountServiceAccountToken": True}}, "automountServiceAccountToken"),
        ({"metadata": {"name": "other"}}, "metadata.name"),
        ({"metadata": {"namespace": "kube-system"}}, "namespace 'kube-system'"),
        ({"metadata": {"labels": {"kubernetes_executor": "False"}}}, "kubernetes_executor"),
    ],
)
def test_overrides_that_break_the_restricted_profile_or_identity_are_refused(
    seed_config, templates, override, fragment
):
    with pytest.raises(PodPolicyError, match=fragment):
        build_pod(task({"pod_override": override}), seed_config, templates)


def test_pod_override_fields_unknown_to_kubernetes_fail_strict_validation(seed_config, templates):
    with pytest.raises(SchemaError, match="colour"):
        build_pod(task({"pod_override": {"spec": {"colour": "blue"}}}), seed_config, templates)


def test_merge_pod_override_replaces_fields_merges_named_items_and_leaves_its_inputs_alone():
    base_doc = {
        "metadata": {"labels": {"a": "1", "b": "2"}},
        "spec": {
            "nodeSelector": {"node-type": "worker", "zone": "a"},
            "containers": [{"name": "base", "env": [{"name": "X", "value": "1"}], "args": ["a", "b"]}],
            "drop": 1,
        },
    }
    override = {
        "metadata": {"labels": {"b": "3", "a": None}},
        "spec": {
            "nodeSelector": {"node-type": "compute-optimized"},
            "containers": [{"name": "base", "env": [{"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "x"}}}],
                            "args": ["c"]}],
            "drop": None,
        },
    }  # fmt: skip
    snapshot, override_snapshot = copy.deepcopy(base_doc), copy.deepcopy(override)
    merged = merge_pod_override(base_doc, override)
    assert merged == {
        "metadata": {"labels": {"b": "3"}},
        "spec": {
            "nodeSelector": {"node-type": "compute-optimized"},  # replaced: "zone" is gone, as in the provider
            "containers": [{"name": "base", "env": [{"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "x"}}}],
                            "args": ["c"]}],
        },
    }  # fmt: skip
    assert (base_doc, override) == (snapshot, override_snapshot)


def test_the_seeds_placement_as_a_pod_override_moves_a_default_task_to_the_compute_pool_alone(build):
    """The seed's heavy pod (its nodeSelector and toleration) as Airflow's pod_override on the default template:
    the template's worker-pool selector and toleration are replaced, not kept beside the compute pool's.  (The
    seed's labels would change the template's ``workload`` label, which the task pod policy refuses.)"""
    seed_placement = {
        "spec": {
            "nodeSelector": {"node-type": "compute-optimized"},
            "tolerations": [{"key": "workload", "operator": "Equal", "value": "heavy", "effect": "NoSchedule"}],
        },
    }
    pod = build(task({"pod_override": seed_placement}))
    assert pod["spec"]["nodeSelector"] == {"node-type": "compute-optimized"}
    assert pod["spec"]["tolerations"] == [
        {"key": "workload", "operator": "Equal", "value": "heavy", "effect": "NoSchedule"}
    ]


def test_a_pod_override_affinity_replaces_the_templates_instead_of_adding_alternatives(seed_config, build):
    def pool(name: str) -> dict:
        term = {"matchExpressions": [{"key": "node-type", "operator": "In", "values": [name]}]}
        return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}}

    first = build(task({"pod_override": {"spec": {"affinity": pool("worker")}}}))
    assert first["spec"]["affinity"] == pool("worker")
    # A template that already pins the pool by affinity: the override's terms replace its terms (merged, the two
    # terms would be ORed and the pod could land in either pool).
    second = merge_pod_override(first, {"spec": {"affinity": pool("compute-optimized")}})
    assert second["spec"]["affinity"] == pool("compute-optimized")


def test_a_pod_override_security_context_replaces_the_templates_so_the_policy_judges_what_remains(
    seed_config, templates
):
    weaker = {"spec": {"securityContext": {"runAsUser": 1000}}}
    with pytest.raises(PodPolicyError, match=r"securityContext\.runAsNonRoot: a task may only make the security"):
        build_pod(task({"pod_override": weaker}), seed_config, templates)
    container = {"spec": {"containers": [{"name": "base", "securityContext": {"runAsUser": 1000}}]}}
    with pytest.raises(
        PodPolicyError, match=r"containers\[0\] \(base\)\.securityContext\.readOnlyRootFilesystem: a task may only make"
    ):
        build_pod(task({"pod_override": container}), seed_config, templates)


def test_a_complete_security_context_in_a_pod_override_is_taken_as_given(build):
    hardened = {
        "runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 0, "fsGroup": 0,
        "fsGroupChangePolicy": "OnRootMismatch", "seccompProfile": {"type": "RuntimeDefault"},
    }  # fmt: skip
    pod = build(task({"pod_override": {"spec": {"securityContext": hardened}}}))
    assert pod["spec"]["securityContext"] == hardened


# -- property: whatever the ids, the pod is valid ----------------------------------------------------
_ids = st.text(min_size=1, max_size=80).filter(lambda s: s.isprintable())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(dag=_ids, task_id=_ids, run=_ids, map_index=st.integers(-1, 5000), try_number=st.integers(0, 50))
def test_any_task_key_gives_a_valid_restricted_pod(seed_config, templates, dag, task_id, run, map_index, try_number):
    t = Task.from_dict(
        {"dag_id": dag, "task_id": task_id, "run_id": run, "map_index": map_index, "try_number": try_number,
         "command": ["true"]}
    )  # fmt: skip
    pod = build_pod(t, seed_config, templates)
    assert_valid(pod)
    assert identity.key_from_annotations(pod["metadata"]["annotations"]) == t.key


# -- the checked base pod, built once per template version ------------------------------------------
@pytest.mark.parametrize("fields", [{}, {"kubernetes_config": {"tier": "heavy"}}, LIGHT, {"task_id": "other"}])
def test_a_task_that_changes_nothing_gets_the_pod_a_full_build_gives(seed_config, templates, fields):
    t = Task.from_dict({**KEY, "task_id": "t", **fields})
    first = build_pod(t, seed_config, templates)
    assert build_pod(t, seed_config, templates) == first == build_pod(t, seed_config, templates, validate_schema=True)
    assert_valid(first)


def test_each_task_gets_its_own_copy_of_the_shared_pod(seed_config, templates):
    one = build_pod(task(task_id="one"), seed_config, templates)
    base(one)["image"] = "changed/by:caller"
    two = build_pod(task(task_id="two"), seed_config, templates)
    assert base(two)["image"] == "apache/airflow:2.8.0"
    assert two["metadata"]["name"] != one["metadata"]["name"]
    assert base(two)["args"] == ["true"]


def test_a_changed_template_file_changes_the_next_pods(seed_config, tmp_path):
    import yaml

    pod = TemplateStore(Path(__file__).resolve().parent.parent / "pod_templates").load("default_template")
    (tmp_path / "default_template.yaml").write_text(yaml.safe_dump(pod))
    store = TemplateStore(tmp_path, recheck_seconds=0)
    assert "team" not in build_pod(task(), seed_config, store)["metadata"]["labels"]
    pod["metadata"].setdefault("labels", {})["team"] = "data"
    (tmp_path / "default_template.yaml").write_text(yaml.safe_dump(pod) + "# changed\n")
    assert build_pod(task(), seed_config, store)["metadata"]["labels"]["team"] == "data"


def test_a_template_that_fails_the_checks_fails_every_task_that_uses_it(seed_config, templates):
    config = ExecutorConfig(**{**seed_config.__dict__, "worker_container_image": None})
    for name in ("first", "second"):
        with pytest.raises(TaskSpecError, match=f"task_id='{name}'|{name}.*no image"):
            build_pod(task(task_id=name), config, templates)
