"""The command line: render-pod, validate, submit and the cluster commands, with their exit codes."""

from __future__ import annotations

import json
import logging
import urllib.request
from pathlib import Path

import pytest
import yaml

from airflow_k8s.executor import cli
from airflow_k8s.executor.engine.logs import JsonFormatter
from airflow_k8s.executor.engine.metrics import EngineMetrics
from airflow_k8s.executor.engine.server import StatusServer
from airflow_k8s.executor.tasks import identity
from airflow_k8s.executor.tasks.spool import Spool
from tests.conftest import ROOT

EXAMPLES = ROOT / "examples"
TEMPLATES = str(ROOT / "pod_templates")
BASE_TASK = '{"dag_id": "d", "task_id": "t", "run_id": "r", "command": ["true"]'  # without its closing brace


def run(*argv: str) -> int:
    return cli.main(["--plain-logs", *argv])


def test_render_pod_prints_the_seeds_heavy_computation_pod(capsys):
    assert run("render-pod", "--config", str(EXAMPLES / "airflow.cfg"), "--templates", TEMPLATES,
               "--task", str(EXAMPLES / "heavy_computation.json")) == 0  # fmt: skip
    pod = yaml.safe_load(capsys.readouterr().out)
    assert pod["kind"] == "Pod" and pod["metadata"]["name"].startswith("custom-pod-dag-heavy-computation-")
    assert pod["spec"]["nodeSelector"] == {"node-type": "compute-optimized"}
    assert pod["spec"]["containers"][0]["resources"]["limits"] == {"cpu": "4", "memory": "8Gi"}


def test_render_pod_accepts_inline_json_and_a_tier(capsys):
    task = json.dumps(
        {"dag_id": "d", "task_id": "t", "run_id": "r", "command": ["true"], "kubernetes_config": {"tier": "auto"}}
    )
    assert run("render-pod", "--config", str(EXAMPLES / "airflow.cfg"), "--templates", TEMPLATES,
               "--task", task, "--tier", "light") == 0  # fmt: skip
    pod = yaml.safe_load(capsys.readouterr().out)
    assert pod["metadata"]["labels"][identity.LABEL_TIER] == "light"


@pytest.mark.parametrize(
    ("task", "fragment"),
    [
        ('{"dag_id": "d"', "invalid JSON"),
        (BASE_TASK + ', "kubernetes_config": {"pod_template": "../x"}}', "'..'"),
        (BASE_TASK + ', "kubernetes_config": {"resources": {"requests": {"cpu": "9x"}}}}', "not a Kubernetes quantity"),
        ("/nonexistent/task.json", "cannot read task file"),
    ],
)  # fmt: skip
def test_bad_input_exits_2_with_the_reason(capsys, task, fragment):
    assert run("render-pod", "--config", str(EXAMPLES / "airflow.cfg"), "--templates", TEMPLATES, "--task", task) == 2
    assert fragment in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ("run", "--port", "70000"),
        ("run", "--port", "٩٠٠٠"),  # Arabic-Indic digits: int() would accept them
        ("cleanup", "--max-age-hours", "1e308"),
        ("cleanup", "--max-age-hours", "nan"),
        ("cleanup", "--max-age-hours", "-1"),
    ],
)
def test_numeric_options_are_bounded_like_their_config_keys(capsys, argv):
    with pytest.raises(SystemExit) as info:
        run(argv[0], "--config", str(EXAMPLES / "airflow.cfg"), *argv[1:])
    assert info.value.code == 2 and argv[-1] in capsys.readouterr().err


def test_a_task_argument_naming_a_fifo_is_refused_without_blocking(tmp_path, capsys):
    import os

    os.mkfifo(tmp_path / "task.json")
    assert run("render-pod", "--config", str(EXAMPLES / "airflow.cfg"), "--templates", TEMPLATES,
               "--task", str(tmp_path / "task.json")) == 2  # fmt: skip
    assert "a FIFO; task files must be regular files" in capsys.readouterr().err


