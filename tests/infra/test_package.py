"""The README's snippet runs as written from the built wheel, in a fresh venv outside the repository.

The consumer's project has a package of its own called ``infra`` (as Pulumi programs commonly
do): it must stay the consumer's, while ``airflow_k8s.*`` comes from the installed wheel, whose
pod templates are package data.  The venv gets the wheel with its ``infra`` extra pinned by
``constraints.txt``, the way a consumer installs it; pip's cache makes this cheap after the first
run, and on a fresh CI machine it installs from the index like ``make`` does.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.package
ROOT = Path(__file__).resolve().parents[2]
HARNESS = """
import json, sys
from pathlib import Path

import infra  # the consumer's own package, not ours
assert infra.OWNER == "consumer", infra.__file__

import airflow_k8s
from airflow_k8s.infra.render.offline import evaluate

snippet = Path("snippet.py").read_text()

def program():
    exec(compile(snippet, "README.md snippet", "exec"), {"__name__": "__main__"})

evaluation = evaluate(
    {"consumer:databaseUrl": "postgresql://u:pw@db.prod:5432/airflow"},
    secret_keys=["consumer:databaseUrl"],
    project="consumer",
    stack="prod",
    program=program,
)
providers = {r.urn for r in evaluation.resources if r.type == "pulumi:providers:kubernetes"}
print(json.dumps({
    "airflow_k8s": airflow_k8s.__file__,
    "outputs": evaluation.plain_outputs(),
    "objects": len(evaluation.kubernetes()),
    "on_the_callers_provider": all(
        any(r.provider.startswith(p + "::") for p in providers) for r in evaluation.kubernetes()
    ),
    "templates": [
        sorted(r.inputs["data"]) for r in evaluation.kubernetes()
        if r.type == "kubernetes:core/v1:ConfigMap" and r.name.endswith("pod-templates")
    ][0],
}))
"""


def readme_snippet() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("Using the component from another stack") :]
    match = re.search(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert match, "the README has no Python snippet for other stacks"
    return match.group(1)


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, f"{args[:4]}...:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    _run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(ROOT))
    (built,) = out.glob("*.whl")
    return built


def test_the_wheel_ships_one_package_with_its_pod_templates(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names if not name.startswith("airflow_k8s_platform-")} == {"airflow_k8s"}
    shipped = {Path(n).name for n in names if n.startswith("airflow_k8s/pod_templates/")}
    assert shipped == {p.name for p in (ROOT / "pod_templates").glob("*.yaml")}
    assert "airflow_k8s/infra/components/platform.py" in names and "airflow_k8s/executor/py.typed" in names


def test_the_readme_snippet_runs_from_the_installed_wheel_beside_a_consumers_infra_package(
    wheel: Path, tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", str(venv))
    python = venv / "bin" / "python"
    constraints = str(ROOT / "constraints.txt")
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-compile"]
    _run(*pip, "-c", constraints, f"{wheel}[infra]")
    consumer = tmp_path / "consumer"
    (consumer / "infra").mkdir(parents=True)
    (consumer / "infra" / "__init__.py").write_text('OWNER = "consumer"\n')
    (consumer / "snippet.py").write_text(readme_snippet())
    (consumer / "harness.py").write_text(HARNESS)
    result = json.loads(_run(str(python), "harness.py", cwd=consumer).stdout.strip().splitlines()[-1])
    assert Path(result["airflow_k8s"]).is_relative_to(venv)  # the wheel, not this checkout
    assert not Path(result["airflow_k8s"]).is_relative_to(ROOT)
    assert result["outputs"] == {
        "namespace": "airflow-prod",
        "executionApiUrl": "http://airflow-api-server.airflow-prod.svc.cluster.local:8080/execution/",
    }
    assert result["objects"] > 40 and result["on_the_callers_provider"]
    assert result["templates"] == [
        "default_template.yaml",
        "gpu_task.yaml",
        "heavy_computation.yaml",
        "light_task.yaml",
    ]
