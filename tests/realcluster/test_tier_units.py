"""The tier's own logic, without a cluster (part of ``make test``): what it builds, adapts and changes is only
what its README says - so a real-cluster pass means the platform as users get it passed."""

from __future__ import annotations

import difflib
import re
from pathlib import Path

import yaml

from airflow_k8s.infra.render.offline import evaluate
from tests.realcluster import workload
from tests.realcluster.applier import adapt_to_1_20, plan
from tests.realcluster.images import COPIED
from tests.realcluster.kit import ROOT
from tests.realcluster.stack import STACK, TierStack, tier_values


def test_the_image_digest_covers_every_source_the_dockerfile_copies():
    dockerfile = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    sources = []
    for line in dockerfile.splitlines():
        if line.startswith("COPY "):
            sources += [w for w in line.split()[1:-1] if not w.startswith("--")]
    assert sorted(sources) == sorted(COPIED)


def test_only_the_pod_disruption_budget_is_rewritten_for_kubernetes_1_20():
    pdb = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "x"},
        "spec": {"maxUnavailable": 1, "selector": {}, "unhealthyPodEvictionPolicy": "AlwaysAllow"},
    }
    adapted, why = adapt_to_1_20(pdb, {"policy/v1beta1", "v1"})
    assert adapted == {**pdb, "apiVersion": "policy/v1beta1", "spec": {"maxUnavailable": 1, "selector": {}}}
    assert "policy/v1beta1" in why
    assert pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"  # the platform's object is untouched
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "y"}}
    assert adapt_to_1_20(config_map, {"v1"}) == (config_map, "")
    assert adapt_to_1_20({"apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor"}, {"v1"})[0] is None


def test_the_single_node_templates_differ_from_the_shipped_ones_only_in_placement(tmp_path: Path):
    copies = workload.single_node_templates(tmp_path)
    shipped = {p.name: yaml.safe_load(p.read_text()) for p in (ROOT / "pod_templates").glob("*.yaml")}
    workers = {key: shipped["default_template.yaml"]["spec"][key] for key in ("nodeSelector", "tolerations")}
    for name, pod in shipped.items():
        copy = yaml.safe_load((copies / name).read_text())
        for placement in ("nodeSelector", "tolerations"):
            assert copy["spec"].pop(placement) == workers[placement]
            pod["spec"].pop(placement)
        assert copy == pod, name


def test_the_seed_dags_are_copied_verbatim_but_for_heavy_computations_request(tmp_path: Path):
    workload.seed_dags(tmp_path)
    for source in (ROOT / "examples" / "dags").glob("*.py"):
        before, after = source.read_text().splitlines(), (tmp_path / source.name).read_text().splitlines()
        changed = [line for line in difflib.unified_diff(before, after, lineterm="", n=0) if line[:1] in "+-"]
        if source.name != "custom_pod_dag.py":
            assert changed == [], source.name
        else:
            assert changed[2:] == [
                '-            resources={"requests": {"cpu": "2", "memory": "4Gi"}, '
                '"limits": {"cpu": "4", "memory": "8Gi"}},',
                '+            resources={"requests": {"cpu": "500m", "memory": "1Gi"}, '
                '"limits": {"cpu": "1", "memory": "2Gi"}},',
            ]


def test_the_apply_order_is_the_programs_migration_before_the_control_plane(tmp_path: Path):
    stack = TierStack(tier_values("localhost/x/airflow:1", workload.single_node_templates(tmp_path / "t")))
    inputs = stack.with_secrets(databaseUrl="postgresql://u:p@h/db").inputs(tmp_path / "project")
    planned = plan(evaluate(inputs.config, secret_keys=inputs.secret_keys, stack=STACK))
    label = {p.urn: p.label() for p in planned}
    order = [p.label() for p in planned]
    needs = {p.label(): {label[u] for u in p.depends_on} for p in planned}
    assert order[0].startswith(("Namespace", "PriorityClass", "ClusterRole"))
    job = "Job airflow-kc/airflow-db-migrate"
    assert {
        "Namespace airflow-kc",
        "Secret airflow-kc/airflow-secrets",
        "ConfigMap airflow-kc/airflow-config",
        "ServiceAccount airflow-kc/airflow-control-plane",
        "PriorityClass airflow-control-plane",
        "NetworkPolicy airflow-kc/airflow-control-plane-db",
    } <= needs[job]
    deployments = [d for d in order if d.startswith("Deployment")]
    assert sorted(deployments) == [
        f"Deployment airflow-kc/airflow-{role}" for role in ("api-server", "dag-processor", "scheduler", "triggerer")
    ]
    for deployment in deployments:  # the applier starts each only once all of these are ready
        assert {
            job,
            "ConfigMap airflow-kc/airflow-pod-templates",
            "PersistentVolumeClaim airflow-kc/airflow-dags",
        } <= needs[deployment]
        assert order.index(deployment) > order.index(job)