def test_deeply_nested_task_json_exits_2_not_with_a_traceback(capsys):
    task = BASE_TASK + ', "kubernetes_config": {"pod_override": ' + "[" * 50_000 + "]" * 50_000 + "}}"
    assert run("render-pod", "--config", str(EXAMPLES / "airflow.cfg"), "--templates", TEMPLATES, "--task", task) == 2
    assert "nested more than 32 levels" in capsys.readouterr().err


def test_a_bad_config_file_exits_2_naming_the_key(tmp_path, capsys):
    cfg = tmp_path / "airflow.cfg"
    cfg.write_text("[kubernetes]\nworker_pods_max = 0\n")
    assert run("validate", "--config", str(cfg), "--templates", TEMPLATES) == 2
    assert "worker_pods_max" in capsys.readouterr().err


def test_validate_checks_config_and_every_template(capsys):
    assert run("validate", "--config", str(EXAMPLES / "airflow.cfg"), "--templates", TEMPLATES) == 0
    assert "4 templates" in capsys.readouterr().out


def test_validate_reports_a_broken_template(tmp_path, capsys):
    for template in Path(TEMPLATES).glob("*.yaml"):
        (tmp_path / template.name).write_text(template.read_text())
    (tmp_path / "light_task.yaml").write_text("kind: Deployment\n")
    assert run("validate", "--config", str(EXAMPLES / "airflow.cfg"), "--templates", str(tmp_path)) == 2
    assert "light_task.yaml" in capsys.readouterr().err


def test_submit_writes_the_task_into_the_spool(tmp_path, capsys):
    spool = tmp_path / "spool"
    assert run("submit", "--config", str(EXAMPLES / "airflow.cfg"), "--templates", TEMPLATES, "--spool", str(spool),
               "--task", str(EXAMPLES / "light_task.json")) == 0  # fmt: skip
    [task] = Spool(spool).scan()
    assert task.key.task_id == "light_task"


def test_submit_refuses_a_task_the_pod_policy_would_refuse_and_spools_nothing(tmp_path, capsys):
    spool = tmp_path / "spool"
    task = json.loads((EXAMPLES / "light_task.json").read_text())
    task["kubernetes_config"] = {"pod_override": {"spec": {"hostNetwork": True}}}
    code = run("submit", "--config", str(EXAMPLES / "airflow.cfg"), "--templates", TEMPLATES, "--spool", str(spool),
               "--task", json.dumps(task))  # fmt: skip
    assert code == 2 and "hostNetwork" in capsys.readouterr().err
    assert not (spool / "incoming").exists() or list((spool / "incoming").iterdir()) == []


def test_pods_and_cleanup_talk_to_the_cluster(fake_kube, capsys, tmp_path):
    from airflow_k8s.executor.contract.config_loader import load_config
    from airflow_k8s.executor.kube.client import KubeClient
    from airflow_k8s.executor.pods.podfactory import build_pod
    from airflow_k8s.executor.pods.templates import TemplateStore
    from airflow_k8s.executor.tasks.task import Task

    config = load_config(EXAMPLES / "airflow.cfg", environ={})
    kube = KubeClient.for_host(fake_kube.url)
    task = Task.from_dict(json.loads((EXAMPLES / "light_task.json").read_text()))
    fake_kube.cluster.set_nodes([])
    pod = build_pod(task, config, TemplateStore(TEMPLATES))
    pod["spec"].pop("nodeSelector")
    pod["spec"].pop("tolerations")
    kube.create_pod(config.namespace, pod)
    fake_kube.cluster.wait_for_phase(config.namespace, pod["metadata"]["name"], "Succeeded")
    common = ["--config", str(EXAMPLES / "airflow.cfg"), "--api-url", fake_kube.url]
    assert run("pods", *common) == 0
    out = capsys.readouterr().out
    assert pod["metadata"]["name"] in out and '"succeeded": 1' in out
    assert run("cleanup", *common, "--max-age-hours", "1", "--dry-run") == 0
    assert "would delete 0 pod(s)" in capsys.readouterr().out
    assert run("cost", *common, "--spool", str(tmp_path / "spool"), "--by", "tier") == 0
    assert "light" in capsys.readouterr().out


