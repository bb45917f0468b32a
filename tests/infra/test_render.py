"""Offline render: files, normalization, determinism, --diff, --check (own checks + checkov)."""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import pytest
import yaml

from airflow_k8s.infra.config.stack_config import StackConfigError
from airflow_k8s.infra.render import checkov
from airflow_k8s.infra.render.checks import check_directory
from airflow_k8s.infra.render.diff import diff_dirs
from airflow_k8s.infra.render.main import OUTPUTS_FILE, PLACEHOLDER, RenderResult, load_stack_inputs, main, render
from airflow_k8s.infra.render.outdir import MANIFEST

ROOT = Path(__file__).resolve().parents[2]
REQUIRE_CHECKOV = os.environ.get("REQUIRE_CHECKOV") == "1"
OBJECTS = 50  # Kubernetes objects of the dev stack
ROLES = ("api-server", "dag-processor", "scheduler", "triggerer")


def _project(tmp_path: Path, **overrides: object) -> Path:
    """A copy of the project files with ``overrides`` applied to Pulumi.dev.yaml."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ROOT / "Pulumi.yaml", project)
    stack = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
    for key, value in overrides.items():
        stack["config"][f"airflow-k8s:{key}"] = value
    (project / "Pulumi.dev.yaml").write_text(yaml.safe_dump(stack))
    return project


def _with_full_keys(project: Path, values: dict[str, object]) -> Path:
    """``values`` (full keys, any project prefix) added to the project's Pulumi.dev.yaml."""
    stack = yaml.safe_load((project / "Pulumi.dev.yaml").read_text())
    stack["config"].update(values)
    (project / "Pulumi.dev.yaml").write_text(yaml.safe_dump(stack))
    return project


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, RenderResult, str]:
    out = tmp_path_factory.mktemp("render") / "dev"
    stream = io.StringIO()
    result = render("dev", out, check=True, stream=stream)
    return out, result, stream.getvalue()


def test_dev_render_writes_one_file_per_object(dev: tuple[Path, RenderResult, str]) -> None:
    out, result, summary = dev
    files = sorted(p.name for p in out.iterdir() if p.name != MANIFEST)
    assert len(files) == len(result.manifests) + 1 == OBJECTS + 1
    for role in ("scheduler", "api-server", "dag-processor", "triggerer"):
        assert f"deployment-airflow-dev-airflow-{role}.yaml" in files
    assert "job-airflow-dev-airflow-db-migrate.yaml" in files
    assert "podmonitor-airflow-dev-airflow-scheduler.yaml" in files
    assert "nodepool-cluster-airflow-gpu.yaml" in files
    assert "namespace-cluster-airflow-dev.yaml" in files
    assert not any("executor-state" in f for f in files)  # no task spool claim any more
    assert f"Rendered stack airflow-k8s/dev: {OBJECTS} objects" in summary
    assert "placeholder used" in summary
    outputs = json.loads((out / OUTPUTS_FILE).read_text())
    assert outputs["namespace"] == "airflow-dev"
    assert outputs["nodePoolNames"] == ["airflow-workers", "airflow-compute", "airflow-gpu"]
    assert outputs["executionApiUrl"] == "http://airflow-api-server.airflow-dev.svc.cluster.local:8080/execution/"
    assert json.loads((out / MANIFEST).read_text())["files"] == files


def test_dev_render_passes_every_check(dev: tuple[Path, RenderResult, str]) -> None:
    _, result, summary = dev
    assert result.findings == [], "\n".join(map(str, result.findings))
    report = result.checkov
    assert report is not None
    if not report.available:
        assert not REQUIRE_CHECKOV, "REQUIRE_CHECKOV=1 but checkov was not found (set CHECKOV)"
        pytest.skip("checkov not installed")
    assert report.error is None, report.error
    assert report.failed == []
    skipped = sorted((f.check_id, f.resource.rsplit(".", 1)[-1]) for f, _ in report.skipped)
    roles = [
        "airflow-api-server",
        "airflow-dag-processor",
        "airflow-db-migrate",
        "airflow-scheduler",
        "airflow-triggerer",
    ]
    checks = sorted({r for _, r in skipped if "-check-" in r})
    assert len(checks) == 2  # the image preflight Jobs, one per image
    assert skipped == sorted(
        [("CKV_K8S_35", r) for r in roles]  # Airflow's sensitive settings as env vars from the Secret
        + [("CKV_K8S_38", "airflow-api-server"), ("CKV_K8S_38", "airflow-scheduler")]  # API tokens
        + [("CKV_K8S_43", r) for r in roles]  # image digest: set by production stacks
        + [("CKV_K8S_43", check) for check in checks]  # the preflight runs the images as configured
        + [("CKV_K8S_15", next(c for c in checks if "-worker-" in c))]  # ...and as task pods pull them
    )
    assert report.passed > 400
    assert "checkov: " in summary and " 0 failed, 15 skipped" in summary
    assert result.ok


