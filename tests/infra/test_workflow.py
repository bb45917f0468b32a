"""The PR workflow is valid YAML with the test, render and preview jobs wired as documented."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_pr_workflow() -> None:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "pr.yml").read_text())
    assert workflow[True] == {"pull_request": None}  # YAML 1.1 reads the key `on` as True
    jobs = workflow["jobs"]
    assert set(jobs) == {"test", "render", "preview"}
    assert {"run": "make test"} in jobs["test"]["steps"]
    render_steps = " ".join(str(step.get("run", "")) for step in jobs["render"]["steps"])
    assert "python -m airflow_k8s.infra render --stack dev --out build/dev --diff build/base --check" in render_steps
    upload = next(s for s in jobs["render"]["steps"] if str(s.get("uses", "")).startswith("actions/upload-artifact"))
    assert "build/dev" in upload["with"]["path"] and "build/render-diff.txt" in upload["with"]["path"]
    preview = next(s for s in jobs["preview"]["steps"] if str(s.get("uses", "")).startswith("pulumi/actions"))
    assert preview["with"]["command"] == "preview"
    assert preview["with"]["stack-name"] == "dev"
    assert preview["with"]["comment-on-pr"] is True
    assert preview["env"]["PULUMI_ACCESS_TOKEN"] == "${{ secrets.PULUMI_ACCESS_TOKEN }}"
    assert jobs["preview"]["permissions"]["pull-requests"] == "write"
    kubeconfig = next(s for s in jobs["preview"]["steps"] if s.get("name") == "Kubeconfig of the dev cluster")
    assert kubeconfig["env"]["KUBECONFIG_DATA"] == "${{ secrets.DEV_KUBECONFIG }}"