def test_cluster_errors_exit_1_naming_the_api_server(capsys):
    assert run("pods", "--config", str(EXAMPLES / "airflow.cfg"), "--api-url", "http://127.0.0.1:9") == 1
    err = capsys.readouterr().err
    assert "connection error" in err and "http://127.0.0.1:9" in err  # the server it could not reach


def test_outside_a_cluster_the_in_cluster_default_says_how_to_point_at_a_kubeconfig(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert run("pods", "--config", str(EXAMPLES / "airflow.cfg")) == 1
    err = capsys.readouterr().err
    assert "in-cluster service account" in err and "in_cluster = False" in err and "config_file" in err


def test_the_status_server_serves_metrics_and_probes():
    metrics = EngineMetrics()
    metrics.launched()
    metrics.api_error(429, "create")
    state = {"healthy": True, "ready": False}
    server = StatusServer(metrics.registry, healthy=lambda: state["healthy"], ready=lambda: state["ready"],
                          host="127.0.0.1", port=0)  # fmt: skip
    server.start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        text = urllib.request.urlopen(f"{base}/metrics").read().decode()  # noqa: S310 - loopback
        assert "airflow_executor_pod_launches_total 1.0" in text
        assert 'airflow_executor_api_errors_total{code="429",verb="create"} 1.0' in text
        assert "airflow_executor_task_start_latency_seconds_bucket" in text
        assert urllib.request.urlopen(f"{base}/healthz").status == 200  # noqa: S310
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(f"{base}/readyz")  # noqa: S310
        assert info.value.code == 503
        state["ready"] = True
        assert urllib.request.urlopen(f"{base}/readyz").status == 200  # noqa: S310
    finally:
        server.stop()


def test_logs_are_json_lines_with_the_extra_fields():
    record = logging.LogRecord(
        "airflow_k8s.executor.engine.core", logging.WARNING, __file__, 1, "task %s failed", ("k",), None
    )
    record.event, record.pod, record.exit_code = "task_failed", "p-1", 3
    entry = json.loads(JsonFormatter().format(record))
    assert entry["msg"] == "task k failed" and entry["level"] == "warning"
    assert (entry["event"], entry["pod"], entry["exit_code"]) == ("task_failed", "p-1", 3)


# -- which pods the operator commands see ---------------------------------------------------------------
def _pod_of_job(fake_kube, tmp_path, task_id: str, job: str | None, *, ours: bool = True) -> str:
    """A finished task pod as the executor inside Airflow labels it (``airflow-worker=<scheduler job id>``);
    ``ours=False`` makes it a pod of the provider's KubernetesExecutor (its labels, without this project's)."""
    import dataclasses

    from airflow_k8s.executor.contract.config_loader import load_config
    from airflow_k8s.executor.kube.client import KubeClient
    from airflow_k8s.executor.pods.podfactory import build_pod
    from airflow_k8s.executor.pods.templates import TemplateStore
    from airflow_k8s.executor.tasks.task import Task

    config = load_config(EXAMPLES / "airflow.cfg", environ={})
    if job is not None:
        config = dataclasses.replace(config, scheduler_instance_id=job)
    task = Task.from_dict({**json.loads(BASE_TASK + "}"), "task_id": task_id})
    pod = build_pod(task, config, TemplateStore(TEMPLATES))
    pod["spec"].pop("nodeSelector")
    pod["spec"].pop("tolerations")
    if not ours:
        del pod["metadata"]["labels"][identity.LABEL_TIER]
    kube = KubeClient.for_host(fake_kube.url)
    try:
        kube.create_pod(config.namespace, pod)
    finally:
        kube.close()
    fake_kube.cluster.wait_for_phase(config.namespace, pod["metadata"]["name"], "Succeeded")
    return str(pod["metadata"]["name"])


def test_pods_cleanup_and_cost_see_the_pods_of_airflow_scheduler_jobs_unless_narrowed(fake_kube, capsys, tmp_path):
    fake_kube.cluster.set_nodes([])
    job_42 = _pod_of_job(fake_kube, tmp_path, "in_airflow", "42")
    standalone = _pod_of_job(fake_kube, tmp_path, "standalone", None)
    provider = _pod_of_job(fake_kube, tmp_path, "providers", "43", ours=False)
    common = ["--config", str(EXAMPLES / "airflow.cfg"), "--api-url", fake_kube.url]

    assert run("pods", *common) == 0
    out = capsys.readouterr().out
    assert job_42 in out and standalone in out and provider not in out
    assert '"succeeded": 2' in out
    assert run("pods", *common, "--scheduler-job", "42") == 0
    out = capsys.readouterr().out
    assert job_42 in out and standalone not in out
    assert run("cost", *common, "--spool", str(tmp_path / "spool"), "--no-live") == 0
    capsys.readouterr()
    assert run("cleanup", *common, "--max-age-hours", "0", "--scheduler-job", "default") == 0
    assert "deleted 1 pod(s)" in capsys.readouterr().out
    names = {p["metadata"]["name"] for p in fake_kube.cluster.pods("airflow")}
    assert standalone not in names and {job_42, provider} <= names
    assert run("cleanup", *common, "--max-age-hours", "0") == 0
    assert "deleted 1 pod(s)" in capsys.readouterr().out
    assert {p["metadata"]["name"] for p in fake_kube.cluster.pods("airflow")} == {provider}


def test_cleanup_accepts_zero_hours_and_refuses_negative_ones(capsys):
    with pytest.raises(SystemExit):
        run("cleanup", "--config", str(EXAMPLES / "airflow.cfg"), "--max-age-hours", "-0.5")
    assert "from 0 to 8760" in capsys.readouterr().err


# -- validate ---------------------------------------------------------------------------------------------
def test_validate_lists_every_problem_of_the_file_and_the_templates_at_once(tmp_path, capsys):
    for template in Path(TEMPLATES).glob("*.yaml"):
        (tmp_path / template.name).write_text(template.read_text())
    (tmp_path / "light_task.yaml").write_text("kind: Deployment\n")
    cfg = tmp_path / "airflow.cfg"
    cfg.write_text(
        "[kubernetes_executor]\nworker_pods_max = 0\nimage_pull_policy = Sometimes\nworker_pods_mx = 3\n"
        "[kubernetes_tier:big]\nrequest_cpu = 64\nrequest_memory = 1Gi\npod_template = big.yaml\n"
    )
    assert run("validate", "--config", str(cfg), "--templates", str(tmp_path)) == 2
    err = capsys.readouterr().err
    assert "3 problem(s)" in err, err
    for fragment in ("worker_pods_max", "image_pull_policy", "worker_pods_mx", "did you mean 'worker_pods_max'"):
        assert fragment in err, (fragment, err)
    cfg.write_text("[kubernetes_executor]\nworker_pods_max = 3\ndefault_tier = big\n[kubernetes_tier:big]\n"
                   "request_cpu = 64\nrequest_memory = 1Gi\npod_template = big.yaml\n")  # fmt: skip
    assert run("validate", "--config", str(cfg), "--templates", str(tmp_path)) == 2
    err = capsys.readouterr().err
    assert "2 problem(s)" in err and "light_task.yaml" in err, err
    assert "[kubernetes_tier:big] pod_template = 'big.yaml'" in err, err


def test_validate_with_only_pod_template_dir_finds_that_directorys_default_template(tmp_path, capsys):
    cfg = tmp_path / "airflow.cfg"
    cfg.write_text("[kubernetes_executor]\npod_template_dir = /srv/templates\n")
    assert run("validate", "--config", str(cfg), "--templates", TEMPLATES) == 0
    assert "4 templates" in capsys.readouterr().out
    empty = tmp_path / "templates"
    empty.mkdir()
    (empty / "light_task.yaml").write_text((Path(TEMPLATES) / "light_task.yaml").read_text())
    assert run("validate", "--config", str(cfg), "--templates", str(empty)) == 2
    err = capsys.readouterr().err
    assert "pod_template_file = '/srv/templates/default_template.yaml'" in err and "not found" in err