def test_numbers_are_ints_again_and_secrets_redacted(dev: tuple[Path, RenderResult, str]) -> None:
    out, _, _ = dev
    deployment = (out / "deployment-airflow-dev-airflow-scheduler.yaml").read_text()
    assert "replicas: 1\n" in deployment and ": 1.0\n" not in deployment
    assert "containerPort: 9102\n" in deployment
    quota = yaml.safe_load((out / "resourcequota-airflow-dev-airflow-quota.yaml").read_text())
    assert quota["spec"]["hard"]["pods"] == "16"
    secret = (out / "secret-airflow-dev-airflow-secrets.yaml").read_text()
    assert "database-url: <redacted>" in secret
    assert PLACEHOLDER not in "".join(p.read_text() for p in out.iterdir())


def test_render_is_deterministic(dev: tuple[Path, RenderResult, str], tmp_path: Path) -> None:
    out, _, _ = dev
    again = tmp_path / "again"
    render("dev", again, stream=io.StringIO())
    difference = diff_dirs(out, again)
    assert difference.empty, difference.render()
    assert difference.unchanged == OBJECTS + 1


def test_diff_reports_changed_added_and_removed(dev: tuple[Path, RenderResult, str], tmp_path: Path) -> None:
    out, _, _ = dev
    project = _project(tmp_path, workerPodsMax=6, capacityAwareTiers=False)
    new = tmp_path / "new"
    stream = io.StringIO()
    render("dev", new, diff=out, project_dir=project, stream=stream)
    difference = diff_dirs(out, new)
    assert difference.added == []
    assert difference.removed == [
        "clusterrole-cluster-airflow-node-reader.yaml",
        "clusterrolebinding-cluster-airflow-node-reader.yaml",
    ]
    rolled = [f"deployment-airflow-dev-airflow-{role}.yaml" for role in ROLES]
    assert difference.changed == ["configmap-airflow-dev-airflow-config.yaml", *rolled, OUTPUTS_FILE]
    assert difference.replaced == []  # airflow.cfg and the Deployments are updated in place
    patch = difference.patches["configmap-airflow-dev-airflow-config.yaml"]
    assert "-    worker_pods_max = 8\n+    worker_pods_max = 6\n" in patch
    assert difference.patches["clusterrole-cluster-airflow-node-reader.yaml"].startswith(
        "--- old/clusterrole-cluster-airflow-node-reader.yaml\n+++ /dev/null\n"
    )
    printed = stream.getvalue()
    assert "Diff against the previous render: 0 added, 2 removed, 6 changed (0 replaced)" in printed
    assert "- removed: clusterrole-cluster-airflow-node-reader.yaml" in printed
    assert "~ changed: configmap-airflow-dev-airflow-config.yaml (update)" in printed
    assert "+    worker_pods_max = 6" in printed


@pytest.mark.parametrize(
    ("change", "file", "action"),
    [
        # PriorityClass value is immutable: replace_on_changes + delete_before_replace (pinned name)
        ({"taskPriority": 2000}, "priorityclass-cluster-airflow-task.yaml", "replace, delete-first (.value changed)"),
        # a storage class change would delete the DAGs claim: protected, pulumi up stops
        (
            {"dagsStorageClass": "gp3"},
            "persistentvolumeclaim-airflow-dev-airflow-dags.yaml",
            "replace BLOCKED: protected, pulumi up stops (.spec.storageClassName changed)",
        ),
        (
            {"dagsStorageClass": "gp3", "protectDagsVolume": False},
            "persistentvolumeclaim-airflow-dev-airflow-dags.yaml",
            "replace, delete-first (.spec.storageClassName changed)",
        ),
        # a new release re-runs the migration: a Job's pod template is immutable
        (
            {"airflowImage": "ghcr.io/airflow-k8s/airflow:0.2.0"},
            "job-airflow-dev-airflow-db-migrate.yaml",
            "replace, delete-first (.spec.template.spec.containers[*].image changed)",
        ),
        # ConfigMaps and Secrets are updated in place (Pulumi.yaml sets the provider's mutable flags)
        ({"workerPodsMax": 6}, "configmap-airflow-dev-airflow-config.yaml", "update"),
        ({"dagsStorageSize": "20Gi"}, "persistentvolumeclaim-airflow-dev-airflow-dags.yaml", "update"),
    ],
)
def test_diff_says_replace_where_pulumi_preview_would(
    dev: tuple[Path, RenderResult, str], tmp_path: Path, change: dict[str, object], file: str, action: str
) -> None:
    out, _, _ = dev
    new = tmp_path / "new"
    render("dev", new, project_dir=_project(tmp_path, **change), stream=io.StringIO())
    assert diff_dirs(out, new).actions[file] == action


