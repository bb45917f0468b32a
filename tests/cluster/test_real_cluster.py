"""Opt-in: the engine against a real cluster.

    KUBECONFIG=~/.kube/config EXECUTOR_TEST_NAMESPACE=executor-test pytest -m cluster

The namespace must exist and the kubeconfig's user must be allowed the scheduler Role's verbs
there.  Task pods use a minimal restricted template (busybox, no PVC/ConfigMap/Secret), so any
conformant cluster can run them; nothing outside that namespace is touched.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
import yaml

from airflow_k8s.executor.contract.config_loader import parse_config
from airflow_k8s.executor.engine.core import Engine, EngineOptions
from airflow_k8s.executor.kube.client import KubeClient
from airflow_k8s.executor.pods.templates import TemplateStore
from airflow_k8s.executor.tasks.results import FAILED, SUCCESS, MemorySink
from airflow_k8s.executor.tasks.task import Task

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(not os.environ.get("KUBECONFIG"), reason="needs KUBECONFIG pointing at a test cluster"),
]

TEMPLATE = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"labels": {"component": "worker"}},
    "spec": {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "securityContext": {"runAsNonRoot": True, "runAsUser": 65534, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [
            {
                "name": "base",
                "image": "busybox:1.36",
                "resources": {
                    "requests": {"cpu": "10m", "memory": "16Mi"},
                    "limits": {"cpu": "100m", "memory": "32Mi"},
                },
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "capabilities": {"drop": ["ALL"]},
                },
            }
        ],
    },
}


def test_tasks_run_to_success_and_failure_on_a_real_cluster(tmp_path: Path):
    namespace = os.environ.get("EXECUTOR_TEST_NAMESPACE", "default")
    (tmp_path / "default_template.yaml").write_text(yaml.safe_dump(TEMPLATE))
    config = dataclasses.replace(
        parse_config("[kubernetes]\n", environ={}),
        namespace=namespace,
        in_cluster=False,
        scheduler_instance_id=f"pytest-{os.getpid()}",
        delete_worker_pods_on_failure=True,
    )
    kube = KubeClient.from_settings(in_cluster=False, config_file=os.environ["KUBECONFIG"])
    sink = MemorySink()
    engine = Engine(config, TemplateStore(tmp_path), kube, sink=sink, options=EngineOptions(tick=0.05))
    ok = Task.from_dict({"dag_id": "pytest", "task_id": "ok", "run_id": str(os.getpid()), "command": ["true"]})
    bad = Task.from_dict(
        {"dag_id": "pytest", "task_id": "bad", "run_id": str(os.getpid()), "command": ["sh", "-c", "echo boom; exit 3"]}
    )
    engine.start()
    try:
        engine.submit(ok)
        engine.submit(bad)
        assert engine.wait_idle(300), engine.snapshot()
    finally:
        engine.stop()
        kube.close()
    assert sink.results[ok.key].state == SUCCESS
    failed = sink.results[bad.key]
    assert (failed.state, failed.exit_code) == (FAILED, 3)
    assert "boom" in failed.log_tail