def test_config_maps_and_secrets_are_replaced_without_the_providers_mutable_flags(tmp_path: Path) -> None:
    """What pulumi-kubernetes does by default; the stack program refuses it, other programs may not."""
    from airflow_k8s.infra.render.manifests import manifests

    from .conftest import run_stack

    by_kind = {m.kind: m.replace_on for m in manifests(run_stack())}
    assert ".data" not in by_kind["ConfigMap"] and ".stringData" not in by_kind["Secret"]
    evaluation = run_stack()
    evaluation.provider_flags.clear()  # as if the provider had no enableConfigMapMutable/enableSecretMutable
    by_kind = {m.kind: m.replace_on for m in manifests(evaluation)}
    assert {".data", ".binaryData"} <= set(by_kind["ConfigMap"])
    assert {".data", ".stringData", ".type"} <= set(by_kind["Secret"])


def test_diff_against_itself_and_added_files(dev: tuple[Path, RenderResult, str], tmp_path: Path) -> None:
    out, _, _ = dev
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    (copy / "extra.yaml").write_text("a: 1\n")
    difference = diff_dirs(out, copy)
    assert difference.added == ["extra.yaml"]
    assert difference.patches["extra.yaml"] == "--- /dev/null\n+++ new/extra.yaml\n@@ -0,0 +1 @@\n+a: 1\n"
    assert diff_dirs(tmp_path / "missing", out).added == sorted(p.name for p in out.iterdir() if p.name != MANIFEST)


def _broken_copy(out: Path, tmp_path: Path) -> Path:
    broken = tmp_path / "broken"
    shutil.copytree(out, broken)
    path = broken / "deployment-airflow-dev-airflow-scheduler.yaml"
    deployment = yaml.safe_load(path.read_text())
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["securityContext"]["privileged"] = True
    container["securityContext"]["allowPrivilegeEscalation"] = True
    container["resource"] = container.pop("resources")  # a typo the API would silently drop
    path.write_text(yaml.safe_dump(deployment))
    return broken


def test_check_catches_a_broken_manifest(dev: tuple[Path, RenderResult, str], tmp_path: Path) -> None:
    out, _, _ = dev
    findings = check_directory(_broken_copy(out, tmp_path))
    by_check = {f.check for f in findings}
    assert by_check == {"schema", "pss", "hardening"}
    text = "\n".join(map(str, findings))
    assert "deployment-airflow-dev-airflow-scheduler.yaml: [schema]" in text
    assert "privileged must be false or unset" in text
    assert "allowPrivilegeEscalation must be false" in text
    assert "resources must set requests.cpu" in text


def test_check_catches_policy_drift_in_other_objects(dev: tuple[Path, RenderResult, str], tmp_path: Path) -> None:
    out, _, _ = dev
    broken = tmp_path / "drift"
    shutil.copytree(out, broken)

    def edit(name: str, change) -> None:
        path = broken / name
        obj = yaml.safe_load(path.read_text())
        change(obj)
        path.write_text(yaml.safe_dump(obj))

    edit(
        "namespace-cluster-airflow-dev.yaml",
        lambda o: o["metadata"]["labels"].update({"pod-security.kubernetes.io/enforce": "baseline"}),
    )
    edit(
        "secret-airflow-dev-airflow-secrets.yaml", lambda o: o["stringData"].update({"database-url": "postgresql://x"})
    )
    edit("nodepool-cluster-airflow-gpu.yaml", lambda o: o["spec"]["template"]["spec"].pop("nodeClassRef"))
    edit(
        "configmap-airflow-dev-airflow-config.yaml",
        lambda o: o["data"].update(
            {"airflow.cfg": o["data"]["airflow.cfg"].replace("worker_pods_max = 8", "worker_pods_max = -1")}
        ),
    )
    edit(
        "configmap-airflow-dev-airflow-pod-templates.yaml",
        lambda o: o["data"].update(
            {"light_task.yaml": o["data"]["light_task.yaml"].replace("runAsNonRoot: true", "runAsNonRoot: false")}
        ),
    )
    edit(
        "podmonitor-airflow-dev-airflow-scheduler.yaml",
        lambda o: o["spec"]["podMetricsEndpoints"][0].update({"intervall": "30s", "scheme": "ftp"}),
    )
    findings = check_directory(broken)
    checks = sorted(f.check for f in findings)
    assert checks == [
        "airflow.cfg", "crd", "crd", "namespace", "nodepool", "nodepool", "nodepool", "secrets", "templates",
    ], checks  # fmt: skip
    crd = "\n".join(str(f) for f in findings if f.check == "crd")
    assert "spec.podMetricsEndpoints.0: Additional properties are not allowed ('intervall' was unexpected)" in crd
    assert "spec.podMetricsEndpoints.0.scheme: 'ftp' is not one of" in crd


def test_checkov_fails_a_broken_manifest(dev: tuple[Path, RenderResult, str], tmp_path: Path) -> None:
    out, _, _ = dev
    if checkov.find_checkov() is None:
        assert not REQUIRE_CHECKOV, "REQUIRE_CHECKOV=1 but checkov was not found (set CHECKOV)"
        pytest.skip("checkov not installed")
    report = checkov.run_checkov(_broken_copy(out, tmp_path))
    failed = {f.check_id for f in report.failed}
    assert {"CKV_K8S_16", "CKV_K8S_20"} <= failed, failed  # privileged, privilege escalation
    assert not report.ok


def test_cli_check_subcommand_exit_codes(
    dev: tuple[Path, RenderResult, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, _, _ = dev
    env = {"REQUIRE_CHECKOV": "0"}
    assert main(["check", str(_broken_copy(out, tmp_path))], environ=env) == 1
    assert "FAIL deployment-airflow-dev-airflow-scheduler.yaml: [pss]" in capsys.readouterr().out


def test_cli_render_fails_on_bad_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = _project(tmp_path, workerPodsMax=0)
    code = main(["render", "--stack", "dev", "--out", str(tmp_path / "o"), "--project-dir", str(project)], environ={})
    assert code == 1
    assert "airflow-k8s:workerPodsMax = '0': must be >= 1" in capsys.readouterr().err


def test_missing_checkov_is_an_error_only_when_required(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHECKOV", str(tmp_path / "no-such-checkov"))
    args = ["render", "--stack", "dev", "--out", str(tmp_path / "o"), "--check"]
    assert main(args, environ={"REQUIRE_CHECKOV": "1"}) == 1
    assert main(args, environ={}) == 0


def test_stack_inputs_never_carry_secrets(tmp_path: Path) -> None:
    project = _project(tmp_path, databaseUrl={"secure": "v1:abc"}, fernetKey={"secure": "v1:def"})
    inputs = load_stack_inputs("dev", project)
    assert inputs.config["airflow-k8s:databaseUrl"] == PLACEHOLDER
    assert inputs.config["airflow-k8s:fernetKey"] == PLACEHOLDER
    assert sorted(inputs.secret_keys) == ["airflow-k8s:databaseUrl", "airflow-k8s:fernetKey"]
    assert inputs.config["airflow-k8s:workerPodsMax"] == "8"  # from the stack file
    assert inputs.config["airflow-k8s:metricsPort"] == "9102"  # from Pulumi.yaml defaults
    assert inputs.config["kubernetes:enableConfigMapMutable"] == "true"  # Pulumi.yaml's provider setting
    assert json.loads(inputs.config["airflow-k8s:nodePoolLimits"])[0] == "workers.cpu=8"


def test_a_plain_text_secret_in_the_stack_file_is_an_error_naming_file_and_key(tmp_path: Path) -> None:
    project = _project(tmp_path, databaseUrl={"secure": "v1:abc"}, fernetKey="plain-text-key")
    with pytest.raises(StackConfigError) as info:
        load_stack_inputs("dev", project)
    message = str(info.value)
    assert "in Pulumi.dev.yaml" in message and "airflow-k8s:fernetKey" in message
    assert "pulumi config set --secret fernetKey" in message and "plain-text-key" not in message


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("config:\n  airflow-k8s:workerPodsMax: 8\n  airflow-k8s:workerPodsMax: 800\n", "line 3: duplicate key"),
        ("base: &b\n  airflow-k8s:workerPodsMax: 8\nconfig: *b\n", "line 3: YAML aliases are not allowed"),
        ("config:\n  <<: {airflow-k8s:workerPodsMax: 8}\n", "line 2: YAML merge keys are not allowed"),
        ("- a list\n", "expected a mapping at the top"),
        ("config: [\n", "invalid YAML"),
        ("config:\n  airflow-k8s:x: " + "[" * 100_000 + "]" * 100_000 + "\n", "line 2: nested deeper than 64 levels"),
        ("config:\n  - airflow-k8s:workerPodsMax: 8\n", "config: expected a mapping of keys to values, found a list"),
    ],
)
def test_stack_files_with_duplicate_keys_or_aliases_are_errors_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, fragment: str
) -> None:
    project = _project(tmp_path)
    (project / "Pulumi.dev.yaml").write_text(text)
    code = main(["render", "--stack", "dev", "--out", str(tmp_path / "o"), "--project-dir", str(project)], environ={})
    err = capsys.readouterr().err
    assert code == 1 and "Pulumi.dev.yaml" in err and fragment in err, err
    assert "Traceback" not in err


def test_a_plain_secret_under_another_projects_prefix_is_an_error_not_ignored(tmp_path: Path) -> None:
    project = _with_full_keys(_project(tmp_path), {"other-project:jwtSecret": "plain-jwt-value"})
    with pytest.raises(StackConfigError) as info:
        load_stack_inputs("dev", project)
    message = str(info.value)
    assert "airflow-k8s:jwtSecret" in message and "under project 'other-project'" in message
    assert "plain-jwt-value" not in message


def test_a_plain_key_under_another_projects_prefix_is_noted_as_ignored(tmp_path: Path) -> None:
    project = _with_full_keys(_project(tmp_path), {"airflow:workerPodsMax": 3})
    inputs = load_stack_inputs("dev", project)
    assert "airflow:workerPodsMax: project 'airflow' is not 'airflow-k8s': ignored" in "\n".join(inputs.notes)


def test_a_bad_stack_value_names_the_stack_file_key_and_value(tmp_path: Path) -> None:
    with pytest.raises(StackConfigError) as info:
        load_stack_inputs("dev", _project(tmp_path, namespace="kube-system"))
    assert "invalid stack configuration in Pulumi.dev.yaml" in str(info.value)
    assert "airflow-k8s:namespace = 'kube-system': " in str(info.value)


def test_every_backend_renders_valid_manifests(tmp_path: Path) -> None:
    from airflow_k8s.infra.render.main import write_render
    from airflow_k8s.infra.render.manifests import manifests

    from .conftest import run_stack

    for backend, extra in (
        ("existing-nodes", {"existingNodes": ["workers=n1", "compute=n2", "gpu=n3"], "podMonitor": True}),
        ("none", {"triggererEnabled": False, "remoteBaseLogFolder": "gs://b/logs", "remoteLogCidr": "34.0.0.0/8"}),
    ):
        evaluation = run_stack(nodePoolBackend=backend, fernet=True, **extra)
        out = tmp_path / backend
        write_render(manifests(evaluation), evaluation, out)
        assert check_directory(out) == [], backend
    assert len(list((tmp_path / "existing-nodes").glob("nodepatch-cluster-n*.yaml"))) == 3


def test_the_render_warns_about_allowances_open_to_the_world(tmp_path: Path) -> None:
    stream = io.StringIO()
    render("dev", tmp_path / "o", project_dir=_project(tmp_path, databaseCidr="0.0.0.0/0"), stream=stream)
    assert "  warning: airflow-k8s:databaseCidr is 0.0.0.0/0: the control plane may reach any address" in (
        stream.getvalue()
    )


def test_render_refuses_a_directory_it_did_not_write_and_deletes_nothing(tmp_path: Path) -> None:
    project = _project(tmp_path)
    before = sorted(p.name for p in project.iterdir())
    code = main(["render", "--stack", "dev", "--out", str(project), "--project-dir", str(project)], environ={})
    assert code == 1  # `--out .` in a project must never delete Pulumi.yaml or Pulumi.dev.yaml
    assert sorted(p.name for p in project.iterdir()) == before


def test_render_replaces_only_its_own_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    render("dev", out, stream=io.StringIO())
    own = sorted(p.name for p in out.iterdir())
    (out / own[-1]).unlink()  # no harm in fewer files
    render("dev", out, stream=io.StringIO())  # the earlier render's files are replaced
    assert sorted(p.name for p in out.iterdir()) == own
    (out / "notes.yaml").write_text("mine: true\n")  # a file the render did not write
    code = main(["render", "--stack", "dev", "--out", str(out)], environ={})
    assert code == 1
    assert "holds files the render did not write: notes.yaml" in capsys.readouterr().err
    assert (out / "notes.yaml").read_text() == "mine: true\n"
    assert sorted(p.name for p in out.iterdir()) == sorted([*own, "notes.yaml"])  # nothing removed


def test_render_takes_over_a_render_from_before_the_manifest_existed(tmp_path: Path) -> None:
    out = tmp_path / "old-render"
    out.mkdir()
    (out / "deployment-airflow-dev-airflow-scheduler.yaml").write_text("# pulumi: kubernetes:apps/v1:Deployment x\n")
    (out / OUTPUTS_FILE).write_text("{}\n")
    render("dev", out, stream=io.StringIO())
    assert (out / MANIFEST).is_file()
    # ...but not a directory where anything else lies beside such files
    other = tmp_path / "mixed"
    other.mkdir()
    (other / OUTPUTS_FILE).write_text("{}\n")
    (other / "Pulumi.yaml").write_text("# Pulumi project\nname: x\n")
    assert main(["render", "--stack", "dev", "--out", str(other)], environ={}) == 1
    assert (other / "Pulumi.yaml").exists() and (other / OUTPUTS_FILE).exists()


def test_diff_lists_the_migration_job_as_rerun_when_unready(
    dev: tuple[Path, RenderResult, str], tmp_path: Path
) -> None:
    """A render cannot see the live Job, so the diff says which objects the next up may replace anyway."""
    out, _, _ = dev
    again = tmp_path / "again"
    stream = io.StringIO()
    render("dev", again, diff=out, stream=stream)
    difference = diff_dirs(out, again)
    assert difference.empty and difference.unready_replaced == ["job-airflow-dev-airflow-db-migrate.yaml"]
    assert (
        "! replaced if unready: job-airflow-dev-airflow-db-migrate.yaml (the next up re-runs it unless the live "
        "Job has completed: pulumi.com/replaceUnready)" in stream.getvalue()
    )


@pytest.fixture(scope="module")
def prod(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, RenderResult, str]:
    out = tmp_path_factory.mktemp("render") / "prod"
    stream = io.StringIO()
    result = render("prod", out, check=True, stream=stream)
    return out, result, stream.getvalue()


def test_the_production_example_is_highly_available_and_passes_every_check(
    prod: tuple[Path, RenderResult, str],
) -> None:
    out, result, summary = prod
    assert result.findings == [], "\n".join(map(str, result.findings))
    if result.checkov is not None and result.checkov.available:
        assert result.checkov.error is None and result.checkov.failed == []
    else:
        assert not REQUIRE_CHECKOV
    api = yaml.safe_load((out / "deployment-airflow-prod-airflow-api-server.yaml").read_text())
    scheduler = yaml.safe_load((out / "deployment-airflow-prod-airflow-scheduler.yaml").read_text())
    assert api["spec"]["replicas"] >= 2 and scheduler["spec"]["replicas"] >= 2
    budget = yaml.safe_load((out / "poddisruptionbudget-airflow-prod-airflow-api-server.yaml").read_text())
    assert budget["spec"]["maxUnavailable"] == 1  # with 2 pods: one eviction at a time, the next one blocked
    assert "apiServerReplicas" not in summary  # no availability warning
    assert "0.0.0.0/0" not in summary  # every allowance is named


def test_diff_against_a_directory_that_does_not_exist_is_an_error_saying_how_to_make_it(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "old"
    assert main(["render", "--stack", "dev", "--out", str(tmp_path / "new"), "--diff", str(missing)]) == 1
    err = capsys.readouterr().err
    assert f"--diff {missing}: no earlier render there" in err
    assert f"python -m airflow_k8s.infra render --stack dev --out {missing}" in err
    assert not (tmp_path / "new").exists()  # nothing half done
